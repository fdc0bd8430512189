"""A version's Parquet files as other tools read them: a 0-row document shard carries no (empty) row
group, and Hugging Face `datasets` loads a version's `docs/*.parquet`, empty shards included."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core.shards import read_json
from tests.pipeline.helpers import write_config, write_jsonl_inputs
from tests.pipeline.running.test_build import _build


@pytest.fixture
def version(tmp_path: Path, ray_executor):
    """A version whose docs/ holds a 0-row shard: every document of `short.jsonl` is below min_words."""
    write_jsonl_inputs(tmp_path / "in", 2, 20)
    (tmp_path / "in" / "short.jsonl").write_text(
        "".join(json.dumps({"text": "far too short", "id": f"s{i}", "meta": {"pile_set_name": "web"}}) + "\n"
                for i in range(5)))
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w",
                       out=tmp_path / "o", min_words=8)
    _, version = _build(cfg, ray_executor)
    return version


def _docs(version) -> list[dict]:
    return [f for f in read_json(version.manifest_path)["outputs"] if f["path"].startswith("docs/")]


def test_a_0_row_docs_shard_has_no_row_group(version):
    docs = _docs(version)
    [empty] = [f["path"] for f in docs if f["docs"] == 0]
    assert "short.jsonl" in empty
    for f in docs:
        pf = pq.ParquetFile(version.dir / f["path"])
        assert pf.metadata.num_rows == f["docs"]
        assert pf.num_row_groups == (0 if f["docs"] == 0 else 1), f["path"]
    assert pq.read_table(version.dir / empty).schema.names[:5] == [
        "id", "source", "text", "url", "meta"]


def test_hugging_face_datasets_loads_a_version(version, tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets is installed by `make` (requirements.lock)")
    files = sorted(str(version.dir / f["path"]) for f in _docs(version))
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf-cache"))
    manifest = read_json(version.manifest_path)
    assert ds.num_rows == manifest["totals"]["docs"] == sum(f["docs"] for f in _docs(version)) > 0
    assert {"id", "source", "text", "url", "meta"} <= set(ds.column_names)
    ledger = pq.read_table(version.dir / "ledger.parquet", columns=["id"]).column("id").to_pylist()
    assert sorted(ds["id"]) == sorted(ledger)
