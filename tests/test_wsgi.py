"""The WSGI entry point that gunicorn loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_entry_point_freezes_what_start_up_built(tmp_path):
    """After `import wsgi` the app's start-up objects are out of the collector's reach (gc.freeze), and what a
    request allocates afterwards is collected as before."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMP_")}
    environment.update(CMP_ENV="testing", CMP_DATABASE_URL=f"sqlite:///{tmp_path / 'wsgi.sqlite3'}")
    probe = (
        "import gc, wsgi\n"
        "frozen = gc.get_freeze_count()\n"
        "cycle = []; cycle.append(cycle); del cycle\n"
        "print(frozen, gc.collect())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    frozen, collected = map(int, result.stdout.split())
    assert frozen > 10_000
    assert collected >= 1
