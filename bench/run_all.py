"""`make bench`: run every benchmark of bench/ in turn, then write bench/RESULTS.md (not part of `make test`).

Each script writes its results to bench/results/*.json and prints a table; bench/report.py turns those
files into bench/RESULTS.md. A benchmark that fails is reported and the others still run (its section
of RESULTS.md keeps the previous results or says it is missing); the exit code is then non-zero.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    # first: builds the benchmark WARCs and the extracted pages minhash_vs_peers reads
    ["bench.pipeline_vs_datatrove"],
    ["bench.minhash_vs_peers"],
    ["bench.extraction_quality"],
    ["bench.extraction_profile", "--extractor", "trafilatura"],
    ["bench.extraction_profile", "--extractor", "hybrid_reference"],
    ["bench.extraction_profile", "--extractor", "hybrid"],
    ["bench.extraction_routing"],
    ["bench.extract_command", "--rounds", "3"],
    ["bench.filters_vs_datatrove"],
    ["bench.dedup_bench", "--ray", "--docs", "100000,1000000"],
    ["bench.dedup_scale", "--docs", "100000,1000000"],
    ["bench.tokenize_bench"],
    ["bench.filters_speed"],
    ["bench.decontam_bench", "--ray", "2"],
    ["bench.storage_bench", "--rounds", "3"],
    ["bench.incremental_bench", "--scale", "16"],
]


def main() -> int:
    only = set(sys.argv[1:])
    failed = []
    for bench in BENCHES:
        if only and bench[0].removeprefix("bench.") not in only:
            continue
        print(f"== python -m {' '.join(bench)}", flush=True)
        rc = subprocess.call([sys.executable, "-m", *bench])
        if rc != 0:
            print(f"bench {bench[0]} failed with exit code {rc}", file=sys.stderr, flush=True)
            failed.append(bench[0])
    subprocess.check_call([sys.executable, "-m", "bench.report"])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
