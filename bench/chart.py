"""A line chart as a PNG, with no plotting library: series of (x, y) points drawn
on a white canvas with axes, grid lines and the axes' values (a 3x5 pixel font of
digits), written with zlib (sandbox/png.py's chunks). No other text is drawn: the
benchmark prints what the axes and the colours are beside the file's path.

    write_chart(path, {"p50": [(1, 12.0), (8, 30.5)], "p99": [...]})"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.png import SIGNATURE, chunk

__all__ = ["COLOURS", "render_chart", "write_chart"]

Colour = tuple[int, int, int]
# The series' colours, in the order the series are given.
COLOURS: tuple[tuple[str, Colour], ...] = (
    ("blue", (31, 119, 180)),
    ("orange", (255, 127, 14)),
    ("green", (44, 160, 44)),
    ("red", (214, 39, 40)),
)
MARGIN = 40
GRID = (225, 225, 225)
AXIS = (0, 0, 0)
LABEL = (90, 90, 90)
SCALE = 2  # each font pixel is SCALE x SCALE
# Digits and the decimal point, 3 pixels wide and 5 high, row by row.
GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"),
}
ADVANCE = 4 * SCALE  # a glyph and a pixel of space


def label(value: float) -> str:
    """A tick's value in the few characters the font has: 1234, 12.5, 0.25."""
    if value >= 100 or value == int(value):
        return str(round(value))
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 1 else f"{value:.1f}"


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def dot(self, x: int, y: int, colour: Colour, size: int = 1) -> None:
        for dx in range(-size + 1, size):
            for dy in range(-size + 1, size):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    i = (py * self.width + px) * 3
                    self.pixels[i : i + 3] = bytes(colour)

    def line(self, a: tuple[int, int], b: tuple[int, int], colour: Colour, size: int = 1) -> None:
        steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
        for step in range(steps + 1):
            t = step / steps
            self.dot(round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), colour, size)

    def text(self, x: int, y: int, text: str, colour: Colour) -> None:
        """`text` (digits and points) with its top left corner at (x, y)."""
        for n, char in enumerate(text):
            for row, bits in enumerate(GLYPHS[char]):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        for dx in range(SCALE):
                            for dy in range(SCALE):
                                px = x + n * ADVANCE + col * SCALE + dx
                                self.dot(px, y + row * SCALE + dy, colour)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            SIGNATURE
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def render_chart(
    series: Mapping[str, Sequence[tuple[float, float]]], width: int = 640, height: int = 400
) -> bytes:
    """The series as lines with a dot at every point, over axes from 0 to each axis'
    largest value (ten grid lines each way)."""
    points = [p for values in series.values() for p in values]
    if not points:
        raise ValueError("nothing to draw")
    if len(series) > len(COLOURS):
        raise ValueError(f"at most {len(COLOURS)} series")
    top_x = max(x for x, _ in points) or 1.0
    top_y = max(y for _, y in points) or 1.0
    canvas = Canvas(width, height)
    left, bottom, right, top = MARGIN, height - MARGIN, width - MARGIN // 2, MARGIN // 2

    def at(x: float, y: float) -> tuple[int, int]:
        return (
            round(left + (right - left) * x / top_x),
            round(bottom - (bottom - top) * y / top_y),
        )

    for tick in range(1, 11):
        gx = left + (right - left) * tick // 10
        gy = bottom - (bottom - top) * tick // 10
        canvas.line((gx, top), (gx, bottom), GRID)
        canvas.line((left, gy), (right, gy), GRID)
    canvas.line((left, bottom), (right, bottom), AXIS)
    canvas.line((left, top), (left, bottom), AXIS)
    for tick in range(0, 11, 2):  # every other grid line's value, on both axes
        x_text, y_text = label(top_x * tick / 10), label(top_y * tick / 10)
        gx = left + (right - left) * tick // 10
        gy = bottom - (bottom - top) * tick // 10
        canvas.text(gx - len(x_text) * ADVANCE // 2, bottom + 6, x_text, LABEL)
        canvas.text(left - 4 - len(y_text) * ADVANCE, gy - 5, y_text, LABEL)
    for (_, colour), values in zip(COLOURS, series.values(), strict=False):
        ordered = sorted(values)
        for a, b in itertools.pairwise(ordered):
            canvas.line(at(*a), at(*b), colour, size=2)
        for point in ordered:
            canvas.dot(*at(*point), colour, size=4)
    return canvas.png()


def write_chart(
    path: Path, series: Mapping[str, Sequence[tuple[float, float]]], **size: int
) -> str:
    """Write the chart to `path` (its folder made); a line saying what is where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_chart(series, **size))
    legend = ", ".join(
        f"{name} {colour}" for (colour, _), name in zip(COLOURS, series, strict=False)
    )
    return f"chart: {path} ({legend})"
