"""The banner's modules: the names each declares it uses and provides, as the build checks them, and the
state rules' own unit tests (tests/banner/js, Node's built-in test runner)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cmp.banner import bundle

ROOT = Path(__file__).resolve().parents[2]
NODE_TESTS = Path(__file__).resolve().parent / "js"


def test_the_state_rules_pass_their_node_tests(node):
    files = sorted(NODE_TESTS.glob("*.test.mjs"))
    assert files, "no Node tests found"
    done = subprocess.run(
        [node, "--test", *(str(f.relative_to(ROOT)) for f in files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = dict(re.findall(r"^# (pass|fail) (\d+)$", done.stdout, re.MULTILINE))
    assert int(summary["pass"]) > 0 and summary["fail"] == "0", done.stdout


@pytest.fixture
def source(tmp_path) -> Path:
    """A copy of the banner's sources to break."""
    copy = tmp_path / "banner"
    shutil.copytree(bundle.SOURCE, copy)
    return copy


def edit(source: Path, name: str, old: str, new: str) -> None:
    path = source / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_every_module_declares_what_it_provides_and_the_bundle_builds():
    modules = {name: bundle.Module.read(bundle.SOURCE / name) for name in bundle.MODULES}
    bundle.check(list(modules.values()))
    assert all(module.provides for name, module in modules.items() if name != "main.js")
    assert "createStore" in modules["state.js"].provides
    assert modules["main.js"].uses and not modules["main.js"].provides


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        pytest.param(
            "state.js",
            "// uses: COOKIE, MAX_AGE",
            "// uses: MAX_AGE",
            "state.js uses COOKIE from constants.js without declaring it",
            id="undeclared use",
        ),
        pytest.param(
            "state.js",
            "// uses: COOKIE, MAX_AGE",
            "// uses: COOKIE, MAX_AGE, createUI",
            "state.js uses createUI, but ui.js provides it after it",
            id="use of a later module",
        ),
        pytest.param(
            "api.js",
            "// uses: TIMEOUT",
            "// uses: TIMEOUT, fetchJson",
            "api.js uses fetchJson, but no module before provides it",
            id="use nobody provides",
        ),
        pytest.param(
            "api.js",
            "// uses: TIMEOUT",
            "// uses: TIMEOUT, COOKIE",
            "api.js declares it uses COOKIE but does not",
            id="stale use",
        ),
        pytest.param(
            "signals.js",
            "// provides: consentDefault, consentUpdate",
            "// provides: consentDefault, consentUpdate, consentReset",
            "signals.js provides consentReset but does not define it at its top level",
            id="provides what it lacks",
        ),
        pytest.param(
            "ui.js",
            "// provides: createUI",
            "// provides: createUI, button",
            "ui.js provides button but does not define it at its top level",
            id="provides a nested name",
        ),
        pytest.param(
            "signals.js",
            "// provides: consentDefault, consentUpdate",
            "// provides: consentDefault, consentUpdate, TIMEOUT\nconst TIMEOUT = 1;",
            "TIMEOUT is provided twice: by constants.js and signals.js",
            id="provided twice",
        ),
        pytest.param(
            "ui.js",
            "// provides: createUI",
            "// provides: createUI, CSS",
            "CSS is provided twice: by the build and ui.js",
            id="shadows the build",
        ),
    ],
)
def test_the_build_refuses_modules_whose_declarations_do_not_match(source, name, old, new, problem):
    edit(source, name, old, new)
    with pytest.raises(bundle.ModuleError) as refused:
        bundle.build(source)
    assert problem in str(refused.value)


def test_names_in_comments_strings_and_properties_are_not_uses(source):
    edit(
        source,
        "api.js",
        "function call(url, body) {",
        "// COOKIE is not read here.\nfunction call(url, body) {\n  void ['MAX_AGE', \"ATTR\", body.DONE];",
    )
    assert bundle.build(source).script != bundle.build().script


def run_bundle(node: str, tmp_path: Path, script: bytes) -> subprocess.CompletedProcess:
    """Run the bundle in Node on a page without the script tag: it only sets up window.cmp and the default."""
    path = tmp_path / "run.js"
    # The page's globals as Node lacks them (Node 21+ has a navigator of its own).
    stubs = "globalThis.window = globalThis;\nglobalThis.document = {currentScript: null};\n"
    stubs += "globalThis.navigator ??= {};\n"
    report = "\nconsole.log(JSON.stringify({api: Object.keys(window.cmp), first: window.dataLayer[0][1]}));\n"
    path.write_bytes(stubs.encode() + script + report.encode())
    return subprocess.run([node, str(path)], capture_output=True, text=True, timeout=60)


def test_a_name_a_module_does_not_provide_is_private_to_it(node, source, tmp_path):
    ran = run_bundle(node, tmp_path, bundle.build(source).script)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == '{"api":["ready","get","onChange","show","withdraw"],"first":"default"}'
    # gtag is signals.js's own: ui.js cannot reach it even though the build put it into the same bundle.
    edit(source, "ui.js", "function fill(", "gtag;\n\nfunction fill(")
    ran = run_bundle(node, tmp_path, bundle.build(source).script)
    assert ran.returncode != 0
    assert "ReferenceError: gtag is not defined" in ran.stderr
