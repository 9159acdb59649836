"""Where a round's CPU time went: the app server, the database server and the benchmark's own client.

Read from /proc (Linux): user plus system time of the gunicorn master and its workers, of every process named
`postgres` (the server is on loopback, so on this machine), and of this process. Divided by the requests a
round answered, it says what one request costs each of them, on the cores they all share. Elsewhere it
reads nothing and the benchmarks print no CPU figures.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GROUPS = ("server", "database", "client")


@dataclass(frozen=True)
class Usage:
    """CPU seconds per group over some span."""

    server: float
    database: float
    client: float

    def per_request_us(self, requests: int) -> dict[str, float]:
        return {group: getattr(self, group) * 1e6 / requests for group in GROUPS} if requests else {}


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds used so far: per process of the server and the database (by pid), and by this process."""

    processes: dict[int, tuple[str, float]]
    client: float

    def since(self, before: Snapshot) -> Usage:
        """What each group used between `before` and this; a process that ended in between is not counted."""
        spent = {"server": 0.0, "database": 0.0}
        for pid, (group, seconds) in self.processes.items():
            earlier = before.processes.get(pid)
            spent[group] += seconds - (earlier[1] if earlier and earlier[0] == group else 0.0)
        return Usage(spent["server"], spent["database"], self.client - before.client)


def available() -> bool:
    return (PROC / "self" / "stat").exists()


def snapshot(server_pid: int) -> Snapshot | None:
    """CPU time used so far by the server `server_pid` and its children, the database server and this process."""
    if not available():
        return None
    processes = {}
    for pid, parent, name, seconds in _processes():
        if pid == server_pid or parent == server_pid:
            processes[pid] = ("server", seconds)
        elif name == "postgres":
            processes[pid] = ("database", seconds)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return Snapshot(processes, own.ru_utime + own.ru_stime)


def _processes():
    """(pid, parent pid, command name, CPU seconds) of every process that can be read."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        # The name is in parentheses and may hold spaces; the fields after it are space-separated.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICKS
