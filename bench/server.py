"""The app under test: its environment, the `cmp` command line, and a gunicorn server on loopback."""

from __future__ import annotations

import http.client
import importlib.metadata
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import BenchError
from cmp.services.notes import generate_key

PROJECT = Path(__file__).resolve().parent.parent
# The interpreter's own scripts directory: the virtualenv the benchmark runs from.
SCRIPTS = Path(sys.executable).parent
HOST = "127.0.0.1"


def app_environment(database_url: str) -> dict[str, str]:
    """A production configuration on `database_url`, free of any CMP_* setting of the caller's shell."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CMP_")}
    env.update(
        CMP_ENV="production",
        CMP_SECRET_KEY=secrets.token_urlsafe(32),
        CMP_HMAC_KEY=secrets.token_urlsafe(32),
        CMP_LOG_KEY=generate_key("bench.localhost")[0],
        CMP_DATABASE_URL=database_url,
        CMP_LOG_LEVEL="WARNING",
        # Production requires it for the links in emails and receipts; no benchmark follows one.
        CMP_PUBLIC_URL="https://consent.example",
        # Every request of a benchmark comes from one address: rate limits would measure 429s.
        CMP_RATE_LIMIT_PUBLIC="off",
        CMP_RATE_LIMIT_API="off",
    )
    return env


def script(name: str) -> str:
    path = SCRIPTS / name
    if not path.exists():
        raise BenchError(f"{path} not found: run the benchmark with the project's virtualenv Python")
    return str(path)


def cmp(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `cmp ARGS` from the project root; a failure raises with the command's output."""
    done = subprocess.run([script("cmp"), *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise BenchError(f"`cmp {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(
    env: dict[str, str], workers: int, port: int, log_path: Path, app: str = "wsgi:app"
) -> Iterator[subprocess.Popen]:
    """`gunicorn -w WORKERS APP` on HOST:PORT, ready when it yields, stopped on the way out."""
    command = [script("gunicorn"), "-w", str(workers), "-b", f"{HOST}:{port}", *_isolation_flags(), app]
    with open(log_path, "wb") as log:
        # Its own session: a Ctrl-C reaches only the benchmark, which then stops the server in order.
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(process, port, log_path)
        yield process
    finally:
        _stop(process)


def _isolation_flags() -> list[str]:
    """From gunicorn 25.1 every server opens one control socket per user, and a new one unlinks the last's."""
    version = importlib.metadata.version("gunicorn")
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return ["--no-control-socket"] if numbers >= (25, 1) else []


def _wait_ready(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited {process.returncode}:\n{_tail(log_path)}")
        if _ready(port):
            return
        time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer /readyz within {timeout:.0f}s:\n{_tail(log_path)}")


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
