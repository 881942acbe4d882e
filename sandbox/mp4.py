"""The sandbox's video placeholder: an ISO base media (MP4) file holding only its
header boxes — `ftyp`, and `moov` with a `mvhd` giving the duration — and no media
track. Players and probes read it as an MP4 of that duration; there are no frames
to show. A real clip would need a video encoder, which the sandbox does not ship."""

from __future__ import annotations

import struct

TIMESCALE = 1000  # mvhd units per second: milliseconds


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def placeholder(duration_ms: int, *, pad: int = 0) -> bytes:
    """`pad`: a `free` box of that many zero bytes at the end (players skip it)."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, TIMESCALE, duration_ms)  # version 0, times, duration
        + struct.pack(">IH10x", 0x10000, 0x100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    return ftyp + box(b"moov", mvhd) + (box(b"free", bytes(pad)) if pad else b"")
