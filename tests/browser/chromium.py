"""Debian's Chromium as the browser tests and the benchmarks launch it."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# The machine running the tests may have no outside network: Chromium must not try to reach it.
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def launch(playwright, executable: Path | str = CHROMIUM):
    """A headless Chromium from `executable` (never a browser Playwright downloads)."""
    return playwright.chromium.launch(executable_path=str(executable), headless=True, args=list(LAUNCH_ARGS))
