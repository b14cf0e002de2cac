"""Store waits: how long store operations of this process waited for the embedded store's lease.

Two kinds: THREAD, another thread of this process was running a store operation (the lease's
in-process mutex), and PROCESS, another process held the store (its flock, handed over on
request). A process-wide metric, so a benchmark (benchmarks/load.py) can read it in the dashboard
and CLI processes; each wait of at least MIN_WAIT_S is also logged at DEBUG.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

THREAD, PROCESS = "thread", "process"
LONG_HOLD_S = 1.0  # an operation holding the store this long makes others wait: kept in longest_holds
_KEEP_HOLDS = 10
MIN_WAIT_S = 0.001  # an uncontended acquisition takes microseconds: not a wait
BUCKETS_S = (0.01, 0.1, 0.5, 1.0, 5.0, 30.0)  # histogram upper bounds; the last bin is "longer"


@dataclass
class WaitStats:
    """Waits of one kind: how many, their total and longest, and a histogram over BUCKETS_S."""

    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.max_s = max(self.max_s, seconds)
        self.histogram[bisect_left(BUCKETS_S, seconds)] += 1


_lock = threading.Lock()
_stats: dict[str, WaitStats] = {THREAD: WaitStats(), PROCESS: WaitStats()}
_holds: list[tuple[float, str]] = []  # the longest holds of at least LONG_HOLD_S: (seconds, operation)


def record(kind: str, seconds: float, operation: str) -> None:
    """Count one wait of `kind` (THREAD or PROCESS) before `operation`, when it lasted MIN_WAIT_S or more."""
    if kind not in _stats:
        raise ValueError(f"unknown store wait kind {kind!r}")
    if seconds < MIN_WAIT_S:
        return
    with _lock:
        _stats[kind].add(seconds)
    log.debug("store wait %.3f s (%s) before %r", seconds, kind, operation)


def record_hold(seconds: float, operation: str) -> None:
    """Note an outermost operation that held the store for `seconds` (the cause of others' waits)."""
    if seconds < LONG_HOLD_S:
        return
    with _lock:
        _holds.append((seconds, operation))
        _holds.sort(reverse=True)
        del _holds[_KEEP_HOLDS:]
    log.debug("held the store %.2f s for %r", seconds, operation)


def snapshot() -> dict[str, Any]:
    """{kind: {count, total_s, max_s, histogram: {"<=0.01": n, ..., ">30": n}}} of this process so far,
    and "longest_holds": [[seconds, operation], ...] (at least LONG_HOLD_S, longest first)."""
    labels = [f"<={b:g}" for b in BUCKETS_S] + [f">{BUCKETS_S[-1]:g}"]
    with _lock:
        out: dict[str, Any] = {kind: {"count": s.count, "total_s": round(s.total_s, 4), "max_s": round(s.max_s, 4),
                                      "histogram": dict(zip(labels, s.histogram, strict=True))}
                               for kind, s in _stats.items()}
        out["longest_holds"] = [[round(t, 2), op] for t, op in _holds]
        return out


def reset() -> None:
    """Start counting from zero (tests, and a benchmark between its phases)."""
    with _lock:
        for kind in _stats:
            _stats[kind] = WaitStats()
        _holds.clear()
