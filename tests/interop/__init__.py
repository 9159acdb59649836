"""Checks against implementations we did not write: Go's reference packages for signed notes and transparency logs.

Each Go program here takes one JSON request on stdin and answers in JSON on stdout. It is built offline against
Debian's packaged sources (golang-go and golang-golang-x-mod-dev); without them the tests skip (fail in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import skip_or_fail

# Where Debian installs Go library sources; CMP_GOPATH points elsewhere.
GOPATH = Path(os.environ.get("CMP_GOPATH", "/usr/share/gocode"))
SUMDB = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"

GoCall = Callable[[dict], dict]


def go_program(source: Path, package: str, workdir: Path) -> GoCall:
    """Build `source` (which imports sumdb/`package`) once in `workdir`; the result runs one request through it."""
    go = shutil.which("go")
    if go is None:
        skip_or_fail("Go is not installed (Debian package golang-go)")
    if not (SUMDB / package).is_dir():
        skip_or_fail(f"Go's {package} package is not at {SUMDB / package} (golang-golang-x-mod-dev, or CMP_GOPATH)")
    (workdir / source.name).write_bytes(source.read_bytes())
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": ""}
    env.setdefault("GOCACHE", str(workdir / "cache"))
    binary = workdir / source.stem
    build = subprocess.run(
        [go, "build", "-o", str(binary), source.name], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr

    def call(request: dict) -> dict:
        run = subprocess.run([str(binary)], input=json.dumps(request), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    return call
