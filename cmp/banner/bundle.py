"""The banner bundle: the sources in static/banner checked, joined, minified and gzipped once per process.

Each source is a module: comment lines near its top declare the names it takes from the modules before it
(`// uses: a, b`) and the names it gives to those after it (`// provides: c, d`); either line may be left out
when it would be empty. The build checks these declarations against the code and wraps each module in a function
scope of its own that returns what it provides, so a name it does not provide stays private to it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import rcssmin
import rjsmin

from cmp import shipped

SOURCE = shipped("static/banner")
# Order matters: a module uses only names provided by those before it; main.js starts the banner.
MODULES = ("constants.js", "state.js", "api.js", "signals.js", "blocker.js", "ui.js", "main.js")
STYLESHEET = "banner.css"
# What the build itself gives every module: the minified stylesheet.
BUILT_IN = ("CSS",)

DECLARATION = re.compile(r"^// (uses|provides):(.*)$", re.MULTILINE)
TOP_LEVEL = re.compile(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)
# String literals, blanked before looking for names in the code (comments are gone after minifying).
STRING = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|`(?:\\.|[^`\\])*`", re.DOTALL)


class ModuleError(ValueError):
    """The modules' declarations do not match their code or their order: no bundle is built from them."""


@dataclass(frozen=True)
class Module:
    name: str
    source: str
    uses: tuple[str, ...]
    provides: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> Module:
        source = path.read_text(encoding="utf-8")
        declared: dict[str, tuple[str, ...]] = {"uses": (), "provides": ()}
        for kind, names in DECLARATION.findall(source):
            declared[kind] += tuple(re.findall(r"[A-Za-z_$][\w$]*", names))
        return cls(path.name, source, declared["uses"], declared["provides"])

    @cached_property
    def code(self) -> str:
        """The source without its comments and with its strings blanked."""
        return STRING.sub('""', rjsmin.jsmin(self.source))

    def mentions(self, name: str) -> bool:
        """Whether the code refers to `name` other than as a property."""
        return re.search(rf"(?<![\w$.]){re.escape(name)}(?![\w$])", self.code) is not None

    def wrapped(self) -> str:
        names = ",".join(self.provides)
        if not names:
            return f"(function(){{\n{self.source}\n}})();"
        return f"const{{{names}}}=(function(){{\n{self.source}\nreturn{{{names}}}}})();"


def check(modules: list[Module]) -> None:
    """Raise ModuleError listing every use, provision or order that the declarations and the code disagree on."""
    problems = []
    provider: dict[str, str] = {}
    for module in modules:
        defined = set(TOP_LEVEL.findall(module.source))
        for name in module.provides:
            if name not in defined:
                problems.append(f"{module.name} provides {name} but does not define it at its top level")
            if name in provider or name in BUILT_IN:
                problems.append(f"{name} is provided twice: by {provider.get(name, 'the build')} and {module.name}")
            provider.setdefault(name, module.name)
    seen = set(BUILT_IN)
    for module in modules:
        for name in module.uses:
            if name not in seen:
                where = f"{provider[name]} provides it after" if name in provider else "no module before provides"
                problems.append(f"{module.name} uses {name}, but {where} it")
            elif not module.mentions(name):
                problems.append(f"{module.name} declares it uses {name} but does not")
        for name, owner in provider.items():
            if owner != module.name and name not in module.uses and module.mentions(name):
                problems.append(f"{module.name} uses {name} from {owner} without declaring it")
        seen.update(module.provides)
    if problems:
        raise ModuleError("banner modules: " + "; ".join(problems))


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
    modules = [Module.read(source / name) for name in MODULES]
    check(modules)
    body = "\n".join(module.wrapped() for module in modules)
    # One function scope around them all: the modules' names stay out of the page.
    script = rjsmin.jsmin(f"(function(){{'use strict';const CSS={json.dumps(css)};\n{body}\n}})();\n")
    data = script.encode("utf-8")
    return Bundle(data, gzip.compress(data, compresslevel=9, mtime=0), hashlib.sha256(data).hexdigest())


@cache
def current() -> Bundle:
    return build()
