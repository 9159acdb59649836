"""cmp as it runs in production, in processes of its own: gunicorn with the sample configuration, or a command.

For the tests that need real processes (several instances on one database, a process killed mid-write).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import LOG_KEY
from tests.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
# Seconds: a bound on the wait for readiness on a loaded machine, never an expectation of how long it takes.
READY_WITHIN = 90


def production_environment(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any cmp setting of its own, plus production settings on `database_url`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CMP_") and key != "WEB_CONCURRENCY"
    }
    environment.update(
        CMP_ENV="production",
        CMP_PUBLIC_URL="https://cmp.example",
        CMP_DATABASE_URL=database_url,
        CMP_LOG_KEY=LOG_KEY,
        CMP_LOG_LEVEL="ERROR",
        **settings,
    )
    return environment


@contextmanager
def gunicorn(environment: dict[str, str], workers: int = 2) -> Iterator[tuple[str, subprocess.Popen]]:
    """One instance under gunicorn with deploy/gunicorn.conf.py; yields its base URL and process once it is ready.

    The instance runs in a process group of its own, which is stopped (and then killed) on the way out, whatever
    the test did to it meanwhile.
    """
    port = free_port()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT,
            env={**environment, "CMP_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)},
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(base, process, errors)
            yield base, process
        finally:
            _stop(process)


def _wait_until_ready(base: str, process: subprocess.Popen, errors) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"gunicorn exited: {errors.read().decode(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become ready within {READY_WITHIN}s")


def _stop(process: subprocess.Popen) -> None:
    """Stop the whole group: a master the test killed may have left its workers running."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        process.wait()
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
