"""The embedded demo built once per session (in-process, serial: a few seconds), for the tests that need
every real source: a WARC with request records, near-duplicates, planted eval items, token shards."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_version(tmp_path_factory) -> Path:
    """The version directory of configs/demo.toml, built into a temp work and output directory."""
    from pipeline.cli import main

    tmp = tmp_path_factory.mktemp("demo")
    text = (REPO / "configs" / "demo.toml").read_text()
    text = re.sub(r"demo_port = \d+", f"demo_port = {_free_port()}", text)
    text = re.sub(r"^manifests_dir = .*$", 'manifests_dir = ""', text, flags=re.M)
    cfg = tmp / "demo.toml"
    cfg.write_text(text)
    assert main(["build", "--config", str(cfg), "--workdir", str(tmp / "work"), "--out", str(tmp / "out"),
                 "--serial"]) == 0
    (version,) = (p.parent for p in (tmp / "out" / "demo").glob("*/manifest.json"))
    return version
