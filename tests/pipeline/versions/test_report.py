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


def _section(page: str, name: str) -> str:
    return re.search(rf'<section id="{name}">.*?</section>', page, re.S).group(0)


def test_report_holds_every_plot_with_real_numbers(version):
    page = render_report(version.dir)
    for section in ("funnel", "reasons", "languages", "lengths", "sources", "clusters", "tokens", "contamination",
                    "time", "skipped", "samples"):
        assert f'id="{section}"' in page
    assert "min_words:below-12" in page
    assert re.search(r'id="funnel".*?<rect', page, re.S)


def test_demo_report_shows_sources_skipped_records_samples_and_clusters_apart(demo_version):
    page = render_report(demo_version)
    colours = {source: colour for colour, source in re.findall(r'<i style="background:(#\w+)"></i>(\w+)<', page)}
    assert sorted(colours) == ["books", "cc", "code", "reddit", "wikipedia"]
    funnel = _section(page, "funnel")
    for source, colour in colours.items():  # one colour per source, the same in the funnel and the tokens
        assert f">{source}</h3>" in funnel and f'fill="{colour}"' in funnel
        assert f'fill="{colour}"><title>train · {source}:' in _section(page, "tokens")
    assert "records read (47 skipped by type)" in funnel
    assert "cc:request" in _section(page, "skipped") and "cc:request" not in _section(page, "reasons")
    assert "quality:min_tokens" in _section(page, "reasons")
    samples = _section(page, "samples")
    assert samples.count("<details>") >= 10 and "dedup · near-dup" in samples and "cc:request" not in samples
    assert "<script" not in page.lower()  # sample text is escaped; the report runs no code
    assert "Largest clusters" in _section(page, "clusters")
    assert "line 1" in _section(page, "contamination")
    assert "Build wall time" in _section(page, "time")
    assert len(page.encode()) < 500_000


@pytest.mark.slow
def test_report_renders_in_headless_chromium(demo_version, tmp_path):
    chromium = _chromium()
    report = write_report(demo_version, tmp_path / "report.html")
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'u1'}", "--enable-logging=stderr",
                           "--v=0", "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "CONSOLE" not in proc.stderr, proc.stderr[-2000:]  # no console message, let alone an error
    assert dom.count("<svg") >= 4 and dom.count("<rect") >= 6
    funnel = re.search(r'<section id="funnel">.*?</section>', dom, re.S).group(0)
    assert funnel.count("<svg") == 5 and funnel.count("<rect") >= 25  # a bar per step for each of 5 sources
    assert re.search(r'<section id="samples">.*?<details><summary>.*?<pre>', dom, re.S)
    assert re.search(r'<section id="time">.*?<td>dedup</td>', dom, re.S)
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'u2'}", "--window-size=900,700",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    width, height, channels, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 700)
    # The funnel's first bar is filled with the palette's blue (#4e79a7): the plot really drew.
    blue = sum(1 for i in range(0, len(pixels), channels) if pixels[i:i + 3] == b"\x4e\x79\xa7")
    assert blue > 500, f"only {blue} pixels of the first bar's colour"
