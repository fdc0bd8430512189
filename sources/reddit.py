"""The Reddit source: OpenWebText's recipe, from Pushshift submission dumps to fetched, extracted pages.

Plan (in the driver, parallel through `ctx.executor`):

1. **Parse** every dump (one task each; see sources/pushshift.py for formats and URL rules). Each
   submission is classified in order: `reddit:malformed-record` (a line that is not a JSON object;
   meta names file and line), `reddit:self-post`, `reddit:over-18`, `reddit:bad-url` (no http(s)
   URL), `reddit:blocked-domain`, `reddit:blocked-extension`. Those rows go to the dump's
   rejection table; the eligible ones go to per-partition bucket files, partitioned by the sha1 of
   the normalized URL. A dump that ends early adds one `reddit:truncated-dump` row. Tables live
   under `ctx.scratch` and are reused while a local dump's fingerprint and the rules are unchanged
   (a dump given by URL is streamed and parsed again at every plan, and fingerprinted as it is read).
2. **Aggregate** each URL partition (one task each): submissions grouped by normalized URL, the
   score summed over the group's eligible submissions. A group below `min_score` rejects every
   submission as `reddit:low-score`; otherwise its first submission (earliest `created_utc`, then
   dump order, then line) stands for the URL and the others are `reddit:duplicate-url`.

Work units: one per dump (`dump-*`: yields its rejection rows) and one per non-empty URL partition
(`urls-pNNNNN-of-NNNNN`: yields the group rejections, then fetches the kept URLs into the WARC
archive and extracts them). So every submission read is exactly one row: a kept document (its URL's
representative), a fetch/extraction rejection of that representative (`fetch:timeout`,
`fetch:http-500`, `fetch:private-address`, ..., `reddit:extract-empty`, `reddit:lang:de`, ...), or a
recipe rejection. Rows come out in sorted URL order, so outputs do not depend on fetch timing.

Fetching and archiving are sources/fetch.py's and sources/archive.py's: one archive directory per partition
(`<archive_dir>/pNNNNN-of-NNNNN/`), where a rerun finds every earlier outcome and fetches only URLs
it has none for (so changing `partitions` starts a new archive); the outcomes a task killed mid-fetch
had recorded count too (the archive publishes its leftover segment when read). The per-host
politeness limit holds within a task; tasks run in parallel, so a host sees at most (running tasks x per-host limit) requests
at once. Archived responses are extracted by
the `cc` source's `RecordExtractor`, the code path Common Crawl records take, with the recipe's
domain and extension blocklists applied again to the final URL after redirects.

Documents: id `reddit/<sha1 of the normalized URL>[:16]`, url the normalized URL, meta with the
aggregated `score`, `subreddits`, `submission_ids`, the first submission's title, the final URL after
redirects, and where the response is archived.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.extractor import (
    Extractor,
    InputError,
    PlanContext,
    WorkUnit,
    expand_inputs,
    unit_key,
)
from pipeline.core.io import as_path, local_file, local_mirror, write_json, write_table
from pipeline.core.schema import Doc, Rejected
from sources.archive import Outcome, WarcArchive
from sources.cc import CommonCrawlConfig, CommonCrawlExtractor, RecordExtractor
from sources.fetch import FetchConfig, Fetcher
from sources.pushshift import (
    DEFAULT_BLOCKED_DOMAINS,
    DEFAULT_BLOCKED_EXTENSIONS,
    DumpReader,
    UrlRules,
    classify,
    dump_fingerprint,
    is_remote,
    short_name,
    url_hash,
    url_partition,
)
from sources.warc import WarcError, iter_records

SOURCE = "reddit"
FLUSH_ROWS = 100_000

REJECT_SCHEMA = pa.schema([
    ("line", pa.int64()), ("submission_id", pa.string()), ("subreddit", pa.string()), ("score", pa.int64()),
    ("url", pa.string()), ("normalized_url", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
])
CANDIDATE_SCHEMA = pa.schema([
    ("normalized_url", pa.string()), ("score", pa.int64()), ("created_utc", pa.int64()), ("line", pa.int64()),
    ("submission_id", pa.string()), ("subreddit", pa.string()), ("title", pa.string()), ("url", pa.string()),
])
GROUP_SCHEMA = pa.schema([
    ("normalized_url", pa.string()), ("role", pa.string()), ("group_score", pa.int64()),
    ("dump", pa.string()), ("line", pa.int64()), ("submission_id", pa.string()), ("subreddit", pa.string()),
    ("score", pa.int64()), ("created_utc", pa.int64()), ("title", pa.string()), ("url", pa.string()),
])


@dataclass
class RedditConfig:
    """The OpenWebText recipe's settings; the defaults are the recipe's."""
    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("archive_dir", "path"), ("extraction.lang_model_path", "path"))

    min_score: int = 3  # kept if the score summed over a URL's submissions reaches this
    drop_over_18: bool = True  # reject submissions flagged over_18 (NSFW) as `reddit:over-18`
    # submission URLs on these domains or their subdomains are `reddit:blocked-domain` (final URL too)
    blocked_domains: list[str] = field(default_factory=lambda: list(DEFAULT_BLOCKED_DOMAINS))
    # URL path extensions (leading dot optional) rejected as `reddit:blocked-extension` (final URL too)
    blocked_extensions: list[str] = field(default_factory=lambda: list(DEFAULT_BLOCKED_EXTENSIONS))
    partitions: int = 64  # URL partitions = fetch tasks; changing it starts a new archive
    archive_dir: str = ""  # WARC archive of fetched pages; "" = <scratch>/archive (kept across builds)
    refetch_failed: bool = False  # retry URLs whose archived outcome is a failure
    download_timeout_s: float = 120.0  # for dumps given as http(s) URLs
    fetch: FetchConfig = field(default_factory=FetchConfig)
    extraction: CommonCrawlConfig = field(default_factory=CommonCrawlConfig)

    def __post_init__(self) -> None:
        from pipeline.core.config import at_least, positive

        at_least(self, 1, "partitions")
        at_least(self, 0, "min_score")
        positive(self, "download_timeout_s")

    def rules(self) -> UrlRules:
        return UrlRules.of(self.blocked_domains, self.blocked_extensions, self.drop_over_18)

    def rules_hash(self) -> str:
        from pipeline.core.config import stable_hash

        return stable_hash({"domains": sorted(self.blocked_domains), "extensions": sorted(self.blocked_extensions),
                            "over_18": self.drop_over_18, "partitions": self.partitions, "parser": PARSER_VERSION})


PARSER_VERSION = "1"


# -------------------------------------------------------------------------------------- parse step


@dataclass(frozen=True)
class ParseJob:
    spec: str
    out_dir: str
    rules: UrlRules
    partitions: int
    timeout_s: float
    fingerprint: str  # "" for a remote dump: computed while parsing


class _Buffers:
    """Column buffers flushed to one Parquet writer per output file, to bound a big dump's memory."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.schemas: dict[str, pa.Schema] = {}
        self.pending = 0

    def add(self, name: str, schema: pa.Schema, row: dict[str, Any]) -> None:
        self.rows.setdefault(name, []).append(row)
        self.schemas[name] = schema
        self.pending += 1
        if self.pending >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for name, rows in self.rows.items():
            if rows:
                if name not in self.writers:
                    self.writers[name] = pq.ParquetWriter(self.out_dir / f".{name}.tmp", self.schemas[name],
                                                          compression="zstd")
                self.writers[name].write_table(pa.Table.from_pylist(rows, schema=self.schemas[name]))
                rows.clear()
        self.pending = 0

    def close(self) -> list[str]:
        self.flush()
        for name, writer in self.writers.items():
            writer.close()
            os.replace(self.out_dir / f".{name}.tmp", self.out_dir / name)
        return sorted(self.writers)


def parse_dump(job: ParseJob) -> dict[str, Any]:
    """Classify every line of one dump into its rejection table and per-partition candidate buckets."""
    done = as_path(job.out_dir) / "_done.json"
    if done.exists() and job.fingerprint:
        return json.loads(done.read_text())
    with local_mirror(job.out_dir) as out_dir:
        return _parse_dump(job, out_dir)


def _parse_dump(job: ParseJob, out_dir: Path) -> dict[str, Any]:
    done = out_dir / "_done.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    buffers = _Buffers(out_dir)
    reader = DumpReader(job.spec, job.timeout_s)
    counts = {"lines": 0, "eligible": 0, "rejected": 0}
    for item in reader:
        counts["lines"] += 1
        if item.record is None:
            reason = "reddit:truncated-dump" if item.truncated else "reddit:malformed-record"
            buffers.add("rejected.parquet", REJECT_SCHEMA, {
                "line": item.line, "submission_id": "", "subreddit": "", "score": 0, "url": "",
                "normalized_url": None, "reason": reason, "detail": item.error or "",
            })
            counts["rejected"] += 1
            continue
        sub = classify(item.line, item.record, job.rules)
        if sub.reason is not None:
            buffers.add("rejected.parquet", REJECT_SCHEMA, {
                "line": sub.line, "submission_id": sub.submission_id, "subreddit": sub.subreddit,
                "score": sub.score, "url": sub.url, "normalized_url": sub.normalized_url,
                "reason": sub.reason, "detail": sub.detail,
            })
            counts["rejected"] += 1
            continue
        assert sub.normalized_url is not None
        bucket = url_partition(sub.normalized_url, job.partitions)
        buffers.add(f"bucket-{bucket:05d}.parquet", CANDIDATE_SCHEMA, {
            "normalized_url": sub.normalized_url, "score": sub.score, "created_utc": sub.created_utc,
            "line": sub.line, "submission_id": sub.submission_id, "subreddit": sub.subreddit,
            "title": sub.title, "url": sub.url,
        })
        counts["eligible"] += 1
    files = buffers.close()
    if "rejected.parquet" not in files:
        write_table(REJECT_SCHEMA.empty_table(), out_dir / "rejected.parquet")
    result = {
        "spec": job.spec, "dump": short_name(job.spec), "fingerprint": job.fingerprint or reader.sha256,
        "counts": counts, "buckets": sorted(f for f in files if f.startswith("bucket-")),
    }
    write_json(result, done)
    return result


# ---------------------------------------------------------------------------------- aggregate step


@dataclass(frozen=True)
class AggregateJob:
    partition: int
    partitions: int
    dumps: list[tuple[str, str]]  # (dump name, parsed dir), in dump order
    out_dir: str
    min_score: int


def aggregate_partition(job: AggregateJob) -> dict[str, Any] | None:
    """Group one partition's candidates by normalized URL; write the roles table, content-addressed."""
    bucket = f"bucket-{job.partition:05d}.parquet"
    rows: list[tuple[Any, ...]] = []
    for order, (dump, parsed_dir) in enumerate(job.dumps):
        path = as_path(parsed_dir) / bucket
        if not path.exists():
            continue
        t = pq.read_table(local_file(path), schema=CANDIDATE_SCHEMA).to_pydict()
        for i in range(len(t["normalized_url"])):
            rows.append((t["normalized_url"][i], t["created_utc"][i], order, t["line"][i], dump, t["score"][i],
                         t["submission_id"][i], t["subreddit"][i], t["title"][i], t["url"][i]))
    if not rows:
        return None
    rows.sort()
    totals: dict[str, int] = {}
    for r in rows:
        totals[r[0]] = totals.get(r[0], 0) + r[5]
    out: dict[str, list[Any]] = {name: [] for name in GROUP_SCHEMA.names}
    previous = None
    for url, created, _order, line, dump, score, sid, subreddit, title, raw_url in rows:
        if totals[url] < job.min_score:
            role = "low-score"
        else:
            role = "doc" if url != previous else "duplicate-url"
        previous = url
        for name, value in (("normalized_url", url), ("role", role), ("group_score", totals[url]),
                            ("dump", dump), ("line", line), ("submission_id", sid), ("subreddit", subreddit),
                            ("score", score), ("created_utc", created), ("title", title), ("url", raw_url)):
            out[name].append(value)
    table = pa.table(out, schema=GROUP_SCHEMA)
    digest = hashlib.sha256(json.dumps(out, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    path = as_path(job.out_dir) / f"p{job.partition:05d}-{digest[:16]}.parquet"
    if not path.exists():
        write_table(table, path)
    roles: dict[str, int] = {}
    for role in out["role"]:
        roles[role] = roles.get(role, 0) + 1
    return {"path": str(path), "fingerprint": "sha256:" + digest, "roles": roles}


# --------------------------------------------------------------------------------------- extractor


def _submission_id(dump: str, line: int, sid: str) -> str:
    return f"{SOURCE}/t3_{sid}" if sid else f"{SOURCE}/{dump}:{line}"


def doc_id(normalized_url: str) -> str:
    return f"{SOURCE}/{url_hash(normalized_url)[:16]}"


class RedditExtractor(Extractor):
    name = SOURCE
    version = "3"  # 3: extraction through the cc path's hybrid extractor; undecodable pages counted
    config_class = RedditConfig
    stage_defaults = {
        # OpenWebText kept English pages with fastText/langdetect confidence >= 0.5.
        "langid": {"languages": ["en"], "min_score": 0.5},
        # OpenWebText's 128-token minimum and the Gopher rules.
        "quality": {"rules": ["min_tokens", "gopher_quality", "gopher_repetition"]},
    }

    def __init__(self, config: RedditConfig | None = None) -> None:
        super().__init__(config)
        self._records: RecordExtractor | None = None

    @classmethod
    def check_files(cls, config: RedditConfig, where: str) -> None:
        CommonCrawlExtractor.check_files(config.extraction, f"{where}.extraction")

    def setup(self) -> None:
        """Load the extraction models once per worker process."""
        self._record_extractor()

    def _record_extractor(self) -> RecordExtractor:
        if self._records is None:
            cfg = self.config.extraction
            cfg = dataclasses.replace(
                cfg,
                blocked_domains=sorted(set(cfg.blocked_domains) | set(self.config.blocked_domains)),
                blocked_extensions=sorted(set(cfg.blocked_extensions)
                                          | {"." + e.lstrip(".") for e in self.config.blocked_extensions}),
            )
            self._records = RecordExtractor(cfg, source=SOURCE)
        return self._records

    # ---------------------------------------------------------------------------------------- plan

    def plan(self, inputs: list[str], ctx: PlanContext) -> list[WorkUnit]:
        cfg = self.config
        remote = sorted(i for i in inputs if is_remote(i))
        local = [str(p) for p in expand_inputs([i for i in inputs if not is_remote(i)])] if any(
            not is_remote(i) for i in inputs) else []
        specs = sorted(set(local)) + remote
        if not specs:
            raise InputError("reddit: no input dumps given")
        rules_hash = cfg.rules_hash()
        root = ctx.scratch / "reddit"
        jobs = []
        for spec in specs:
            if is_remote(spec):  # fingerprinted while parsed, so parsed again every plan
                fp = ""
                tag = "url-" + hashlib.sha1(spec.encode()).hexdigest()[:12]
            else:
                fp = ctx.fingerprints.of(spec) if ctx.fingerprints is not None else dump_fingerprint(spec)
                tag = fp.split(":")[-1][:16]
            out_dir = root / "parsed" / f"{unit_key(spec)}-{tag}-{rules_hash}"
            jobs.append(ParseJob(spec, str(out_dir), cfg.rules(), cfg.partitions, cfg.download_timeout_s, fp))
        results = ctx.executor.map(parse_dump, jobs, desc="reddit: parse dumps", return_failures=True)

        units: list[WorkUnit] = []
        parsed: list[tuple[str, str]] = []
        for job, res in zip(jobs, results, strict=True):
            key = f"dump-{unit_key(job.spec, job.fingerprint)}"
            if not isinstance(res, dict):  # a TaskFailure: the unit fails by name, the rest goes on
                message = res.message.strip().splitlines()[0]
                units.append(WorkUnit(key, {"kind": "dump", "path": job.spec, "error": message},
                                      fingerprint=f"failed:{job.fingerprint or job.spec}"))
                continue
            parsed.append((res["dump"], job.out_dir))
            units.append(WorkUnit(key, {"kind": "dump", "path": job.spec, "dump": res["dump"],
                                        "table": str(as_path(job.out_dir) / "rejected.parquet")},
                                  fingerprint=f"{res['fingerprint']}|rules:{rules_hash}"))

        archive = as_path(cfg.archive_dir) if cfg.archive_dir else root / "archive"
        agg_dir = root / "partitions" / f"of-{cfg.partitions:05d}"
        agg_jobs = [AggregateJob(p, cfg.partitions, parsed, str(agg_dir), cfg.min_score)
                    for p in range(cfg.partitions)]
        aggregated = ctx.executor.map(aggregate_partition, agg_jobs, desc="reddit: aggregate URLs")
        for job, res in zip(agg_jobs, aggregated, strict=True):
            if res is None:
                continue
            name = f"p{job.partition:05d}-of-{job.partitions:05d}"
            units.append(WorkUnit(f"urls-{name}", {
                "kind": "urls", "table": res["path"], "archive": str(archive / name),
            }, fingerprint=res["fingerprint"]))
        return units

    # ------------------------------------------------------------------------------------- extract

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        if unit.payload["kind"] == "dump":
            yield from self._dump_rejections(unit)
        else:
            yield from self._url_groups(unit)

    def _dump_rejections(self, unit: WorkUnit) -> Iterator[Rejected]:
        if "error" in unit.payload:
            raise InputError(f"{unit.payload['path']}: {unit.payload['error']}")
        dump = unit.payload["dump"]
        t = pq.read_table(local_file(unit.payload["table"]), schema=REJECT_SCHEMA).to_pylist()
        for row in t:
            meta = {"dump": dump, "line": row["line"], "detail": row["detail"]}
            if row["submission_id"] or row["url"]:
                meta.update(submission_id=row["submission_id"], subreddit=row["subreddit"],
                            score=row["score"], normalized_url=row["normalized_url"])
            yield Rejected(_submission_id(dump, row["line"], row["submission_id"]), SOURCE, row["reason"],
                           url=row["url"] or None, meta=meta)

    def _url_groups(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        rows = pq.read_table(local_file(unit.payload["table"]), schema=GROUP_SCHEMA).to_pylist()
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(row["normalized_url"], []).append(row)
        with local_mirror(unit.payload["archive"]) as local_archive:
            yield from self._fetch_and_extract(groups, WarcArchive(local_archive))

    def _fetch_and_extract(self, groups: dict[str, list[dict[str, Any]]], archive: WarcArchive
                           ) -> Iterator[Doc | Rejected]:
        wanted = sorted(u for u, g in groups.items() if g[0]["role"] == "doc")
        outcomes = archive.outcomes()
        todo = [u for u in wanted if u not in outcomes or (self.config.refetch_failed and outcomes[u].reason)]
        if todo:
            outcomes.update(archive.fetch_into(Fetcher(self.config.fetch), todo))
        for url in sorted(groups):
            group = groups[url]
            if group[0]["role"] == "doc":
                yield self._document(url, group, outcomes[url], archive)
            for row in group:
                if row["role"] != "doc":
                    yield Rejected(_submission_id(row["dump"], row["line"], row["submission_id"]), SOURCE,
                                   f"reddit:{row['role']}", url=row["url"], meta=_submission_meta(row))

    def _document(self, url: str, group: list[dict[str, Any]], outcome: Outcome, archive: WarcArchive
                  ) -> Doc | Rejected:
        first = group[0]
        meta: dict[str, Any] = {
            "url": url,
            "score": first["group_score"],
            "subreddits": sorted({r["subreddit"] for r in group if r["subreddit"]}),
            "submission_ids": sorted({r["submission_id"] for r in group if r["submission_id"]}),
            "submission_title": first["title"],
            "final_url": outcome.final_url,
            "fetch_status": outcome.status,
        }
        if outcome.reason is not None:
            meta["fetch_detail"] = outcome.detail
            return Rejected(doc_id(url), SOURCE, outcome.reason, url=url, meta=meta)
        item = self._extract_record(archive, outcome)
        where = f"{archive.directory.name}/{outcome.warc}"
        meta.update({k: v for k, v in item.meta.items() if k not in ("crawl", "warc_file", "warc_offset")})
        meta.update(warc_file=where, warc_offset=outcome.offset)
        if isinstance(item, Rejected):
            return Rejected(doc_id(url), SOURCE, item.reason, url=url, meta=meta)
        return Doc(doc_id(url), SOURCE, item.text, url, meta)

    def _extract_record(self, archive: WarcArchive, outcome: Outcome) -> Doc | Rejected:
        """The archived response at the outcome's offset, through the `cc` record extraction."""
        path = archive.record_path(outcome)
        name = f"{archive.directory.name}/{outcome.warc}"
        assert outcome.offset is not None and outcome.length is not None
        try:
            with open(path, "rb") as f:
                f.seek(outcome.offset)
                data = f.read(outcome.length)
        except OSError as exc:
            return Rejected(doc_id(outcome.url), SOURCE, "reddit:archive-missing-record", url=outcome.url,
                            meta={"warc_file": name, "warc_offset": outcome.offset, "error": str(exc)})
        ex = self._record_extractor()
        for item in iter_records(io.BytesIO(data), name, max_payload_bytes=ex.config.html.max_html_bytes):
            if isinstance(item, WarcError):
                return ex.error(item)
            if item.rec_type == "response":
                return ex.record(item)
        return Rejected(doc_id(outcome.url), SOURCE, "reddit:archive-missing-record", url=outcome.url,
                        meta={"warc_file": name, "warc_offset": outcome.offset})


def _submission_meta(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "dump": row["dump"], "line": row["line"], "submission_id": row["submission_id"],
        "subreddit": row["subreddit"], "score": row["score"], "group_score": row["group_score"],
        "normalized_url": row["normalized_url"],
    }
