"""Shared fixtures: one real local Ray instance per test session, and the real data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Ray workers import test-only stages from `tests.*`: they inherit the environment, not pytest's sys.path.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
# No usage stats from any Ray instance a test starts (ray.cluster_utils, `ray start`, subprocess builds).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

SHARED_DATA = Path(os.environ.get("CORPUSFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set CORPUSFORGE_SHARED_DATA)")
    return SHARED_DATA


def data_path(*parts: str) -> Path:
    """A path under ../shared/data, or a skip naming what is missing."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found: {p}")
    return p


@pytest.fixture(scope="session")
def ray_executor():
    """A real local Ray instance (2 CPUs), shared by every test of the session."""
    from pipeline.running.executor import RayExecutor

    ex = RayExecutor(num_cpus=2, progress=False)
    yield ex
    ex.shutdown()


@pytest.fixture(scope="session")
def s3_env():
    """A real S3 API server on 127.0.0.1 for the session (moto's standalone server); its AWS_* settings."""
    pytest.importorskip("moto", reason="moto[server] is installed by `make` (requirements.lock)")
    from tests.s3server import s3_server

    with s3_server() as env:
        yield env


@pytest.fixture
def s3_bucket(s3_env, request):
    """A fresh bucket per test; yields its s3:// URI with the AWS_* settings applied to this process."""
    import re

    from tests.s3server import make_bucket

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{os.getpid()}"
    make_bucket(s3_env, name)
    saved = {k: os.environ.get(k) for k in s3_env}
    os.environ.update(s3_env)
    yield f"s3://{name}"
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
