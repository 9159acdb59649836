"""Where a round's CPU time went: the app server, the database server and the benchmark's own client.

User plus system time (psutil) of the gunicorn master and its workers, of every process named `postgres` (the
server is on loopback, so on this machine), and of this process. Divided by the requests a round answered, it
says what one request costs each of them, on the cores they all share. Where psutil cannot read the processes,
the benchmarks print no CPU figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

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


def _seconds(times) -> float:
    return times.user + times.system


def snapshot(server_pid: int) -> Snapshot | None:
    """CPU time used so far by the server `server_pid` and its children, the database server and this process."""
    try:
        processes = {}
        for process in psutil.process_iter(["ppid", "name", "cpu_times"]):
            info = process.info
            if info["cpu_times"] is None:  # gone, or not ours to read
                continue
            if process.pid == server_pid or info["ppid"] == server_pid:
                processes[process.pid] = ("server", _seconds(info["cpu_times"]))
            elif info["name"] == "postgres":
                processes[process.pid] = ("database", _seconds(info["cpu_times"]))
        return Snapshot(processes, _seconds(psutil.Process().cpu_times()))
    except (psutil.Error, NotImplementedError):
        return None
