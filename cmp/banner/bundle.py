"""The banner bundle: the sources in static/banner joined, minified and gzipped once per process."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import rcssmin
import rjsmin

SOURCE = Path(__file__).resolve().parents[2] / "static" / "banner"
# Order matters: each file uses names defined by those before it; main.js starts the banner.
MODULES = ("constants.js", "state.js", "api.js", "signals.js", "blocker.js", "ui.js", "main.js")
STYLESHEET = "banner.css"


@dataclass(frozen=True)
class Bundle:
    script: bytes
    gzipped: bytes
    digest: str  # SHA-256 of `script`: names the bundle in URLs and in notice versions

    @property
    def short(self) -> str:
        return self.digest[:12]


def build(source: Path = SOURCE) -> Bundle:
    css = rcssmin.cssmin((source / STYLESHEET).read_text(encoding="utf-8"))
    body = "\n".join((source / name).read_text(encoding="utf-8") for name in MODULES)
    # One function scope: the modules share their names and leak none into the page.
    script = rjsmin.jsmin(f"(function(){{'use strict';const CSS={json.dumps(css)};\n{body}\n}})();\n")
    data = script.encode("utf-8")
    return Bundle(data, gzip.compress(data, compresslevel=9, mtime=0), hashlib.sha256(data).hexdigest())


@cache
def current() -> Bundle:
    return build()
