"""Exact and MinHash-LSH near-duplicate removal (the `dedup` global stage, see dedup/stage.py).

normalize.py  text normalization and word-shingle spans over Arrow columns (CJK/Thai split too)
minhash.py    MinHash signatures (datasketch-identical given the hash), shingle hash sets, LSH parameters
kernels.py    the compiled (numba) loops behind both: folding, word splitting, hashing, minimum
lazy.py       kernels.py imported on first use, without scipy (numba: ~0.5 s; most commands never sign)
lsh.py        band partitions, candidate pairs per bucket, the signature estimate of Jaccard
exact.py      hashes of normalized text and exact-duplicate edges
stage.py      the config and the stage: the order of the steps below, over `DedupContext` (context.py)
signing.py    step 1 per shard: attributes and signatures (kept by content); per block, band keys and hashes
candidates.py steps 2-3: candidate pairs, exact-duplicate edges, verification (estimate, then shingle sets)
components.py connected components (large-star / small-star) over partitioned edge files
clusters.py   survivors per cluster and each input shard's kept and rejected documents
"""
