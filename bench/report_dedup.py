"""The dedup and growth sections of bench/RESULTS.md: detection quality per verification mode, the stage
at scale, and a corpus grown by one more WARC, from bench/results/dedup_bench.json, dedup_scale.json and
incremental_bench.json."""

from __future__ import annotations

from bench.report_tables import load, missing, table


def _pr_rows(label: str, by_mode: dict) -> list[list]:
    return [[f"{label}, {mode}", r["precision"], r["recall"], r["tp"], r["fp"], r["fn"]]
            for mode, r in by_mode.items() if isinstance(r, dict) and "precision" in r]


def quality() -> list[str]:
    b = load("dedup_bench")
    out = ["## Dedup quality and the whole stage", ""]
    if not b:
        return out + missing(".venv/bin/python -m bench.dedup_bench --ray --docs 100000,1000000")
    ce, hp = b.get("controlled_edits", {}), b.get("human_judged_pairs", {})
    out += ["A pair is removed when it collides in a band and its Jaccard reaches 0.5, per verification mode "
            "with its default banding: `exact` (the default: bands for recall, the shingle sets' Jaccard near "
            "the threshold) and `signature` (datasketch's banding, the signature estimate alone).", ""]
    rows = _pr_rows(f"controlled edits ({ce.get('pairs', 0):,} pairs), vs exact Jaccard >= 0.5",
                    ce.get("vs_exact_jaccard_0.5", {}))
    rows += _pr_rows("controlled edits, pairs at Jaccard 0.4-0.6", ce.get("within_0.4_0.6", {}))
    for name, by_mode in hp.items():
        if name.startswith("vs_"):
            rows += _pr_rows(f"human-judged pairs ({hp.get('pairs', 0)}), {name}", by_mode)
    out += table(["pairs, ground truth, mode", "precision", "recall", "tp", "fp", "fn"], rows)
    if "detected_rate_by_label" in hp:
        out += ["", "Share of the human-judged pairs removed, by their label (0.5: barely related ... 3: the "
                "same text):", ""]
        rates = hp["detected_rate_by_label"]
        labels = sorted({lab for r in rates.values() for lab in r}, key=float)
        out += table(["mode", *labels], [[mode, *(r.get(lab) for lab in labels)] for mode, r in rates.items()])
    return out + [""]


def scale() -> list[str]:
    d = load("dedup_scale")
    out = ["## Dedup stage at scale: where the time goes", ""]
    if not d or not d.get("runs"):
        return out + missing(".venv/bin/python -m bench.dedup_scale --docs 100000,1000000")
    runs = d["runs"]
    out += ["Real sentences with planted copies (bench/dedup_scale.py): 5% exact, 15% near (Jaccard ~0.9); "
            "originals shuffle the words of each sentence they draw, so that unrelated documents share about as "
            "many word 5-grams at every size (the shared data has ~24k sentences: drawn whole, each would recur "
            "in ~3,750 documents at 10M). Peak RSS summed over the stage's process and all its descendants "
            "(Ray included). Candidate pairs: band collisions, counted once per LSH partition.", ""]
    out += table(["docs", "text MB", "executor", "wall s", "µs per doc", "CPU s", "peak RSS, all processes MB",
                  "largest process MB", "candidate pairs", "exact-dup (planted)", "near-dup (planted)"],
                 [[r["docs"], r["text_mb"], r["executor"], r["wall_s"], r["us_per_doc"], r.get("cpu_s"),
                   r["peak_total_rss_mb"], r["largest_process_rss_mb"],
                   f"{r['stats']['candidate_pairs']:,}" if "stats" in r else None,
                   f"{r['rejected'].get('exact-dup', 0):,} ({r['exact']:,})",
                   f"{r['rejected'].get('near-dup', 0):,} ({r['near']:,})"] for r in runs])
    steps = list(dict.fromkeys(k for r in runs for k in r["steps_s"]))
    out += ["", "Seconds per sub-step (wall time of each `executor.map`):", ""]
    out += table(["sub-step", *(f"{r['docs']:,} docs" for r in runs)],
                 [[k, *(r["steps_s"].get(k) for r in runs)] for k in steps])
    return out + [""]


def growth() -> list[str]:
    d = load("incremental_bench")
    out = ["## Growing a corpus: one more WARC", ""]
    if not d:
        return out + missing(".venv/bin/python -m bench.incremental_bench")
    out += [f"The end-to-end build of bench/pipeline_vs_datatrove.py at {d['scale']}x ({d['pages_full']:,} pages), "
            f"then the same work directory with one more copy of the page set ({d['pages_added']:,} pages, "
            f"1/{d['scale']} more), {d['workers']} workers; each a whole `corpus build` command, timed.", ""]
    rows = []
    for run in (d, load("incremental_bench_cluster")):
        if not run:
            continue
        ray = run.get("ray", "a local instance per command")
        runs = run.get("grown_runs_wall_s", [])
        grown = "grown by one WARC copy" + (f" (median of {len(runs)}: {', '.join(f'{w:.1f}' for w in runs)} s)"
                                            if len(runs) > 1 else "")
        rows += [["full build", ray, run["full_wall_s"], 1.0],
                 [grown, ray, run["grown_wall_s"], run["grown_over_full"]]]
        if "fresh_wall_s" in run:
            rows.append(["grown inputs from scratch", ray, run["fresh_wall_s"],
                         round(run["fresh_wall_s"] / run["full_wall_s"], 3)])
        if "grown_equals_fresh" in run:
            rows.append([f"grown == from scratch, every file: {run['grown_equals_fresh']}", ray, None, None])
    out += table(["build", "Ray", "wall s", "÷ full"], rows)
    out += ["", "Per step of the grown build (task seconds; the full build's beside them):", ""]
    out += table(["step", "tasks reused", "computed", "task s", "full build task s"],
                 [[k, v["reused"], v["computed"], v["task_s"], v["full_task_s"]] for k, v in d["grown_steps"].items()])
    if "grown_timeline_s" in d:
        out += ["", "Grown build, seconds from launch to the end of each step (the rest of `exit` is start-up, "
                "planning and writing the version): " + ", ".join(f"{k} {v}" for k, v in d["grown_timeline_s"].items())
                + "."]
    return out + [""] + [f"`{line}`  " for line in d.get("grown_log", [])] + [""]
