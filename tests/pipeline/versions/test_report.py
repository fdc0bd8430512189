"""`corpus report`: the HTML renders in a real headless Chromium and its plots draw."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib

import pytest

from pipeline.versions.report import render_report, write_report
from tests.pipeline.helpers import write_config, write_jsonl_inputs
from tests.pipeline.running.test_build import _build

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium found (Debian package `chromium`; .ci/run installs it)")


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, channels and raw unfiltered pixel bytes of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return width, height, channels, bytes(out)


@pytest.fixture(scope="module")
def version(tmp_path_factory, ray_executor):
    tmp = tmp_path_factory.mktemp("report")
    write_jsonl_inputs(tmp / "in", 3, 30)
    cfg = write_config(tmp / "c.toml", inputs=f"{tmp}/in/*.jsonl", workdir=tmp / "w", out=tmp / "o", min_words=12)
    return _build(cfg, ray_executor)[1]


def test_report_holds_every_plot_with_real_numbers(version):
    page = render_report(version.dir)
    for section in ("funnel", "reasons", "languages", "lengths", "sources", "clusters", "tokens", "contamination"):
        assert f'id="{section}"' in page
    assert "min_words:below-12" in page
    assert re.search(r'id="funnel".*?<rect', page, re.S)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(version, tmp_path):
    chromium = _chromium()
    report = write_report(version.dir, tmp_path / "report.html")
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'u1'}", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 4 and dom.count("<rect") >= 6
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'u2'}", "--window-size=900,700",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    width, height, channels, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 700)
    # The funnel's first bar is filled with the palette's blue (#4e79a7): the plot really drew.
    blue = sum(1 for i in range(0, len(pixels), channels) if pixels[i:i + 3] == b"\x4e\x79\xa7")
    assert blue > 500, f"only {blue} pixels of the first bar's colour"
