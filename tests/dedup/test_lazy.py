"""dedup/lazy.py: a worker's first signature imports numba without scipy (nor pandas), same signatures."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from dedup.signing import sign_table
from dedup.stage import DedupConfig

TEXTS = ["The quick brown fox jumps over the lazy dog, again and again.", "Ünïcode wörds: naïve café, déjà vu!", ""]


def test_a_fresh_process_signs_without_importing_scipy_or_pandas() -> None:
    code = f"""
import sys
import pyarrow as pa
from dedup.signing import sign_table
from dedup.stage import DedupConfig
table = pa.table({{"id": ["a", "b", "c"], "source": ["s"] * 3, "text": {TEXTS!r}}})
docs, sigs = sign_table(table, DedupConfig(), reference=False)
imported = [m for m in ("scipy", "pandas") if m in sys.modules]
assert not imported, imported
from numba.np import arraymath
assert not arraymath._HAVE_BLAS
sys.stdout.buffer.write(pa.concat_arrays([docs.column("text_hash").combine_chunks().cast(pa.binary()),
                                          pa.array([sigs.column("sig").combine_chunks().buffers()[-1].to_pybytes()])]
                                         ).to_string().encode())
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True).stdout.decode()
    table = pa.table({"id": ["a", "b", "c"], "source": ["s"] * 3, "text": TEXTS})
    docs, sigs = sign_table(table, DedupConfig(), reference=False)  # this process: whatever it imported
    here = pa.concat_arrays([docs.column("text_hash").combine_chunks().cast(pa.binary()),
                             pa.array([sigs.column("sig").combine_chunks().buffers()[-1].to_pybytes()])])
    assert out == here.to_string()
