"""bench.chart writes a real PNG: the signature, a header of the asked size, and
pixels in the series' colours where the points are."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from bench.chart import COLOURS, LABEL, MARGIN, label, render_chart, write_chart
from sandbox.png import SIGNATURE


def pixels(png: bytes) -> tuple[int, int, bytes]:
    assert png.startswith(SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    start = png.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", png[start - 8 : start - 4])
    raw = zlib.decompress(png[start : start + length])
    rows = [raw[y * (width * 3 + 1) + 1 : (y + 1) * (width * 3 + 1)] for y in range(height)]
    return width, height, b"".join(rows)


def test_a_chart_is_a_png_with_its_series_drawn(tmp_path: Path) -> None:
    series = {"p50": [(1.0, 10.0), (32.0, 40.0)], "p99": [(1.0, 20.0), (32.0, 80.0)]}
    width, height, data = pixels(render_chart(series, width=200, height=120))
    assert (width, height) == (200, 120)
    for _, colour in COLOURS[:2]:
        assert bytes(colour) in data
    assert bytes(COLOURS[2][1]) not in data
    line = write_chart(tmp_path / "out" / "chart.png", series)
    assert (tmp_path / "out" / "chart.png").read_bytes().startswith(SIGNATURE)
    assert "p50 blue" in line and "p99 orange" in line
    with pytest.raises(ValueError):
        render_chart({})


def test_the_axes_carry_their_values() -> None:
    assert [label(v) for v in (0, 5.5, 12.0, 1127.7, 0.25, 0.5)] == [
        "0",
        "5.5",
        "12",
        "1128",
        "0.25",
        "0.5",
    ]
    series = {"p50": [(1.0, 10.0), (32.0, 40.0)]}
    width, height, data = pixels(render_chart(series, width=200, height=120))
    # The values are drawn under the x axis (the bottom margin holds nothing else).
    below_axis = data[(height - MARGIN + 6) * width * 3 : (height - MARGIN + 16) * width * 3]
    assert bytes(LABEL) in below_axis
