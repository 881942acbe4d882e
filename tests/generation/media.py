"""Readers for the sandbox's media, written from the formats' specs (not from the
sandbox's writers), so a broken file fails the tests."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    chunks: list[bytes]  # chunk types, in order
    pixels: bytes  # decompressed scanlines, filter bytes included


def read_png(data: bytes) -> Png:
    """Check the signature, every chunk's CRC, IHDR first and IEND last, and that the
    IDAT stream inflates to exactly the scanlines IHDR promises (8-bit RGB)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    offset, kinds, idat = 8, [], b""
    width = height = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC on {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 2, 0), "expected 8-bit RGB, no interlace"
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    assert offset == len(data), "trailing bytes after the last chunk"
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    pixels = zlib.decompress(idat)
    assert len(pixels) == height * (1 + 3 * width), "IDAT does not hold the image"
    assert all(pixels[row * (1 + 3 * width)] == 0 for row in range(height)), "filter bytes"
    return Png(width, height, kinds, pixels)


def mp4_duration_ms(data: bytes) -> int:
    """The duration in a `moov/mvhd` box, in milliseconds; checks `ftyp` comes first."""
    boxes = _boxes(data)
    assert boxes and boxes[0][0] == b"ftyp", "an MP4 starts with ftyp"
    moov = dict(boxes)[b"moov"]
    mvhd = dict(_boxes(moov))[b"mvhd"]
    version = mvhd[0]
    assert version == 0
    timescale, duration = struct.unpack(">II", mvhd[12:20])
    return int(duration) * 1000 // int(timescale)


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    found, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8 and offset + size <= len(data), f"bad box size {size}"
        found.append((kind, data[offset + 8 : offset + size]))
        offset += size
    return found
