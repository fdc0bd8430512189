"""What a build records so that `corpus trace`, `corpus show` and `corpus report` never recompute.

The kept documents, the ledger and the rejected ledger already say where every document went; this
module adds the two things they lack, both bounded and cheap to gather while the version is written:

- `samples.parquet`: for each (stage, reason, source), the rejected documents whose id hashes lowest
  (at most `SAMPLES_PER_REASON`), with their url, meta, scores and text cut to `SAMPLE_TEXT_CHARS`.
  Lowest hash is a uniform sample that does not depend on shard order or worker count, and it bounds
  the file by the number of reasons, not the number of documents.
- per step, the score columns its documents carry (`stages[i].columns` in the manifest), so a trace
  can say which stage computed which score.

The samples are drawn in pipeline/versions/rejected.py, with the rejected ledger, from parts kept per
rejected shard; the helpers they share are here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from pipeline.core.io import AnyPath, parquet_schema
from pipeline.core.schema import DOC_COLUMNS
from pipeline.core.shards import list_rejected, list_shards

SAMPLES_FILE = "samples.parquet"
SAMPLES_PER_REASON = 32  # per (stage, reason, source)
SAMPLE_TEXT_CHARS = 2000
SAMPLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("url", pa.string()), ("meta", pa.string()), ("text", pa.string()), ("text_chars", pa.int64()),
    ("scores", pa.string()),
])
NOT_SCORES = frozenset((*DOC_COLUMNS, "stage", "reason"))


def id_rank(doc_id: str, seed: int = 0) -> int:
    """A stable 64-bit rank of a document id: the order samples are drawn in, for a given seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest(), "big")


def step_columns(out_dir: AnyPath) -> list[str]:
    """The columns beyond the document schema that a step's documents carry (from one shard's footer)."""
    shards = list_shards(out_dir) or list_rejected(out_dir)
    if not shards:
        return []
    return [n for n in parquet_schema(shards[0]).names if n not in NOT_SCORES]


def scores_json(row: dict[str, Any]) -> str:
    """A row's score columns (everything a stage added), nulls left out, as sorted JSON."""
    return json.dumps({k: v for k, v in sorted(row.items()) if k not in NOT_SCORES and v is not None},
                      sort_keys=True, default=str)


def portable_meta(meta: str | None) -> str:
    """A rejected document's meta as the version keeps it: an input path (`file`, which extractors
    give in full for rejections, for debugging in the work directory) cut to its file name, as kept
    documents' meta has it, so that where the inputs sit changes no version."""
    if not meta or '"file"' not in meta:
        return meta or "{}"
    try:
        value = json.loads(meta)
    except ValueError:
        return meta
    if isinstance(value, dict) and isinstance(value.get("file"), str):
        value["file"] = PurePosixPath(value["file"].replace("\\", "/")).name
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
