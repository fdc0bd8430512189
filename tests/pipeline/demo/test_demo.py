"""The embedded demo (`make corpus`): every source and every stage does real work on it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.shards import read_json
from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cfg: Path, tmp_path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "build", "--config", str(cfg), "--workdir", str(tmp_path / "work"),
         "--out", str(tmp_path / "out")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.slow
def test_demo_build_exercises_every_source_and_stage_and_reuses_on_rebuild(tmp_path):
    text = (REPO / "configs" / "demo.toml").read_text()
    text = re.sub(r"demo_port = \d+", f"demo_port = {_free_port()}", text)
    text = re.sub(r"^manifests_dir = .*$", f'manifests_dir = "{tmp_path / "manifests"}"', text, flags=re.M)
    cfg = tmp_path / "demo.toml"
    cfg.write_text(text)
    out = _run(cfg, tmp_path)
    manifest_path = Path(re.search(r"^manifest: (.+)$", out, re.M).group(1))
    if not manifest_path.is_absolute():
        manifest_path = REPO / manifest_path
    manifest = read_json(manifest_path)
    stages = {s["name"]: s for s in manifest["stages"]}
    configured = re.findall(r"^\[sources\.(\w+)\]", text, re.M)
    assert sorted(f"extract:{s}" for s in configured) == sorted(n for n in stages if n.startswith("extract:"))
    for name, stage in stages.items():
        t = stage["totals"]
        assert t["in_docs"] == t["kept_docs"] + t["rejected_docs"], name
        if name in ("langid", "quality", "dedup") or name.startswith("extract:"):
            assert t["rejected_docs"] > 0, f"the demo should give {name} something to reject"
    import pyarrow.parquet as pq

    ledger = pq.read_table(manifest_path.parent / manifest["ledger"]["path"])
    assert set(ledger.column("source").to_pylist()) == set(configured)
    if "decontam" in stages:
        report = read_json(manifest_path.parent / manifest["reports"]["contamination"]["path"])
        assert report["totals"]["docs_matched"] >= 2

    # The training outputs: token shards a reader can use, decoding back to the mixed documents' text.
    from tokenizers import Tokenizer

    from pipeline.outputs.reader import TokenDataset
    from pipeline.versions.verify import verify

    assert verify(manifest_path) == []
    assert manifest["tokens"]["splits"]["train"]["tokens"] > 0
    assert set(manifest["tokens"]["per_source"]) == set(configured)
    vdir = manifest_path.parent
    data = TokenDataset(vdir / "tokens" / "train")
    tok = Tokenizer.from_file(str(vdir / "tokenizer.json"))
    texts = {}
    for shard in sorted((vdir / "text" / "train").glob("*.jsonl.zst")):
        from pipeline.outputs.textshards import read_text_shard

        for rec in read_text_shard(shard):
            texts.setdefault(rec["meta"]["id"], rec["text"])
    for i in range(0, data.num_docs, max(1, data.num_docs // 10)):
        assert tok.decode(data.document(i).tolist(), skip_special_tokens=False) == texts[data.doc_id(i)]

    again = _run(cfg, tmp_path)
    assert " computed)" in again and not re.search(r"\((\d+) reused, [1-9]\d* computed\)", again), again
    assert f"manifest: {manifest_path}" in again or str(manifest_path.relative_to(REPO)) in again
