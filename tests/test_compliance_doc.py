"""docs/compliance.md cannot rot: every test it cites exists, and it answers every requirement, in order."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "compliance.md"
# The requirements document lives beside the project, as the MaxMind test databases do (tests/conftest.py).
REQUIREMENTS = ROOT.parent / "shared" / "REQUIREMENTS.md"

CITED = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")
NUMBERED = re.compile(r"^\d+\. ", re.MULTILINE)
SECTION = re.compile(r"^(?=##+ )", re.MULTILINE)
REQUIREMENT = re.compile(r"### (\d+)\. ")


def requirements() -> dict[int, str]:
    """Each requirement's section of the doc by its number: its heading up to the next heading of any level."""
    sections = SECTION.split(DOC.read_text(encoding="utf-8"))
    return {int(match.group(1)): section for section in sections if (match := REQUIREMENT.match(section))}


@cache
def defined_tests(path: str) -> frozenset[str]:
    """`name` and `Class::name` of every test function in a test file."""
    names = set()
    for node in ast.parse((ROOT / path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test_")
            )
    return frozenset(names)


def test_every_cited_test_exists():
    cited = CITED.findall(DOC.read_text(encoding="utf-8"))
    assert len(cited) > 21
    missing_files = sorted({path for path, _ in cited if not (ROOT / path).is_file()})
    assert missing_files == []
    missing = [f"{path}::{name}" for path, name in cited if name not in defined_tests(path)]
    assert missing == []


def test_requirements_are_numbered_in_order_and_the_count_is_stated():
    numbers = list(requirements())
    assert numbers == list(range(1, len(numbers) + 1))
    assert f"The {len(numbers)} requirements below" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("number", sorted(requirements()))
def test_each_requirement_has_its_source_and_tests_or_says_what_is_not_built(number):
    section = requirements()[number]
    assert "*Source:*" in section
    assert CITED.search(section) or "*Not built:*" in section


def test_the_doc_answers_every_requirement_of_the_requirements_document():
    if not REQUIREMENTS.is_file():
        pytest.skip("the requirements document is not beside the project")
    assert len(NUMBERED.findall(REQUIREMENTS.read_text(encoding="utf-8"))) == len(requirements())
