"""The dedup stage: exact and MinHash-LSH near-duplicate removal across every shard and source.

Every step is a set of parallel tasks over files in `scratch`, so no process holds the whole corpus:

1. per shard (dedup/signing.py): normalize, hash the normalized text, MinHash signatures, kept in
   the shard cache by content; then per block (runs of shards, dedup/context.py) band keys and text
   hashes, partitioned by hash;
2. per partition (dedup/candidates.py): LSH buckets -> candidate pairs; equal text hashes -> exact edges;
3. per block (twice, and twice more for pairs near the threshold): attach the first document's
   signature, decide by the estimate far from the threshold, by the shingle sets' exact Jaccard near
   it (kept in the shard cache by content, dedup/verdicts.py: a grown corpus compares only the pairs
   with a new document) -> near-duplicate edges;
4. connected components of all edges (dedup/components.py, large-star/small-star);
5. per block, then per cluster partition (dedup/clusters.py): one survivor per cluster by (source
   priority, higher quality score, smaller id), which depends only on the documents;
6. per block, each of its input shards: write kept documents (with `dup_cluster`, `dup_cluster_size`) and rejected ones
   (`exact-dup:<survivor id>` when their normalized text equals the survivor's, else `near-dup:...`).

With `against` (earlier corpus versions), their documents join steps 1-5 as reference shards that
always survive and are never written: a new document that duplicates one is rejected naming it as
`<id>@<version>`, and the earlier version is only read. Nodes are int64 `shard << 32 | row`, input
shards ordered by file name, then the reference shards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dedup import minhash
from dedup.candidates import attach_sets_task, attach_task, bucket_task, verify_sets_task, verify_task
from dedup.clusters import attrs_task, members_task, survivor_task, write_task
from dedup.components import connected_components
from dedup.context import DedupContext
from dedup.signing import known_signatures, scatter_task, signature_task
from pipeline.core.config import ConfigError, at_least, require, stable_hash
from pipeline.core.io import AnyPath, as_path, parquet_num_rows, remove_tree
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import ShardError, published_docs, read_json, write_json
from pipeline.core.stage import Executor, GlobalStage

VERIFY_MODES = ("signature", "exact")
_BAND_ROWS_PER_PARTITION = 4_000_000  # (band, key, node) rows: ~72 MB, a few times that while sorting
_MAX_PARTITIONS = 1024
DOCS_PER_BLOCK = 200_000  # documents per block of shards that exchanges address (dedup/context.py)
# Below this many documents a step's tasks last milliseconds: one task per worker, not several, since
# each costs a round trip (a grown corpus's dedup was ~90 tasks of ~20 ms over 5,000 documents).
_SMALL_DOCS = 50_000
STATS_FILE = "_dedup.json"  # what the run did (reuse counts, pairs): not part of a version


@dataclass
class DedupConfig:
    """Exact and near-duplicate removal. `bands`/`rows` 0 means: chosen for `band_recall` when verifying
    exactly, like datasketch's MinHashLSH when verifying by signature."""

    exact: bool = True  # remove documents whose normalized text equals another's
    near: bool = True  # remove near-duplicates found by MinHash-LSH
    threshold: float = 0.5  # Jaccard similarity of word-shingle sets above which docs are near-dups
    num_perm: int = 128  # MinHash permutations (signature length)
    shingle_size: int = 5  # words per shingle
    seed: int = 1  # permutation seed (datasketch's MinHash default is 1)
    hash_function: str = "poly64"  # or "sha1": datasketch's default hash, ~5x slower (dedup/minhash.py)
    bands: int = 0  # LSH bands; 0 (with rows 0) = chosen from threshold, num_perm and verify (see lsh_params)
    rows: int = 0  # rows per LSH band; bands * rows <= num_perm
    false_positive_weight: float = 0.5  # weights of the error kinds when choosing bands and rows
    false_negative_weight: float = 0.5  # ... (datasketch's MinHashLSH `weights`)
    verify: str = "exact"  # "exact": Jaccard of the shingle sets; "signature": estimated from the signatures
    band_recall: float = 0.98  # bands/rows 0 and verify "exact": pairs at the threshold become candidates this often
    verify_sigmas: float = 6.0  # verify "exact": estimates this many standard deviations from the threshold decide alone (inf: none)
    all_pairs_max: int = 64  # larger LSH buckets are linked by star + chain instead of all pairs
    source_priority: list[str] = field(default_factory=list)  # survivor preference, best first
    quality_column: str = "quality_classifier_score"  # higher wins among equal priority, if present
    partitions: int = 0  # hash partitions of the LSH buckets; 0 = from the data size and workers
    blocks: int = 0  # runs of shards that exchanges address, and the clustering's partitions; 0 = from the data size and workers (never changes results)
    against: list[str] = field(default_factory=list)  # earlier versions (dirs or manifests): their docs win

    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("against", "paths"),)

    def __post_init__(self) -> None:
        require(self.hash_function in minhash.HASH_FUNCTIONS, "hash_function",
                f"expected one of {', '.join(minhash.HASH_FUNCTIONS)}, got {self.hash_function!r}")
        require(self.verify in VERIFY_MODES, "verify", f"expected one of {', '.join(VERIFY_MODES)}, got {self.verify!r}")
        require(0.0 < self.threshold < 1.0, "threshold", f"expected a value in (0, 1), got {self.threshold}")
        at_least(self, 1, "num_perm", "shingle_size")
        at_least(self, 0, "bands", "rows", "partitions", "blocks", "all_pairs_max", "false_positive_weight",
                 "false_negative_weight")
        require(self.verify_sigmas >= 0, "verify_sigmas", f"expected a value >= 0, got {self.verify_sigmas}")
        require(0.0 < self.band_recall < 1.0, "band_recall", f"expected a value in (0, 1), got {self.band_recall}")
        require((self.bands > 0) == (self.rows > 0) and self.bands * self.rows <= self.num_perm, "bands",
                f"set bands and rows both (bands * rows <= num_perm = {self.num_perm}) or neither")

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): as configured; for exact verification, the most selective banding that still
        makes a pair at the threshold a candidate with probability `band_recall` (false candidates
        only cost verification); for signature verification, datasketch's optimum."""
        if self.bands > 0:
            return self.bands, self.rows
        if self.verify == "exact":
            return recall_lsh_params(self.threshold, self.num_perm, self.band_recall)
        return minhash.optimal_lsh_params(
            self.threshold, self.num_perm, self.false_positive_weight, self.false_negative_weight
        )


def recall_lsh_params(threshold: float, num_perm: int, recall: float) -> tuple[int, int]:
    """The largest rows per band r (with bands b = num_perm // r) for which a pair of Jaccard
    `threshold` shares a band with probability 1 - (1 - t^r)^b >= `recall`."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold**r) ** b >= recall:
            best = (b, r)
    return best


class DedupStage(GlobalStage):
    name: ClassVar[str] = "dedup"
    version: ClassVar[str] = "3"
    config_class: ClassVar[type] = DedupConfig

    @classmethod
    def summary_lines(cls, out_dir: Any) -> list[str]:
        path = out_dir / STATS_FILE
        if not path.exists():
            return []
        s = read_json(path)
        reused = f", {s['verdicts_reused']:,} of them by an earlier build" if s.get("verdicts_reused") else ""
        line = (f"dedup, when it ran: signatures of {s['shards']} shards: {s['signatures_reused']} reused, "
                f"{s['signatures_computed']} computed; {s['candidate_pairs']:,} candidate pairs, "
                f"{s['near_edges']:,} near-duplicate edges ({s.get('verified_exactly', 0):,} pairs compared by their "
                f"shingle sets{reused}), {s['exact_edges']:,} exact-duplicate edges")
        if "shards_rewritten" in s:
            line += f"; {s['shards_rewritten']} shards written, {s['input_shards'] - s['shards_rewritten']} copied"
        if s["reference_docs"]:
            line += f"; against {', '.join(s['against'])} ({s['reference_docs']:,} docs)"
        return [line]

    @classmethod
    def add_cli_arguments(cls, parser: Any) -> None:
        parser.add_argument("--against", action="append", default=None, metavar="VERSION",
                            help="an earlier corpus version (its directory): new documents that duplicate "
                                 "one of its documents are removed; it is only read (repeatable)")

    @classmethod
    def apply_cli_arguments(cls, config: Any, args: Any) -> None:
        if getattr(args, "against", None):
            config.against = [*config.against, *args.against]

    @classmethod
    def check_files(cls, config: Any, where: str) -> None:
        for i, version in enumerate(config.against):
            try:
                published_docs(version)
            except ShardError as exc:
                raise ConfigError(f"{where}.against[{i}]: {exc}") from None

    def input_fingerprints(self) -> dict[str, str]:
        """The earlier versions by name and content, so that the step key does not depend on where they are."""
        out = {}
        for version in self.config.against:
            name, docs = published_docs(version)
            out[f"against:{name}"] = stable_hash([sha for _, sha in docs])
        return out

    def run(self, in_shards: list[AnyPath], out_dir: AnyPath, scratch: AnyPath, executor: Executor,
            cache: ShardCache | None = None, digests: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        cfg: DedupConfig = self.config
        cache = cache or ShardCache(None)
        shards = sorted(in_shards, key=lambda p: p.name)
        refs = [(name, path, sha) for name, docs in map(published_docs, cfg.against) for path, sha in docs]
        work = scratch / "dedup"
        remove_tree(work)
        bands, rows = cfg.lsh_params()
        everything = shards + [path for _, path, _ in refs]
        docs = sum(parquet_num_rows(p) for p in everything)
        parts = cfg.partitions or default_partitions(docs, bands if cfg.near else 1, executor.num_workers)
        n, n_all = len(shards), len(everything)
        blocks = min(n_all, cfg.blocks or default_blocks(docs, executor.num_workers))
        ctx = DedupContext(str(work), [str(p) for p in everything], n, parts, cfg, bands, rows,
                           ref_versions=[name for name, _, _ in refs], ref_sha256=[sha for _, _, sha in refs],
                           blocks=blocks)
        signed = _signatures(ctx, cache, digests or {}, executor)
        ctx.sig_dirs = [s["sig_dir"] for s in signed]
        ctx.sha256 = [s["sha256"] for s in signed]
        if docs < _SMALL_DOCS:
            # the rounds' tasks would last milliseconds each: all rounds in one task, not a round trip each
            [rounds] = executor.map(_rounds_task, [(ctx, cache, str(out_dir))], desc="dedup: candidates to survivors")
        else:
            rounds = _rounds(ctx, cache, str(out_dir), executor)
        found, near, unsure = rounds["found"], rounds["near"], rounds["unsure"]
        verdicts_reused, written = rounds["verdicts_reused"], rounds["written"]
        reused = sum(s["reused"] for s in signed)
        write_json({"shards": n_all, "signatures_reused": reused, "signatures_computed": n_all - reused,
                    "reference_docs": sum(parquet_num_rows(p) for _, p, _ in refs),
                    "against": sorted({name for name, _, _ in refs}), "verify": cfg.verify,
                    "bands": bands, "rows": rows, "candidate_pairs": sum(c for _, c in found),
                    "exact_edges": sum(e for e, _ in found), "near_edges": near, "verified_exactly": unsure,
                    "verdicts_reused": verdicts_reused,
                    "input_shards": n, "shards_rewritten": sum(w["rewritten"] for w in written)},
                   out_dir / STATS_FILE)
        return {name: counts for w in written for name, counts in w["counts"].items()}


def _rounds(ctx: DedupContext, cache: ShardCache, out_dir: str, executor: Executor) -> dict[str, Any]:
    """Everything after the signatures, a map per round: band keys, buckets and candidate pairs,
    their verification, connected components, survivors, and the written shards."""
    cfg, blocks = ctx.config, ctx.blocks
    shared = executor.put(ctx)
    every_block = list(range(blocks))
    executor.map(scatter_task, every_block, desc="dedup: band keys", shared=shared)
    found = executor.map(bucket_task, list(range(ctx.partitions)), desc="dedup: buckets", shared=shared)
    near = unsure = verdicts_reused = 0
    if cfg.near:
        executor.map(attach_task, every_block, desc="dedup: candidates", shared=shared)
        decided = executor.map(verify_task, every_block, desc="dedup: verify", shared=shared)
        near, unsure = sum(e for e, _ in decided), sum(a for _, a in decided)
        if unsure:
            with_cache = [(b, cache) for b in every_block]
            known = executor.map(attach_sets_task, with_cache, desc="dedup: shingle sets", shared=shared)
            near += sum(e for e, _ in known)
            verdicts_reused = sum(r for _, r in known)
            near += sum(executor.map(verify_sets_task, with_cache, desc="dedup: verify exactly", shared=shared))
    work = as_path(ctx.work)
    final = connected_components(work / "edges", work / "cc", blocks, executor)
    executor.map(members_task, [(q, str(final)) for q in every_block], desc="dedup: members", shared=shared)
    executor.map(attrs_task, every_block, desc="dedup: cluster attributes", shared=shared)
    executor.map(survivor_task, every_block, desc="dedup: survivors", shared=shared)
    written = executor.map(write_task, [(b, out_dir, cache) for b in every_block], desc="dedup: write", shared=shared)
    return {"found": found, "near": near, "unsure": unsure, "verdicts_reused": verdicts_reused, "written": written}


def _rounds_task(item: tuple[DedupContext, ShardCache, str]) -> dict[str, Any]:
    """`_rounds` inside one task (few documents): each round's map runs here, in order."""
    ctx, cache, out_dir = item
    return _rounds(ctx, cache, out_dir, _InTask())


class _InTask:
    """The executor of `_rounds_task`: a map's items one after another, in the task's process."""

    num_workers = 1

    def put(self, obj: Any) -> Any:
        return obj

    def map(self, fn: Any, items: Any, *, desc: str = "", return_failures: bool = False, shared: Any = None) -> list:
        return [fn(item) if shared is None else fn(item, shared) for item in items]


def _signatures(ctx: DedupContext, cache: ShardCache, digests: Mapping[str, str],
                executor: Executor) -> list[dict[str, Any]]:
    """Every shard's `signature_task` result: found in the cache by the driver where the shard's sha256
    is known (a grown corpus: most shards), from a task for the rest, which hashes the shard to know."""
    signed = known_signatures(ctx, cache, digests)
    todo = [i for i, s in enumerate(signed) if s is None]
    if todo:
        done = executor.map(signature_task, [(i, cache) for i in todo], desc="dedup: signatures",
                            shared=executor.put(ctx))
        for i, s in zip(todo, done, strict=True):
            signed[i] = s
    return signed


def default_partitions(docs: int, rows_per_doc: int, workers: int) -> int:
    """Hash partitions sized by the data (about _BAND_ROWS_PER_PARTITION band rows each), so that one
    task's memory stays bounded; at least two per worker so all are busy (one below _SMALL_DOCS)."""
    by_size = -(-docs * rows_per_doc // _BAND_ROWS_PER_PARTITION)
    per_worker = 1 if docs < _SMALL_DOCS else 2
    return int(min(_MAX_PARTITIONS, max(1, per_worker * workers, by_size)))


def default_blocks(docs: int, workers: int) -> int:
    """Blocks of about DOCS_PER_BLOCK documents, at least four per worker (a block's tasks do unequal
    work; one per worker below _SMALL_DOCS): an exchange writes up to blocks x blocks (or partitions)
    files, and a block task holds one block's signatures (~100 MB)."""
    per_worker = 1 if docs < _SMALL_DOCS else 4
    return max(per_worker * workers, -(-docs // DOCS_PER_BLOCK))
