"""pipeline/core/accounting.py: the invariant that document ids are unique in a step's output."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.core.accounting import AccountingError, check_unique_ids, count_shard
from pipeline.core.schema import reason_key


def _table(ids: list[str | None]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), "source": ["books"] * len(ids), "text": ["t"] * len(ids)})


def test_unique_ids_pass() -> None:
    check_unique_ids(_table([]), "empty")
    check_unique_ids(_table(["books/1"]), "one")
    check_unique_ids(_table([f"books/{i}" for i in range(1000)]), "many")
    chunked = pa.concat_tables([_table(["a/1", "a/2"]), _table(["a/3"])])
    check_unique_ids(chunked, "chunked")


def test_repeated_ids_are_named_most_repeated_first_at_most_five() -> None:
    """The duplicates issue 14 found: books/9198 three times, books/3261 twice."""
    ids = ["books/9198", "books/3261", "books/1", "books/9198", "books/3261", "books/9198"]
    with pytest.raises(AccountingError) as err:
        check_unique_ids(_table(ids), "extract:books")
    print(err.value)
    assert str(err.value) == ("extract:books: 2 document ids occur more than once: books/9198 (3 times), "
                              "books/3261 (2 times)")
    many = [f"x/{i}" for i in range(8)] * 2 + ["x/unique"]
    with pytest.raises(AccountingError, match=r"^step: 8 document ids .*x/0 \(2 times\), x/1 .* x/4 \(2 times\)"
                                              r" and 3 more$") as err:
        check_unique_ids(pa.concat_tables([_table(many[:5]), _table(many[5:])]), "step")
    assert "x/5" not in str(err.value)


def _grouped(table: pa.Table, keys: list[str]) -> dict[tuple, tuple[int, int]]:
    """The reference: documents and text bytes per group, by pyarrow's group_by."""
    b = pa.compute.binary_length(table.column("text").cast(pa.binary()))
    t = pa.table({**{k: table.column(k) for k in keys}, "b": b})
    g = t.group_by(keys).aggregate([("b", "count"), ("b", "sum")]).to_pylist()
    return {tuple(r[k] for k in keys): (r["b_count"], r["b_sum"] or 0) for r in g}


@pytest.mark.parametrize("sources", [["cc"], ["cc", "books"]])
def test_counts_are_the_group_by_counts(sources: list[str]) -> None:
    """Counted without group_by (it imports pandas), one source or several: the same numbers."""
    n = 40
    kept = pa.table({"source": [sources[i % len(sources)] for i in range(n)], "text": ["é" * i for i in range(n)]})
    reasons = ["cc:extract-empty", "near-dup:cc/1", "near-dup:cc/2", "cc:lang:de"]
    rejected = kept.slice(0, 30).append_column("reason", pa.array([reasons[i % 4] for i in range(30)]))
    counts = count_shard(None, kept, rejected)
    per_source = _grouped(kept, ["source"])
    keyed = pa.table({"source": rejected.column("source"), "text": rejected.column("text"),
                      "reason": [reason_key(r) for r in rejected.column("reason").to_pylist()]})
    per_reason = _grouped(keyed, ["source", "reason"])
    for s in sources:
        assert (counts[s]["kept_docs"], counts[s]["kept_bytes"]) == per_source[(s,)]
        assert counts[s]["reasons"] == {r: n for (src, r), (n, _) in per_reason.items() if src == s}
        assert counts[s]["rejected_bytes"] == sum(b for (src, _), (_, b) in per_reason.items() if src == s)
        assert counts[s]["in_docs"] == counts[s]["kept_docs"] + counts[s]["rejected_docs"]
