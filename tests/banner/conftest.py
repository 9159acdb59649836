"""Fixtures for the banner's tests: Node.js, for the checks that run the banner's JavaScript."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import skip_or_fail

NODE_MAJOR = 18  # the first with the built-in test runner (`node --test`)


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, version 18 or later."""
    path = shutil.which("node")
    if path is None:
        skip_or_fail("node is not installed (Debian: apt-get install nodejs)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(re.match(r"v(\d+)", version).group(1))
    if major < NODE_MAJOR:
        skip_or_fail(f"node {version.strip()} is older than {NODE_MAJOR}, which `node --test` needs")
    return path
