"""The banner's served bytes (JS + CSS, minified, gzipped) beside vanilla-cookieconsent 3's, from the same run.

Ours is `cmp.banner.bundle.build()`: the modules and the stylesheet joined into one script (the CSS inside
it), minified with rjsmin and rcssmin and gzipped at level 9, exactly as GET /banner/v1/cmp.js serves it.
Theirs is installed from the npm registry into a temporary directory with `npm install`; its
dist/cookieconsent.umd.js and dist/cookieconsent.css are gzipped at level 9 each and added up. The table
gives raw, minified and gzipped bytes of both, their ratio (ours / theirs), and whether ours is within
the 8 KiB budget.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import rcssmin
import rjsmin

from bench import summary
from cmp.banner import bundle

PEER = "vanilla-cookieconsent"
# The package's `main` (the build a <script> tag loads) and its one stylesheet.
PEER_SCRIPT = "dist/cookieconsent.umd.js"
PEER_STYLESHEET = "dist/cookieconsent.css"
BUDGET = 8192  # bytes gzipped: 8 KiB
NPM_TIMEOUT = 300  # seconds
COLUMNS = (
    ("banner", 22),
    ("version", 12),
    ("requests", 8),
    ("raw", 8),
    ("minified", 8),
    ("gzipped", 8),
)


class PeerUnavailable(RuntimeError):
    """npm, the registry or the package's files could not be had; ours is still reported."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--peer-version",
        default="3",
        metavar="SPEC",
        help=f"the npm version or range of {PEER} to install (default: %(default)s)",
    )


@dataclass(frozen=True)
class Sizes:
    """Bytes of one banner: as written or published, after rjsmin/rcssmin, and gzipped as served."""

    name: str
    version: str
    requests: int
    raw: int
    minified: int
    gzipped: int
    detail: str


def run(args: argparse.Namespace) -> int:
    ours = measure_ours()
    try:
        theirs = measure_peer(args.peer_version)
    except PeerUnavailable as exc:
        theirs = None
        problem = str(exc)
    print_report(ours, theirs)
    if theirs is None:
        print(f"{PEER}: not measured: {problem}")
        return 2
    return 0


def measure_ours(source: Path = bundle.SOURCE) -> Sizes:
    built = bundle.build(source)
    files = [*bundle.MODULES, bundle.STYLESHEET]
    raw = sum((source / name).stat().st_size for name in files)
    css = len(rcssmin.cssmin((source / bundle.STYLESHEET).read_text(encoding="utf-8")).encode("utf-8"))
    detail = (
        f"{len(bundle.MODULES)} modules + {bundle.STYLESHEET} in one script ({css} bytes of minified CSS inside);"
        f" rjsmin {_version('rjsmin')}, rcssmin {_version('rcssmin')}"
    )
    return Sizes("cmp", built.short, 1, raw, len(built.script), len(built.gzipped), detail)


def measure_peer(spec: str) -> Sizes:
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm is not on PATH")
    with tempfile.TemporaryDirectory(prefix="cmp-bench-npm-") as directory:
        _progress(f"installing {PEER}@{spec} with npm")
        package = install_peer(npm, spec, Path(directory))
        version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
        missing = [name for name in (PEER_SCRIPT, PEER_STYLESHEET) if not (package / name).is_file()]
        if missing:
            shipped = sorted(str(p.relative_to(package)) for p in (package / "dist").rglob("*") if p.is_file())
            raise PeerUnavailable(f"{PEER} {version} has no {', '.join(missing)}; dist/ holds {', '.join(shipped)}")
        script = (package / PEER_SCRIPT).read_bytes()
        css = (package / PEER_STYLESHEET).read_bytes()
    script_gz, css_gz = (len(gzip.compress(data, compresslevel=9, mtime=0)) for data in (script, css))
    minified = len(rjsmin.jsmin(script.decode("utf-8")).encode("utf-8")) + len(
        rcssmin.cssmin(css.decode("utf-8")).encode("utf-8")
    )
    detail = (
        f"{PEER_SCRIPT} {script_gz} + {PEER_STYLESHEET} {css_gz} bytes gzipped;"
        " published minified: raw is the files as published, minified is them through rjsmin and rcssmin"
    )
    return Sizes(PEER, version, 2, len(script) + len(css), minified, script_gz + css_gz, detail)


def install_peer(npm: str, spec: str, prefix: Path) -> Path:
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), f"{PEER}@{spec}"]
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"`npm install {PEER}@{spec}` did not finish within {NPM_TIMEOUT}s") from None
    except OSError as exc:
        raise PeerUnavailable(f"cannot run npm: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PeerUnavailable(f"`npm install {PEER}@{spec}` exited {done.returncode}:\n{tail}")
    return prefix / "node_modules" / PEER


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _progress(message: str) -> None:
    print(f"  banner_size: {message}", file=sys.stderr, flush=True)


def print_report(ours: Sizes, theirs: Sizes | None) -> None:
    print(_row(name for name, _ in COLUMNS))
    for sizes in (ours, theirs):
        if sizes is not None:
            print(_row([sizes.name, sizes.version, sizes.requests, sizes.raw, sizes.minified, sizes.gzipped]))
    if theirs is not None:
        pairs = ((ours.raw, theirs.raw), (ours.minified, theirs.minified), (ours.gzipped, theirs.gzipped))
        ratios = [f"{a / b:.3f}" for a, b in pairs]
        print(_row(["ratio (ours / theirs)", "", "", *ratios]))
    for sizes in (ours, theirs):
        if sizes is not None:
            print(f"{sizes.name}: {sizes.detail}")
    summary.record(
        "banner bytes, gzipped as served",
        str(ours.gzipped),
        f"{PEER} {theirs.version} {theirs.gzipped}" if theirs else f"{PEER}: not measured",
        summary.ratio(ours.gzipped, theirs.gzipped if theirs else None),
        f"<= {BUDGET} ({'met' if ours.gzipped <= BUDGET else 'NOT met'})",
    )
    spare = BUDGET - ours.gzipped
    verdict = f"within, {spare} bytes to spare" if spare >= 0 else f"OVER by {-spare} bytes"
    print(f"budget: {BUDGET} bytes (8 KiB) gzipped; ours {ours.gzipped}: {verdict}")


def _row(cells: Iterable[object]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()
