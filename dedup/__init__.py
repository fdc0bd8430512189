"""Exact and MinHash-LSH near-duplicate removal (the `dedup` global stage, see dedup/stage.py).

normalize.py  text normalization and word-shingle spans over Arrow columns (CJK/Thai split too)
minhash.py    MinHash signatures (datasketch-identical given the hash), shingle hash sets, LSH parameters
kernels.py    the compiled (numba) loops behind both: folding, word splitting, hashing, minimum
lsh.py        band partitions, candidate pairs per bucket, verification by estimated Jaccard
exact.py      hashes of normalized text and exact-duplicate edges
components.py connected components (large-star / small-star) over partitioned edge files
"""
