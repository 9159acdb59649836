"""Closed-loop HTTP load: concurrent client threads, each reusing its own connection."""

from __future__ import annotations

import http.client
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    """One kind of request and the status that counts as success."""

    name: str
    method: str
    path: str
    expect: int
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Keep each successful answer's body with the time it was read (for figures that follow a write further).
    keep: bool = False


@dataclass(frozen=True)
class Limit:
    """When a round ends: after `requests` requests in all, or after `seconds`, whichever comes first."""

    requests: float = math.inf
    seconds: float = math.inf


@dataclass
class Round:
    call: str
    ok: int = 0
    elapsed: float = 0.0
    errors: Counter = field(default_factory=Counter)
    # CPU microseconds per answered request, by group (bench.cpu), where measured.
    cpu_us: dict[str, float] = field(default_factory=dict)
    # (time.perf_counter() when read, body) of each successful answer, when the call keeps them.
    answers: list[tuple[float, bytes]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def add(self, ok: int, errors: Counter, answers: list[tuple[float, bytes]]) -> None:
        self.ok += ok
        self.errors.update(errors)
        self.answers.extend(answers)


class _Budget:
    """Hands out request slots across threads; `next` on itertools.count is atomic under the GIL."""

    def __init__(self, limit: float):
        self._taken = itertools.count()
        self._limit = limit

    def take(self) -> bool:
        return next(self._taken) < self._limit


def drive(host: str, port: int, call: Call, clients: int, limit: Limit) -> Round:
    """Send `call` from `clients` threads until `limit`; successes per second over the whole round."""
    result = Round(call.name)
    budget = _Budget(limit.requests)
    stop = threading.Event()
    lock = threading.Lock()
    clock: dict[str, float] = {}
    start = threading.Barrier(clients, action=lambda: clock.setdefault("start", time.perf_counter()))

    def client() -> None:
        start.wait()
        deadline = clock["start"] + limit.seconds
        ok, errors, answers = _loop(host, port, call, budget, deadline, stop)
        with lock:
            result.add(ok, errors, answers)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    result.elapsed = time.perf_counter() - clock["start"]
    return result


def _loop(
    host, port, call: Call, budget: _Budget, deadline: float, stop: threading.Event
) -> tuple[int, Counter, list[tuple[float, bytes]]]:
    # A server that answers "Connection: close" makes http.client reconnect on the next request.
    connection = http.client.HTTPConnection(host, port, timeout=30)
    ok, errors, answers = 0, Counter(), []
    try:
        while not stop.is_set() and time.perf_counter() < deadline and budget.take():
            try:
                connection.request(call.method, call.path, body=call.body, headers=dict(call.headers))
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                errors[f"{call.name}: {type(exc).__name__}: {exc}"] += 1
                continue
            if response.status == call.expect:
                ok += 1
                if call.keep:
                    answers.append((time.perf_counter(), body))
            else:
                errors[f"{call.name}: HTTP {response.status} {body[:200].decode(errors='replace')}"] += 1
    finally:
        connection.close()
    return ok, errors, answers
