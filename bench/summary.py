"""The one table `python -m bench` ends with: each headline figure beside its ceiling or peer from the same run.

Benchmarks call `record()` as they print their own tables; `python -m bench` (every benchmark) prints the
collected figures last, so one table answers "how fast, against what, and is the target met".
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = (("figure", 74), ("ours", 10), ("ceiling or peer", 34), ("ratio", 7), ("target", 0))


@dataclass(frozen=True)
class Figure:
    figure: str
    ours: str
    against: str
    ratio: str = ""
    target: str = ""


FIGURES: list[Figure] = []


def record(figure: str, ours: str, against: str, ratio: str = "", target: str = "") -> None:
    FIGURES.append(Figure(figure, ours, against, ratio, target))


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.3f}" if ours is not None and theirs else "-"


def print_summary(machine_line: str) -> None:
    """`machine_line` is the machine as the run began."""
    if not FIGURES:
        return
    print()
    print("summary")
    print(machine_line)
    print(_row(name for name, _ in COLUMNS))
    for figure in FIGURES:
        print(_row([figure.figure, figure.ours, figure.against, figure.ratio, figure.target]))


def _row(cells) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()
