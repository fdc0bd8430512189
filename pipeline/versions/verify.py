"""`corpus verify MANIFEST`: every file a manifest names is there, unaltered, with its document count.

The manifest (or the version directory holding it) may be local or a URI (`s3://bucket/.../VERSION`).
"""

from __future__ import annotations

import os

from pipeline.core.io import AnyPath, as_path, parquet_num_rows, sha256_file
from pipeline.core.shards import read_json


def resolve_manifest(path: str | os.PathLike) -> AnyPath:
    """A manifest file, or a version directory (or prefix) holding `manifest.json`."""
    path = as_path(path)
    candidate = path / "manifest.json" if path.is_dir() else path
    if not candidate.exists():
        raise FileNotFoundError(f"no manifest at {path}")
    return candidate


def verify(manifest_path: str | os.PathLike) -> list[str]:
    """Problems found, one line each naming the file; empty when the version is intact."""
    manifest_path = resolve_manifest(manifest_path)
    manifest = read_json(manifest_path)
    root = manifest_path.parent
    entries = list(manifest["outputs"]) + [manifest["ledger"]]
    entries += [manifest[key] for key in ("rejected_ledger", "samples") if key in manifest]
    entries += list(manifest.get("reports", {}).values())
    problems = []
    total_docs = 0
    for entry in entries:
        f = root / entry["path"]
        try:
            size = f.stat().st_size  # one request per file on object storage
        except FileNotFoundError:
            problems.append(f"missing: {f}")
            continue
        if size != entry["bytes"]:
            problems.append(f"altered: {f} ({size} bytes, manifest says {entry['bytes']})")
            continue
        if sha256_file(f) != entry["sha256"]:
            problems.append(f"altered: {f} (sha256 differs from the manifest)")
            continue
        if "docs" in entry and f.suffix == ".parquet":
            rows = parquet_num_rows(f)  # from the footer (on object storage: a ranged read)
            if rows != entry["docs"]:
                problems.append(f"altered: {f} ({rows} docs, manifest says {entry['docs']})")
        if entry in manifest["outputs"] and "docs" in entry and entry["path"].startswith("docs/"):
            total_docs += entry["docs"]
    if not problems and total_docs != manifest["totals"]["docs"]:
        problems.append(f"counts: shards hold {total_docs} docs, manifest totals say {manifest['totals']['docs']}")
    return problems
