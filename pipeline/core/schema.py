"""The document schema every stage reads and writes (see DESIGN.md).

A document is one Arrow row. Stages may add columns; none rewrites `id`. Rejected rows keep every
column of the document plus `stage` and `reason`, so nothing is ever silently lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.core.imports import unimportable

# pyarrow imports pandas on its first `pa.array` of a list without a type (to check whether the list is
# a pandas object; an empty list skips the check): the pipeline builds Arrow data from Python lists
# only, so it is made to record "no pandas" for that check (~0.3 s of CPU per process, every Ray worker
# included; `to_pandas` and an explicit `import pandas` still work).
with unimportable("pandas"):
    pa.array([""])

DOC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=True),
        pa.field("meta", pa.string(), nullable=False),
    ]
)
DOC_COLUMNS = tuple(DOC_SCHEMA.names)
REJECT_FIELDS = (pa.field("stage", pa.string()), pa.field("reason", pa.string()))


@dataclass(frozen=True)
class Doc:
    """One extracted document, before it becomes an Arrow row."""

    id: str
    source: str
    text: str
    url: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "text": self.text,
            "url": self.url,
            "meta": json.dumps(dict(self.meta), sort_keys=True, ensure_ascii=False, default=str),
        }


@dataclass(frozen=True)
class Rejected:
    """A record an extractor saw and did not turn into a document, with the reason why.

    `text` may be empty (a non-HTML record has no text); the id and url say which record it was.
    """

    id: str
    source: str
    reason: str
    url: str | None = None
    text: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def doc(self) -> Doc:
        return Doc(self.id, self.source, self.text, self.url, self.meta)


def docs_to_table(docs: Iterable[Doc]) -> pa.Table:
    rows = [d.row() for d in docs]
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)


def empty_docs() -> pa.Table:
    return DOC_SCHEMA.empty_table()


def with_rejection(table: pa.Table, stage: str, reasons: list[str]) -> pa.Table:
    """Return `table` with `stage` and `reason` columns appended (replaced if already there)."""
    for name in ("stage", "reason"):
        if name in table.column_names:
            table = table.drop_columns([name])
    table = table.append_column(REJECT_FIELDS[0], pa.array([stage] * table.num_rows, pa.string()))
    return table.append_column(REJECT_FIELDS[1], pa.array(reasons, pa.string()))


def meta_of(table: pa.Table, i: int) -> dict[str, Any]:
    return json.loads(table.column("meta")[i].as_py())


def reason_key(reason: str) -> str:
    """The accounting key of a rejection reason.

    Reasons such as `near-dup:<survivor id>` carry a document id (ids always contain '/'); accounting
    counts them under `near-dup` so the per-reason table stays small, while the rejected shard keeps
    the full reason.
    """
    head, sep, tail = reason.partition(":")
    if sep and "/" in tail:
        return head
    return reason


# WARC record types that never hold a document (a crawl's requests, its metadata, the file's warcinfo
# header, ...): an extractor counts them as rejected so that records in = kept + rejected, but reports
# show them as records skipped by type, apart from documents some rule rejected.
SKIPPED_RECORD_TYPES = frozenset({"warcinfo", "request", "metadata", "revisit", "resource", "continuation"})


def is_skipped_record(reason: str) -> bool:
    """True for `<source>:<record type>` reasons (`cc:request`): a record that was never a document."""
    head, sep, tail = reason.partition(":")
    return bool(sep) and tail in SKIPPED_RECORD_TYPES
