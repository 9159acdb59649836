"""The README's five-minute tour runs as written, against a fresh demo server, and shows what it says it shows."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CMP = Path(sys.executable).with_name("cmp")


def tour() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.DOTALL))


def test_the_tour_shows_each_step_and_what_to_look_for():
    script = tour()
    assert "cmp key create" in script and "/api/v1/consents/lookup" in script and "cmp verify --file" in script
    assert len(re.findall(r"^# → ", script, re.MULTILINE)) >= 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise AssertionError(f"the demo server stopped: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError("the demo server did not become ready")


@pytest.fixture
def demo_server(tmp_path):
    """What `make demo` leaves running, on a database and a port of the test's own."""
    if not CMP.exists():
        pytest.skip(f"the cmp command is not installed next to {sys.executable}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CMP_ENV": "development",
        "CMP_DATABASE_URL": f"sqlite:///{tmp_path / 'tour.sqlite3'}",
        "CMP_SECRET_KEY": "tour-secret-key-for-the-readme-test-0001",
        "CMP_HMAC_KEY": "tour-hmac-key-for-the-readme-test-00002",
    }
    for args in (["db", "upgrade"], ["demo", "--base-url", base]):
        subprocess.run([str(CMP), *args], env=env, cwd=tmp_path, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(CMP), "run", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(f"{base}/readyz", server)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_tour_runs_as_written(demo_server, tmp_path):
    base, env = demo_server
    # The commands name `.venv/bin/cmp` as a reader's checkout has it; here, the interpreter's own.
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(CMP.parent)
    script = tour().replace("CMP=http://127.0.0.1:5000", f"CMP={base}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout
    position = 0
    # Each "# → ..." says what the output shows, in order.
    for expected in re.findall(r"^# → (.+)$", script, re.MULTILINE):
        found = output.find(expected, position)
        assert found >= 0, f"{expected!r} not in what followed: {output[position:]!r}"
        position = found + len(expected)
    assert (tmp_path / "demo-log.jsonl").stat().st_size > 0
