"""Benchmarks: each prints figures to compare, never asserts a time (STYLE.md, habit 8).

Run them with `python -m bench` from the project root; see bench/README.md.
"""


class BenchError(RuntimeError):
    """A benchmark could not set up or run what it measures; the message says what failed."""


# Each name is a module of this package exposing `configure(parser)` and `run(args) -> int`.
BENCHMARKS = ("consent_writes", "lookups", "export", "proofs", "canonical", "banner_size", "banner_time")
