"""rensa's side of bench/minhash_vs_peers.py; runs in rensa's own venv (numpy + rensa, never our .venv).

    <rensa venv>/bin/python bench/rensa_peer.py INPUT.npz TEXTS.jsonl --repeats 3

INPUT.npz holds the shingles our code made (flat bytes, shingle offsets, shingles per document) and
their 64-bit hashes, so rensa signs exactly the same sets. Three timings, best of --repeats, wall and
CPU seconds (the caller pins this process to one core, so wall is per core even though rensa runs
a digest worker thread beside the Python one):

* from_text: normalization as a user would write it (lowercase, `[\\W_]+` folded, word 5-grams
  joined in Python), then `RMinHash.digest_matrix_from_token_sets`;
* given_shingles: `digest_matrix_from_token_byte_sets` on our shingle bytes;
* given_token_hashes: `digest_matrix_from_flat_token_hashes` on our 64-bit shingle hashes.

Prints one JSON line: {"version": ..., "<name>_seconds": ..., "<name>_cpu_seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import re
from importlib.metadata import version

import numpy as np
from rensa import RMinHash
from timing import best_seconds  # bench/timing.py: this script runs by path, so bench/ is on sys.path

_FOLD = re.compile(r"[\W_]+")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("npz")
    ap.add_argument("texts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-perm", type=int, default=128)
    args = ap.parse_args()
    z = np.load(args.npz)
    blob, sh_off, doc_off = z["shingle_bytes"].tobytes(), z["shingle_offsets"], z["doc_offsets"]
    shingles = [[blob[sh_off[i] : sh_off[i + 1]] for i in range(doc_off[d], doc_off[d + 1])]
                for d in range(len(doc_off) - 1)]
    hashes = np.ascontiguousarray(z["token_hashes"], dtype=np.uint64)
    row_offsets = np.ascontiguousarray(doc_off, dtype=np.uint64)
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]

    def from_text() -> None:
        token_sets = []
        for text in texts:
            w = _FOLD.sub(" ", text.lower()).split()
            token_sets.append([" ".join(w[i : i + 5]) for i in range(max(1, len(w) - 4))])
        RMinHash.digest_matrix_from_token_sets(token_sets, args.num_perm, 1)

    runs = {
        "from_text": from_text,
        "given_shingles": lambda: RMinHash.digest_matrix_from_token_byte_sets(shingles, args.num_perm, 1),
        "given_token_hashes": lambda: RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, row_offsets, args.num_perm, 1),
    }
    out: dict = {"version": version("rensa"), "docs": len(texts)}
    for name, fn in runs.items():
        out[f"{name}_seconds"], out[f"{name}_cpu_seconds"] = best_seconds(fn, args.repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
