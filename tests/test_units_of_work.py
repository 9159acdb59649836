"""Who commits: services that own a unit of work, and the CLI's `unit_of_work()`; never a view or a building block."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CMP = Path(__file__).resolve().parent.parent / "cmp"
# Views (HTTP and pages) and the configuration building blocks a caller combines into one unit.
NEVER_COMMIT = [
    *sorted((CMP / "api").glob("*.py")),
    CMP / "banner" / "__init__.py",
    CMP / "banner" / "demo.py",
    CMP / "dashboard" / "__init__.py",
    CMP / "services" / "sites.py",
    CMP / "services" / "demo.py",
]


def commits(path: Path) -> list[str]:
    """`function:line` of every `.commit()` call in the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "commit":
                    found.append(f"{node.name}:{call.lineno}")
    return found


@pytest.mark.parametrize("path", NEVER_COMMIT, ids=lambda path: str(path.relative_to(CMP)))
def test_views_and_building_blocks_never_commit(path):
    assert commits(path) == []


def test_the_cli_commits_in_one_place():
    found = {path.name: commits(path) for path in (CMP / "cli").glob("*.py") if commits(path)}
    assert list(found) == ["params.py"] and [name.split(":")[0] for name in found["params.py"]] == ["unit_of_work"]


def test_publishing_a_notice_leaves_the_commit_to_its_caller():
    tree = ast.parse((CMP / "services" / "notices.py").read_text(encoding="utf-8"))
    [publish] = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "publish_notice"]
    assert not any(getattr(getattr(n, "func", None), "attr", None) == "commit" for n in ast.walk(publish))


def test_the_finder_finds_a_commit(tmp_path):
    module = tmp_path / "view.py"
    module.write_text("def view():\n    db.session.commit()\n")
    assert commits(module) == ["view:2"]
