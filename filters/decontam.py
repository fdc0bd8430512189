"""Eval-set decontamination: remove eval items' text from training documents (lm-evaluation-harness / GPT-3).

The n-grams of every eval item (13 words, or 8 for an item shorter than 13 words, as GPT-3 did for
short tasks) are indexed once in the driver and shared with every task through the object store;
then each shard is scanned by its own task. Where a document holds an eval n-gram, the matching
text plus `window_chars` on each side is cut out; what remains is kept as fragments of at least
`min_fragment_chars`, joined by `fragment_separator`. A document with more than `max_spans` removed
spans, or with nothing left, is rejected as `decontam:<eval set>` (the set with the most matching
n-grams). A "span" is a stretch of text removed in one piece (overlapping windows merge), so one
eval item quoted verbatim counts once, not once per overlapping 13-gram.

Documents with no match are left exactly as they were; modified ones keep their id, and
`decontam_spans_removed` says how many spans each lost. With `ignore_frequent_ngrams`, a first pass
counts in how many documents each eval n-gram occurs, and n-grams found in at least
`frequent_ngram_min_docs` documents (boilerplate such as licence text) are ignored, as GPT-3 did.

`run` also writes `contamination.json`: per eval set, which items were found, in how many documents,
from which sources; `summarize_contamination` prints it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from filters.evalsets import (
    EvalSet,
    EvalSetError,
    load_eval_set,
    load_eval_sets,
    parse_eval_spec,
    parse_eval_value,
)
from filters.ngrams import NgramIndex, word_spans, words
from pipeline.core.config import ConfigError, at_least, require, stable_hash
from pipeline.core.io import AnyPath, as_path, sha256_file
from pipeline.core.schema import with_rejection
from pipeline.core.shardcache import ShardCache, content_key
from pipeline.core.shards import (
    REJECTED_DIR,
    read_json,
    read_shard_bytes,
    table_from_bytes,
    write_json,
    write_table,
)
from pipeline.core.stage import Executor, GlobalStage

REPORT_FILE = "contamination.json"
STATS_FILE = "_decontam.json"  # what the run did (scans reused): not part of a version
SPANS_COLUMN = "decontam_spans_removed"
ITEMS_COLUMN = "decontam_items"  # per document: the eval items it held, as "<set>/<item key>"
EXAMPLE_DOCS = 5  # document ids listed per found item in the report
BATCH_WORDS = 1 << 20  # words looked up per call into the index (bounds a task's memory)


@dataclass
class DecontamConfig:
    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("evals", "eval"),)
    # NAME -> "PATH[:field1,field2]" (see filters/evalsets.py); NAME appears in `decontam:NAME`.
    evals: dict[str, str] = field(default_factory=dict)
    ngram: int = 13
    short_ngram: int = 8  # n for items shorter than `ngram` words; shorter items are not indexed
    window_chars: int = 200  # removed on each side of a match
    min_fragment_chars: int = 200  # shorter leftover fragments are dropped too
    max_spans: int = 10  # a document with more removed spans than this is dropped whole
    fragment_separator: str = "\n\n"
    ignore_frequent_ngrams: bool = False  # needs a counting pass over the corpus first
    frequent_ngram_min_docs: int = 10

    def __post_init__(self) -> None:
        at_least(self, 1, "ngram", "frequent_ngram_min_docs")
        require(1 <= self.short_ngram <= self.ngram, "short_ngram",
                f"need 1 <= short_ngram ({self.short_ngram}) <= ngram ({self.ngram})")
        at_least(self, 0, "window_chars", "min_fragment_chars", "max_spans")


@dataclass
class ScanIndex:
    """What every scan task needs: the n-gram index and which eval set each item belongs to."""

    ngrams: NgramIndex
    item_set: np.ndarray  # int32: item index -> eval set index
    set_names: list[str]
    item_names: list[str] = field(default_factory=list)  # item index -> "<set>/<item key>"


@dataclass
class ScanParams:
    window_chars: int
    min_fragment_chars: int
    max_spans: int
    fragment_separator: str

    @classmethod
    def of(cls, config: DecontamConfig) -> ScanParams:
        return cls(config.window_chars, config.min_fragment_chars, config.max_spans, config.fragment_separator)


@dataclass
class DocOutcome:
    """What decontamination did to one document that held eval n-grams."""

    text: str | None  # the remaining text; None when the document is dropped
    spans_removed: int
    chars_removed: int
    reason_set: int  # the eval set with the most matching n-grams
    items: list[int]  # eval items found, sorted
    sets: list[int]  # eval sets found, sorted


# ------------------------------------------------------------------------------------ the index


def build_index(eval_sets: list[EvalSet], config: DecontamConfig) -> tuple[ScanIndex, list[int]]:
    """Index every item of every set; returns the index and the n used per item (0: too short)."""
    item_words = [words(item.text) for s in eval_sets for item in s.items]
    item_set = np.concatenate([np.full(len(s.items), i, dtype=np.int32) for i, s in enumerate(eval_sets)])
    ngrams, used = NgramIndex.build(item_words, config.ngram, config.short_ngram)
    names = [f"{s.name}/{item.key}" for s in eval_sets for item in s.items]
    return ScanIndex(ngrams, item_set, [s.name for s in eval_sets], names), used


# ------------------------------------------------------------------------------------- scanning


def find_matches(texts: list[str], index: ScanIndex) -> dict[int, list[tuple[int, int, int]]]:
    """For each document with a match: its matches as (first word, n, item), sorted."""
    found: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for docs, ids, starts in _batches(texts, index.ngrams):
        m = index.ngrams.find(ids)
        if not len(m):
            continue
        where = np.searchsorted(starts, m.pos, side="right") - 1
        for d, p, n, o in zip(where.tolist(), (m.pos - starts[where]).tolist(), m.n.tolist(), m.owner.tolist(),
                              strict=True):
            found[docs[d]].append((p, n, o))
    return {d: sorted(v) for d, v in sorted(found.items())}


def _batches(texts: list[str], ngrams: NgramIndex):
    """Documents' word ids concatenated (separated by -1) in batches of about BATCH_WORDS words."""
    parts: list[np.ndarray] = []
    docs: list[int] = []
    starts: list[int] = []
    size = 0
    sep = np.full(1, -1, dtype=np.int64)
    for i, text in enumerate(texts):
        ids = ngrams.encode(words(text))
        docs.append(i)
        starts.append(size)
        parts += [ids, sep]
        size += len(ids) + 1
        if size >= BATCH_WORDS:
            yield docs, np.concatenate(parts), np.array(starts)
            parts, docs, starts, size = [], [], [], 0
    if docs:
        yield docs, np.concatenate(parts), np.array(starts)


def decontaminate(text: str, matches: list[tuple[int, int, int]], index: ScanIndex, params: ScanParams) -> DocOutcome:
    """Cut the matches (plus the window on each side) out of `text`, keeping long enough fragments."""
    spans = word_spans(text)
    cuts = sorted(
        (max(0, spans[p][0] - params.window_chars), min(len(text), spans[p + n - 1][1] + params.window_chars))
        for p, n, _ in matches
    )
    merged: list[list[int]] = []
    for start, end in cuts:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    bounds = [0, *(b for span in merged for b in span), len(text)]
    fragments = [text[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True)]
    kept = [f for f in fragments if len(f) >= params.min_fragment_chars]
    per_set = Counter(int(index.item_set[o]) for _, _, o in matches)
    reason_set = min(per_set, key=lambda s: (-per_set[s], s))
    dropped = len(merged) > params.max_spans or not kept
    return DocOutcome(
        text=None if dropped else params.fragment_separator.join(kept),
        spans_removed=len(merged),
        chars_removed=len(text) - (0 if dropped else sum(map(len, kept))),
        reason_set=reason_set,
        items=sorted({o for _, _, o in matches}),
        sets=sorted(per_set),
    )


def decontaminate_texts(texts: list[str], index: ScanIndex, params: ScanParams) -> dict[int, DocOutcome]:
    """The outcome for every document of `texts` that holds eval n-grams (others are untouched)."""
    return {d: decontaminate(texts[d], m, index, params) for d, m in find_matches(texts, index).items()}


# ---------------------------------------------------------------------------------------- tasks


def scan_shard(args: tuple[str, str, ScanParams, ShardCache, str], index: ScanIndex) -> dict[str, Any]:
    """Decontaminate one shard: write its kept and rejected shards and return what was found.

    The result depends only on the shard's content and the index (`index_key`), so it is kept in the
    shard cache: a build that adds shards scans only those, and the report sums every shard's findings."""
    in_path, out_dir_s, params, cache, index_key = args
    out_dir, name = as_path(out_dir_s), as_path(in_path).stem
    kept_path, rejected_path = out_dir / f"{name}.parquet", out_dir / REJECTED_DIR / f"{name}.parquet"
    data = read_shard_bytes(in_path)
    entry = cache.entry(content_key(data), kind="scan", index=index_key)
    files = {"kept.parquet": kept_path, "rejected.parquet": rejected_path}
    if (cached := cache.lookup(entry)) is not None:
        cache.restore(entry, files)
        return {**cached, "reused": True}
    findings = _scan_table(table_from_bytes(data, in_path), index, params, kept_path, rejected_path)
    cache.store(entry, files, findings)
    return findings


def _scan_table(table: pa.Table, index: ScanIndex, params: ScanParams, kept_path: AnyPath,
                rejected_path: AnyPath) -> dict[str, Any]:
    texts = table.column("text").to_pylist()
    outcomes = decontaminate_texts(texts, index, params)

    spans = np.zeros(table.num_rows, dtype=np.int32)
    keep = np.ones(table.num_rows, dtype=bool)
    reasons: list[str] = []
    modified = False
    new_texts = list(texts)
    for d, out in outcomes.items():
        spans[d] = out.spans_removed
        if out.text is None:
            keep[d] = False
            reasons.append(f"decontam:{index.set_names[out.reason_set]}")
        else:
            new_texts[d] = out.text
            modified = True
    table = table.append_column(pa.field(SPANS_COLUMN, pa.int32(), nullable=False), pa.array(spans, pa.int32()))
    items: list[list[str]] = [[] for _ in range(table.num_rows)]
    for d, out in outcomes.items():
        items[d] = [index.item_names[o] for o in out.items]
    table = table.append_column(pa.field(ITEMS_COLUMN, pa.list_(pa.string()), nullable=False),
                                pa.array(items, pa.list_(pa.string())))
    rejected = with_rejection(table.filter(pa.array(~keep)), "decontam", reasons)
    kept = table
    if modified:
        i = table.schema.get_field_index("text")
        kept = table.set_column(i, table.schema.field(i), pa.array(new_texts, table.schema.field(i).type))
    kept = kept.filter(pa.array(keep))
    write_table(kept, kept_path)
    write_table(rejected, rejected_path)
    return _findings(table, outcomes, index)


def count_shard(item: tuple[str, ShardCache], index: ScanIndex) -> list[dict[str, list[int]]]:
    """Per index table: the entries found in this shard and in how many of its documents each."""
    in_path, cache = item
    data = read_shard_bytes(in_path)
    entry = cache.entry(content_key(data), kind="count")
    if (cached := cache.lookup(entry)) is not None:
        return cached["tables"]
    texts = table_from_bytes(data, in_path).column("text").to_pylist()
    pairs: list[set[tuple[int, int]]] = [set() for _ in index.ngrams.tables]
    for docs, ids, starts in _batches(texts, index.ngrams):
        m = index.ngrams.find(ids)
        where = np.searchsorted(starts, m.pos, side="right") - 1
        for d, t, e in zip(where.tolist(), m.table.tolist(), m.entry.tolist(), strict=True):
            pairs[t].add((docs[d], e))
    out = []
    for table_pairs in pairs:
        c = Counter(e for _, e in table_pairs)
        entries = sorted(c)
        out.append({"entries": entries, "docs": [c[e] for e in entries]})
    cache.commit(entry, {"tables": out})
    return out


def _findings(table: pa.Table, outcomes: dict[int, DocOutcome], index: ScanIndex) -> dict[str, Any]:
    """One shard's contribution to the contamination report (summed over shards by the driver)."""
    ids = table.column("id").to_pylist()
    sources = table.column("source").to_pylist()
    sets: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    for d, out in outcomes.items():
        src = sources[d]
        for s in out.sets:
            entry = sets.setdefault(index.set_names[s], {"matched": {}, "modified": {}, "dropped": {}})
            _inc(entry["matched"], src)
            if out.text is not None:
                _inc(entry["modified"], src)
            elif s == out.reason_set:
                _inc(entry["dropped"], src)
        for o in out.items:
            it = items.setdefault(str(o), {"docs": 0, "sources": {}, "examples": []})
            it["docs"] += 1
            _inc(it["sources"], src)
            it["examples"] = sorted([*it["examples"], ids[d]])[:EXAMPLE_DOCS]
    dropped = sum(1 for o in outcomes.values() if o.text is None)
    totals = {
        "docs_scanned": table.num_rows,
        "docs_matched": len(outcomes),
        "docs_modified": len(outcomes) - dropped,
        "docs_dropped": dropped,
        "spans_removed": sum(o.spans_removed for o in outcomes.values()),
        "chars_removed": sum(o.chars_removed for o in outcomes.values()),
    }
    return {
        "totals": totals,
        "sets": sets,
        "items": items,
    }


def _inc(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


# ---------------------------------------------------------------------------------------- stage


class DecontamStage(GlobalStage):
    name = "decontam"
    version = "3"
    config_class = DecontamConfig
    report_files: ClassVar[dict[str, str]] = {"contamination": REPORT_FILE}

    @classmethod
    def summary_lines(cls, out_dir: Any) -> list[str]:
        path, stats = as_path(out_dir) / REPORT_FILE, as_path(out_dir) / STATS_FILE
        lines = [summarize_contamination(read_json(path))] if path.exists() else []
        if stats.exists():
            s = read_json(stats)
            lines.append(f"decontam, when it ran: scans of {s['shards']} shards: {s['scans_reused']} reused, "
                         f"{s['shards'] - s['scans_reused']} computed")
        return lines

    @classmethod
    def add_cli_arguments(cls, parser: Any) -> None:
        parser.add_argument("--eval", action="append", default=[], metavar="NAME=PATH[:fields]",
                            help="an eval set to decontaminate against (repeatable)")

    @classmethod
    def apply_cli_arguments(cls, config: Any, args: Any) -> None:
        for spec in args.eval:
            parse_eval_spec(spec)  # a clear error naming the spec, before any work
            name, _, value = spec.partition("=")
            config.evals[name.strip()] = value

    @classmethod
    def check_files(cls, config: DecontamConfig, where: str) -> None:
        """Every eval set loads (its file is there, its fields are right, it holds items) before any
        work starts; errors name the eval set's key."""
        if not config.evals:
            raise ConfigError(f'{where}.evals: name at least one eval set, as NAME = "PATH[:fields]"')
        for name in sorted(config.evals):
            key = f"{where}.evals.{name}"
            path, fields = parse_eval_value(name, config.evals[name], where=key)
            try:
                load_eval_set(name, path, fields)
            except EvalSetError as exc:
                raise EvalSetError(f"{key}: {exc}") from None

    def eval_fingerprint(self) -> dict[str, str]:
        """sha256 of each eval file, by set name: the build key should include it, so that an edited
        eval file reruns the stage even though the config (which holds only paths) is unchanged."""
        out = {}
        for name in sorted(self.config.evals):
            path, _ = parse_eval_value(name, self.config.evals[name])
            try:
                out[name] = sha256_file(path)
            except OSError as exc:
                raise EvalSetError(f"eval set {name}: cannot read {path}: {exc}") from None
        return out

    def input_fingerprints(self) -> dict[str, str]:
        return {f"eval:{k}": v for k, v in self.eval_fingerprint().items()}

    def run(self, in_shards: list[AnyPath], out_dir: AnyPath, scratch: AnyPath, executor: Executor,
            cache: ShardCache | None = None, digests: Mapping[str, str] | None = None) -> None:
        # `digests` is not used (yet): each count and scan task hashes the shard it reads anyway
        config = self.config
        cache = cache or ShardCache(None)
        if not config.evals:
            raise ConfigError("stages.decontam.evals: name at least one eval set, as NAME = \"PATH[:fields]\"")
        if not 1 <= config.short_ngram <= config.ngram:
            raise ConfigError(f"stages.decontam: need 1 <= short_ngram ({config.short_ngram}) <= ngram ({config.ngram})")
        eval_sets = load_eval_sets(config.evals)
        index, used = build_index(eval_sets, config)
        ignored = [np.zeros(len(t), dtype=bool) for t in index.ngrams.tables]
        if config.ignore_frequent_ngrams:
            ref = executor.put(index)
            per_shard = executor.map(count_shard, [(str(p), cache) for p in in_shards], desc="decontam:count",
                                     shared=ref)
            ignored = frequent_entries(index, per_shard, config.frequent_ngram_min_docs)
        report_sets = _describe_sets(eval_sets, index, used, ignored)
        if config.ignore_frequent_ngrams:
            index = ScanIndex(index.ngrams.without_entries(ignored), index.item_set, index.set_names,
                              index.item_names)
        ref = executor.put(index)
        params = ScanParams.of(config)
        # the index differs between builds only by the frequent n-grams ignored (config and eval files
        # key the cache's directory)
        index_key = stable_hash([hashlib.sha256(np.packbits(m).tobytes()).hexdigest() for m in ignored])
        items = [(str(p), str(out_dir), params, cache, index_key) for p in in_shards]
        findings = executor.map(scan_shard, items, desc="decontam", shared=ref)
        report = build_report(eval_sets, report_sets, findings, config)
        write_json(report, out_dir / REPORT_FILE)
        reused = sum(bool(f.get("reused")) for f in findings)
        write_json({"shards": len(findings), "scans_reused": reused}, out_dir / STATS_FILE)


def frequent_entries(index: ScanIndex, per_shard: list[list[dict[str, list[int]]]], min_docs: int) -> list[np.ndarray]:
    """Per index table, a mask of the entries found in at least `min_docs` documents."""
    masks = []
    for t, table in enumerate(index.ngrams.tables):
        docs = np.zeros(len(table), dtype=np.int64)
        for shard in per_shard:
            np.add.at(docs, np.array(shard[t]["entries"], dtype=np.int64), np.array(shard[t]["docs"], dtype=np.int64))
        masks.append(docs >= min_docs)
    return masks


# --------------------------------------------------------------------------------------- report


def _describe_sets(eval_sets: list[EvalSet], index: ScanIndex, used: list[int], ignored: list[np.ndarray]):
    out: dict[str, dict[str, Any]] = {}
    first = 0
    ngrams = [np.bincount(index.item_set[t.owners], minlength=len(eval_sets)) for t in index.ngrams.tables]
    dropped = [np.bincount(index.item_set[t.owners[m]], minlength=len(eval_sets))
               for t, m in zip(index.ngrams.tables, ignored, strict=True)]
    for s, es in enumerate(eval_sets):
        n_used = used[first : first + len(es.items)]
        first += len(es.items)
        out[es.name] = {
            # the file by name and content, not by path: the report must not depend on where it was read
            "file": as_path(es.path).name,
            "sha256": sha256_file(es.path),
            "fields": es.fields,
            "items": len(es.items),
            "items_indexed": sum(1 for n in n_used if n),
            "items_too_short": sum(1 for n in n_used if not n),
            "ngrams": {str(t.n): int(c[s]) for t, c in zip(index.ngrams.tables, ngrams, strict=True)},
            "ngrams_ignored_frequent": int(sum(int(c[s]) for c in dropped)),
        }
    return out


def _preview(text: str, limit: int = 100) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_report(
    eval_sets: list[EvalSet], described: dict[str, dict[str, Any]], findings: list[dict[str, Any]],
    config: DecontamConfig,
) -> dict[str, Any]:
    """The contamination report: totals, and per eval set what was found where."""
    owners = [(es.name, item) for es in eval_sets for item in es.items]
    sets = {name: {**d, "items_found": 0, "docs_matched": 0, "docs_modified": 0, "docs_dropped": 0,
                   "sources": {}, "found": {}} for name, d in described.items()}
    totals = {"docs_scanned": 0, "docs_matched": 0, "docs_modified": 0, "docs_dropped": 0,
              "spans_removed": 0, "chars_removed": 0}
    for f in findings:
        for key in totals:
            totals[key] += f["totals"][key]
        for name, c in f["sets"].items():
            entry = sets[name]
            for src, n in c["matched"].items():
                _inc(entry["sources"], src, n)
            entry["docs_matched"] += sum(c["matched"].values())
            entry["docs_modified"] += sum(c["modified"].values())
            entry["docs_dropped"] += sum(c["dropped"].values())
        for o, it in f["items"].items():
            name, item = owners[int(o)]
            found = sets[name]["found"].setdefault(item.key, {"docs": 0, "sources": {}, "examples": [],
                                                               "text": _preview(item.text)})
            found["docs"] += it["docs"]
            for src, n in it["sources"].items():
                _inc(found["sources"], src, n)
            found["examples"] = sorted([*found["examples"], *it["examples"]])[:EXAMPLE_DOCS]
    for entry in sets.values():
        entry["items_found"] = len(entry["found"])
    return {
        "stage": "decontam",
        "config": {
            "ngram": config.ngram, "short_ngram": config.short_ngram, "window_chars": config.window_chars,
            "min_fragment_chars": config.min_fragment_chars, "max_spans": config.max_spans,
            "ignore_frequent_ngrams": config.ignore_frequent_ngrams,
            "frequent_ngram_min_docs": config.frequent_ngram_min_docs,
        },
        "totals": totals,
        "eval_sets": sets,
    }


def summarize_contamination(report: dict[str, Any], items_per_set: int = 5) -> str:
    """A few lines for the terminal: totals, then per eval set the items found and where."""
    t = report["totals"]
    lines = [
        f"decontam: {t['docs_scanned']:,} docs scanned; {t['docs_matched']:,} matched an eval set:"
        f" {t['docs_modified']:,} modified ({t['spans_removed']:,} spans, {t['chars_removed']:,} chars removed),"
        f" {t['docs_dropped']:,} dropped"
    ]
    for name, s in report["eval_sets"].items():
        sources = ", ".join(f"{src} {n:,}" for src, n in sorted(s["sources"].items())) or "none"
        lines.append(
            f"  {name}: {s['items_found']:,} of {s['items']:,} items found in {s['docs_matched']:,} docs"
            f" (sources: {sources}); {s['docs_modified']:,} modified, {s['docs_dropped']:,} dropped"
            + (f"; {s['items_too_short']:,} items too short to index" if s["items_too_short"] else "")
            + (f"; {s['ngrams_ignored_frequent']:,} frequent n-grams ignored" if s["ngrams_ignored_frequent"] else "")
        )
        found = sorted(s["found"].items(), key=lambda kv: (-kv[1]["docs"], kv[0]))
        for key, it in found[:items_per_set]:
            lines.append(f"    {key} ({it['docs']:,} docs): {it['text']}")
        if len(found) > items_per_set:
            lines.append(f"    ... and {len(found) - items_per_set:,} more items")
    return "\n".join(lines)
