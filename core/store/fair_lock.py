"""A re-entrant lock granted in arrival order, for the embedded store's one-at-a-time operations.

Why not threading.RLock: it is not fair. A thread that releases it and asks again at once (a long
read cut into short slices, see core.store.edge_ops) nearly always gets it back before a waiting
thread is even scheduled, so the slices would still shut out the other sessions' small calls.
Here each waiter queues and the lock passes to the oldest one.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FairRLock:
    """Re-entrant; a released lock goes to the thread that has waited longest (FIFO)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[threading.Condition] = deque()  # one condition per waiting thread

    def acquire(self, blocking: bool = True) -> bool:
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._queue:
                self._owner, self._depth = me, 1
                return True
            if not blocking:
                return False
            turn = threading.Condition(self._lock)
            self._queue.append(turn)
            try:
                while self._owner is not None or self._queue[0] is not turn:
                    turn.wait()
            except BaseException:
                self._queue.remove(turn)
                if self._owner is None and self._queue:
                    self._queue[0].notify()  # interrupted: pass the turn on
                raise
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._lock:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairRLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                if self._queue:
                    self._queue[0].notify()

    def __enter__(self) -> FairRLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
