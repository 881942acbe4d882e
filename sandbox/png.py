"""A real PNG written by hand (zlib + struct): an RGB gradient whose colours come
from a seed, so a prompt always renders the same image. No imaging library."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    """length, type, data, CRC-32 of type + data (PNG spec § 5.3)."""
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def render(seed: bytes, width: int, height: int) -> bytes:
    """A `width` x `height` 8-bit RGB image: a horizontal gradient between two seed
    colours, fading toward a third down the image."""
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise ValueError("image sides must be 1..4096 pixels")
    left, right, toward = seed[0:3], seed[3:6], seed[6] if len(seed) > 6 else 0
    span = max(width - 1, 1)
    row = bytearray()
    for x in range(width):
        row += bytes((left[c] * (span - x) + right[c] * x) // span for c in range(3))
    base = bytes(row)
    # Each scanline is the base row faded by one byte-translation table (C speed):
    # 256 tables at most, however tall the image.
    tables: dict[int, bytes] = {}
    raw = bytearray()
    for y in range(height):
        level = (255 * y) // max(height - 1, 1)
        table = tables.get(level)
        if table is None:
            table = bytes((v * (255 - level) + toward * level) // 255 for v in range(256))
            tables[level] = table
        raw += b"\x00" + base.translate(table)  # filter type 0: the bytes as they are
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (
        SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + chunk(b"IEND", b"")
    )


def padded(image: bytes, extra: int) -> bytes:
    """The PNG with an ancillary private chunk (`saNd`, which decoders skip) of
    `extra` zero bytes before its end: a larger file showing the same image."""
    end = len(image) - 12  # the IEND chunk
    return image[:end] + chunk(b"saNd", bytes(extra)) + image[end:]
