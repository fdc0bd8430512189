"""bench/RESULTS.md from the JSON results the benchmarks of bench/ wrote (bench/results/*.json).

    .venv/bin/python -m bench.report

`make bench` runs every benchmark and then this. A section whose results file is missing says so and
names the command that writes it; nothing here measures anything.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench.report_tables import load as _load
from bench.report_tables import missing as _missing
from bench.report_tables import table as _table

OUT = Path(__file__).resolve().parent / "RESULTS.md"


def machine_section() -> list[str]:
    pvd = _load("pipeline_vs_datatrove") or {}
    m = pvd.get("machine", {})
    cpu = m.get("cpu_model") or platform.processor() or platform.machine()
    versions = ", ".join(f"{k} {v}" for k, v in m.get("corpusforge_versions", {}).items())
    return ["## Machine", "",
            f"- {m.get('nproc', os.cpu_count())} cores ({cpu}), Python {m.get('python', platform.python_version())}; "
            f"end-to-end runs measured {m.get('date', 'n/a')}, load average before {m.get('load_before', 'n/a')}.",
            f"- corpusforge's libraries: {versions or 'n/a'}.", ""]


def pipeline_section() -> list[str]:
    d = _load("pipeline_vs_datatrove")
    out = ["## End to end: corpusforge vs datatrove", "",
           "WARC → trafilatura → fastText language ID (en ≥ 0.5) → Gopher repetition + quality → MinHash "
           "dedup (word 5-grams, 25 bands × 5 rows) → tokenization (gpt-neox-20b), on 2 workers, input the "
           "real pages of ../shared/data/extraction in WARCs (`bench/make_warc.py`). docs/s per core = WARC "
           "records / wall seconds / workers; RSS and PSS are the peak sums over the whole process tree.", ""]
    if not d:
        return out + _missing(".venv/bin/python -m bench.pipeline_vs_datatrove")
    runs = [r for r in d["runs"] if "error" not in r]
    rows = []
    for r in runs:
        c = r["counts"]
        rows.append([r["label"], r["records"], r["wall_s"], r["docs_per_s_per_core"], r["cpu_s"],
                     r["peak_tree_rss_mb"], r["peak_tree_pss_mb"], c.get("extracted"), c.get("langid_kept"),
                     c.get("quality_kept"), c.get("dedup_kept"), c.get("tokens")])
    out += _table(["run", "records", "wall s", "docs/s/core", "CPU s", "peak RSS MB", "peak PSS MB", "extracted",
                   "English", "quality kept", "dedup kept", "tokens"], rows)
    by = {r["label"]: r for r in runs}
    ratio_rows = []
    for scale in sorted({r["scale"] for r in runs if r["tool"] == "datatrove"}):
        dt = by.get(f"datatrove-{scale}x")
        for mode in ("equivalent", "default"):
            cf = by.get(f"corpusforge-{mode}-{scale}x")
            if dt and cf:
                ratio_rows.append([f"{scale}x", mode, round(cf["docs_per_s_per_core"] / dt["docs_per_s_per_core"], 2),
                                   round(cf["cpu_s"] / dt["cpu_s"], 2),
                                   round(cf["peak_tree_pss_mb"] / dt["peak_tree_pss_mb"], 2),
                                   f"{cf['counts'].get('dedup_kept')} / {dt['counts'].get('dedup_kept')}"])
    out += ["", "Ratios to datatrove on the same input:", ""]
    out += _table(["scale", "corpusforge settings", "docs/s per core (×)", "CPU seconds (×)", "peak PSS (×)",
                   "docs kept cf / dt"], ratio_rows)
    out += ["", "- **equivalent**: every page goes through trafilatura, as in datatrove. **default**: corpusforge's "
            "own settings, whose raw-HTML language prefilter skips pages clearly not in the configured languages "
            "before extraction (as Pile-CC did); compare the English column to see what it costs in recall.",
            f"- A bare `ray.init` costs {d.get('ray_startup_s', 'n/a')} s on this machine, paid once per build; it "
            "weighs most on the 1x runs.",
            "- Documents kept differ at the Gopher quality step, not at dedup (both remove about the same few "
            "near-duplicates): datatrove's words are spaCy tokens, so punctuation counts as words without a "
            "letter and its `gopher_below_alpha_threshold` drops real prose (see bench/FILTERS.md).", ""]
    return out


def scaling_section() -> list[str]:
    d = _load("pipeline_vs_datatrove")
    out = ["## Scaling", ""]
    if not d:
        return out + _missing(".venv/bin/python -m bench.pipeline_vs_datatrove")
    runs = [r for r in d["runs"] if "error" not in r and r["tool"] == "corpusforge"]
    rows = []
    for mode in ("default", "equivalent"):
        series = sorted((r for r in runs if f"-{mode}-" in r["label"] and r["workers"] == max(x["workers"] for x in runs)),
                        key=lambda r: r["scale"])
        if not series:
            continue
        base = series[0]
        for r in series:
            rows.append([mode, f"{r['scale']}x", r["workers"], r["records"], r["wall_s"],
                         round(r["wall_s"] / base["wall_s"], 2), round(r["scale"] / base["scale"], 2),
                         round(r["cpu_s"] / r["records"] * 1000, 1), r["peak_tree_pss_mb"]])
    for r in runs:
        if r["workers"] == 1:
            two = next((x for x in runs if x["label"] == r["label"].removesuffix("-1worker")), None)
            rows.append([r["label"].split("-")[1], f"{r['scale']}x", 1, r["records"], r["wall_s"],
                         round(r["wall_s"] / two["wall_s"], 2) if two else None, None,
                         round(r["cpu_s"] / r["records"] * 1000, 1), r["peak_tree_pss_mb"]])
    out += _table(["settings", "scale", "workers", "records", "wall s", "wall ÷ first", "input ÷ first",
                   "CPU ms per record", "peak PSS MB"], rows)
    out += ["", "Linear or better means `wall ÷ first` at most `input ÷ first` and a flat CPU cost per record. "
            "The 1-worker row's `wall ÷ first` is its wall time over the 2-worker run of the same input.", ""]
    return out


_SET_TITLES = {"books": "400-word windows of the six Gutenberg books", "web": "extracted pages of the benchmark WARC"}


def minhash_section() -> list[str]:
    out = ["## MinHash signatures", ""]
    d = _load("minhash_vs_peers")
    sets = [k for k in ("books", "web") if d and k in d]
    if not sets:
        out += _missing(".venv/bin/python -m bench.minhash_vs_peers")
    for name in sets:
        r = d[name]
        out += [f"{_SET_TITLES[name]}: {r['docs']:,} docs of {r['words_per_doc']} words ({r['mb_text']} MB, "
                f"{r['shingles']:,} word 5-gram shingles), {r['num_perm']} permutations; every process pinned "
                "to one core in one run (bench/minhash_vs_peers.py), so docs/s is per core.", ""]
        over = r.get("ours_poly64_from_text_over", {})
        rows = [[k, v, r.get("docs_per_cpu_s", {}).get(k), over.get(k)] for k, v in r["docs_per_s"].items()]
        rows += [[f"{k} (timed once)", v, None, None] for k, v in r.get("datatrove_docs_per_s", {}).items()]
        out += _table(["implementation", "docs/s, one core", "docs per CPU-second", "ours from text ÷ this"], rows)
        if "ours_given_shingles_over_rensa_given_shingles" in r:
            out += ["", f"Given the same shingles, ours (hash + permutation minimum) runs at "
                    f"{r['ours_given_shingles_over_rensa_given_shingles']}× rensa {r.get('rensa_version', '')}; "
                    f"from text, ours at {over.get('rensa_given_shingles')}× rensa given ready shingles and "
                    f"{over.get('rensa_from_text')}× rensa behind the same normalization written in Python."]
        if name == "web" and "datatrove_docs_per_s" not in r and "datatrove_error" not in r:
            out += ["", "datatrove was not run this time (`--skip-datatrove`); it measured ~45 docs/s before."]
        for key in ("rensa_error", "datatrove_error"):
            if key in r:
                out += ["", f"{key.split('_')[0]} side failed: `{r[key][-200:]}`"]
        out += [""]
    b = _load("dedup_bench")
    if b and "signatures" in b:
        s = b["signatures"]
        out += [f"Gutenberg documents ({s['docs']:,} docs of {s['words_per_doc']} words, bench/dedup_bench.py):", ""]
        out += _table(["comparison", "×"], [[k, v] for k, v in s.items() if k.startswith("speedup")])
        out += [""]
    return out


def dedup_section() -> list[str]:
    from bench.report_dedup import growth, quality, scale

    return quality() + scale() + growth()


def tokenize_section() -> list[str]:
    d = _load("tokenize_bench")
    out = ["## Tokenization", ""]
    if not d:
        return out + _missing(".venv/bin/python -m bench.tokenize_bench")
    out += [f"{d['docs']:,} documents ({d['text_mb']} MB, {d['tokens']:,} tokens) with {d['tokenizer']}: "
            "raw `Tokenizer.encode_batch` vs corpusforge's tokenize stage (encoding and writing zstd token shards).", ""]
    out += _table(["measure", "value"], [
        ["raw encode_batch MB/s", d["raw_encode_batch_mb_s"]],
        ["raw encode_batch_fast MB/s", d["raw_encode_batch_fast_mb_s"]],
        ["corpusforge tokenize + write MB/s", d["tokenize_and_write_mb_s"]],
        ["ratio to encode_batch", d["ratio_vs_encode_batch"]],
        ["ratio to encode_batch_fast", d["ratio_vs_encode_batch_fast"]],
        ["shard: text bytes per shard byte", d["compression_text_bytes_per_shard_byte"]],
        ["reader: tokens/s, documents in order", d["reader_iter_documents_tokens_s"]],
        ["reader: random documents/s", d["reader_random_documents_per_s"]],
    ])
    return out + [""]


def extraction_section() -> list[str]:
    from bench.report_extraction import extraction_sections

    return extraction_sections()


def filters_section() -> list[str]:
    d = _load("filters_vs_datatrove")
    out = ["## Filters vs datatrove", ""]
    if not d:
        return out + _missing(".venv/bin/python bench/filters_vs_datatrove.py")
    rows = [[name, f["ours_docs_per_s"], f["datatrove_docs_per_s"], f["speed_ratio_ours_over_datatrove"],
             f["ours_kept"], f["datatrove_kept"], f["agreement"]] for name, f in d["families"].items()]
    out += [f"{d['docs']:,} documents ({d['mb']} MB), one core; see bench/FILTERS.md for the disagreements.", ""]
    out += _table(["family", "ours docs/s", "datatrove docs/s", "×", "ours kept", "datatrove kept", "agreement"], rows)
    return out + [""]


def storage_section() -> list[str]:
    d = _load("storage_bench")
    out = ["## Object storage and capacity", ""]
    if not d:
        return out + _missing(".venv/bin/python -m bench.storage_bench")
    out += [f"The {d['scale']}x end-to-end build ({d['records']:,} WARC records, {d['workers']} workers) with "
            "`--workdir/--out` on local disk and on an S3 API server on 127.0.0.1 (moto), alternating, "
            f"{d['rounds']} rounds each in one run.", ""]
    out += _table(["storage", "wall seconds per round", "median ratio"], [
        ["local", ", ".join(str(x) for x in d["local_wall_s"]), "1.00"],
        ["s3 (moto)", ", ".join(str(x) for x in d["s3_wall_s"]), d["ratio_s3_over_local"]],
    ])
    out += ["", "Per step, from the local run's `_stage.json` (task seconds; dedup's is its wall time on the "
            "workers): what docs/cluster.md turns into estimates.", ""]
    out += _table(["step", "docs in", "task s / 1,000 docs", "MB written / 1,000 docs"],
                  [[k, v["docs_in"], v["cpu_s_per_1000_docs"], v["mb_written_per_1000_docs"]]
                   for k, v in sorted(d["capacity"].items())])
    return out + ["", f"Input: {d['input_mb_per_1000_records']} MB of WARC per 1,000 records.", ""]


def render() -> str:
    lines = ["# Benchmark results", "",
             f"Written by `make bench` (bench/report.py) on {datetime.now(UTC):%Y-%m-%d} from bench/results/*.json. "
             "Every figure is one run on the machine below, which other work may have shared: read ratios measured "
             "in the same run, not absolute times. Reproduce with `make bench` (about 40 minutes on 2 cores; "
             "datatrove is installed on first use into its own virtual environment, ../bench-venvs/datatrove beside the checkout, or $CORPUSFORGE_BENCH_VENVS/datatrove).", ""]
    for section in (machine_section, pipeline_section, scaling_section, minhash_section, dedup_section,
                    tokenize_section, extraction_section, filters_section, storage_section):
        lines += section()
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
