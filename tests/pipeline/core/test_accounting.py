"""pipeline/core/accounting.py: the invariant that document ids are unique in a step's output."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.core.accounting import AccountingError, check_unique_ids


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
