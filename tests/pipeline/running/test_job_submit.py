"""The README's `ray job submit` block, run as written against a real `ray start --head` on 127.0.0.1.

The commands come from the README's fenced block (so this fails when the README drifts); the test
substitutes only the head's address, the config (the demo's, with two sources, to stay quick) and
the work and output directories (absolute, under the test's tmp_path). The head gets its own temp dir
and free ports, and every process it started is stopped by pid at the end.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pipeline.core.io import as_path
from pipeline.core.shards import read_json
from pipeline.versions.manifest import source_sha256
from tests.conftest import REPO
from tests.pipeline.running.rayhead import VENV_BIN, clean_env, ray_head

DEMO_PORT = 18765  # configs/demo.toml's demo_port: the job serves the demo's pages there


def readme_ray_commands(storage: str = "local") -> list[list[str]]:
    """The commands of the README's `## Ray` block that holds `ray job submit`, one token list each;
    with `s3`, its submission replaced by the README's object-storage one (`--workdir s3://...`)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Ray\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S)

    def commands(block: str) -> list[list[str]]:
        return [tokens for line in block.replace("\\\n", " ").splitlines()
                if (tokens := shlex.split(line, comments=True))]

    setup = commands(next(b for b in blocks if "ray job submit" in b))
    if storage == "local":
        return setup
    s3 = [c for b in blocks if "s3://" in b for c in commands(b) if c[:3] == ["ray", "job", "submit"]]
    assert len(s3) == 1, "the README's Ray section shows no object-storage submission"
    return [c for c in setup if c[:3] != ["ray", "job", "submit"]] + s3


def _option(tokens: list[str], name: str) -> int:
    assert name in tokens, f"the README's command has no {name}: {shlex.join(tokens)}"
    return tokens.index(name) + 1


def _wait_for_free_port(port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"port {port} (configs/demo.toml demo_port) stays busy") from None
        time.sleep(1)


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_readme_ray_job_submit_builds_the_demo_on_a_real_head(tmp_path, storage, request):
    """With `s3`: the README's object-storage submission, work and output on a real S3 server (moto on
    127.0.0.1); the credentials reach the job through the environment of `ray start`, as docs/cluster.md says."""
    commands = readme_ray_commands(storage)
    assert [c[:2] for c in commands if c[0] == "ray"][-2:] == [["ray", "start"], ["ray", "job"]]
    ray_tmp = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))  # short: Ray's socket paths
    env = clean_env(tmp_path / "home")
    work, out = tmp_path / "work", tmp_path / "out"
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        env.update(request.getfixturevalue("s3_env"))
        work, out = f"{bucket}/work", f"{bucket}/out"
    expected_sha = source_sha256()
    try:
        with contextlib.ExitStack() as stack:
            head = None
            for tokens in commands:
                if tokens[0] in {".", "source"} and tokens[1:] == [".venv/bin/activate"]:
                    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
                    env["VIRTUAL_ENV"] = str(REPO / ".venv")
                elif tokens[0] == "export":
                    env.update(t.split("=", 1) for t in tokens[1:])
                elif tokens[:2] == ["ray", "get-auth-token"]:
                    args = [t for t in tokens if not t.startswith(">")]
                    subprocess.run(args, cwd=REPO, env=env, check=True, timeout=60, stdout=subprocess.DEVNULL)
                elif tokens[:2] == ["ray", "start"]:
                    head = stack.enter_context(ray_head(ray_tmp / "ray", env, tokens, num_cpus=2))
                elif tokens[:3] == ["ray", "job", "submit"]:
                    assert head is not None, "the README submits before `ray start`"
                    job = _submit(tokens, head, env, work, out)
                else:
                    raise AssertionError(f"the README's Ray block has a command this test does not know: "
                                         f"{shlex.join(tokens)}")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert job["status"] == "SUCCEEDED", f"{job['status']}\n{job['output'][-4000:]}"
    print(f"ray job submit: {job['seconds']:.1f} s")
    manifest_path = as_path(job["manifest"])
    assert manifest_path.is_file() and str(manifest_path.parent.parent) == f"{out}/demo"
    manifest = read_json(manifest_path)
    assert manifest["version"] == manifest_path.parent.name
    assert sorted(manifest["sources"]) == ["books", "wikipedia"]
    assert manifest["code"]["source_sha256"] == expected_sha
    assert (as_path(work) / "stages").is_dir()


def _submit(tokens: list[str], head, env: dict[str, str], work, out) -> dict:
    tokens = list(tokens)
    tokens[_option(tokens, "--address")] = head.dashboard_url
    assert tokens[_option(tokens, "--working-dir")] == "."
    entry = tokens.index("--")
    assert tokens[entry + 1:entry + 3] == ["corpus", "build"], shlex.join(tokens)
    tokens[_option(tokens, "--config")] = "configs/demo.toml"
    for option, where in (("--workdir", work), ("--out", out)):
        # the README's kind of location (a path, or an s3:// URI) at the test's place
        assert tokens[_option(tokens, option)].startswith("s3://") == str(where).startswith("s3://")
        tokens[_option(tokens, option)] = str(where)
    tokens += ["--sources", "wikipedia,books"]
    _wait_for_free_port(DEMO_PORT)
    started = time.monotonic()
    proc = subprocess.run(tokens, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{shlex.join(tokens)}\n{output[-6000:]}"
    job_id = re.search(r"Job '(raysubmit_\w+)' succeeded", output).group(1)
    status = subprocess.run(["ray", "job", "status", "--address", head.dashboard_url, job_id], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    status_text = re.sub(r"\x1b\[[0-9;]*m", "", status.stdout + status.stderr)
    # "Job 'raysubmit_...' succeeded" once the job ended ("Status for job '...': RUNNING" before).
    m = re.search(r"Job '[^']*' (\w+)$|Status for job '[^']*': (\w+)", status_text, re.M)
    # The job ran on our head, from the uploaded copy of the checkout (without what .gitignore excludes).
    assert (head.session_dir / "logs" / f"job-driver-{job_id}.log").is_file()
    copies = [p for p in (head.session_dir / "runtime_resources" / "working_dir_files").glob("_ray_pkg_*")
              if p.is_dir()]
    assert len(copies) == 1 and (copies[0] / "pipeline" / "cli.py").is_file()
    assert not (copies[0] / ".venv").exists() and not (copies[0] / ".git").exists()
    return {"status": (m.group(1) or m.group(2)).upper() if m else status_text, "output": output,
            "manifest": re.search(r"^manifest: (.+)$", output, re.M).group(1).strip(),
            "seconds": time.monotonic() - started}
