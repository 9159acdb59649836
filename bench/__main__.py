"""`python -m bench [NAME [OPTIONS]]`: run one benchmark, or every one with its defaults."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import BENCHMARKS, BenchError, summary
from bench.options import machine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run a benchmark by name, or every benchmark with its defaults when no name is given.",
    )
    commands = parser.add_subparsers(dest="benchmark", metavar="NAME")
    for name in BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        summary = (module.__doc__ or name).strip().splitlines()[0]
        command = commands.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.configure(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    chosen = [argv] if argv else [[name] for name in BENCHMARKS]
    started_on = machine()
    status = 0
    try:
        for arguments in chosen:
            args = parser.parse_args(arguments)
            if len(chosen) > 1:
                print(f"\n== {arguments[0]} ==", flush=True)
            status = max(status, args.run(args))
        if len(chosen) > 1:
            summary.print_summary(started_on)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary databases removed", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
