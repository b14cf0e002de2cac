"""An inter-process lease on an embedded store folder, handed over on request.

Why: Qdrant Edge takes an exclusive lock on a shard's write-ahead log for as long as the shard
is open, and a second process cannot even open it to read (measured: `EdgeShard.load` fails
with "failed to open WAL ...: Can't init WAL: Kind(WouldBlock)"). So at most one process may
have the store's shards open at a time. Holding them for a process's whole life would lock
the CLI out while the dashboard runs (and the reverse), so the store is *leased*:

* every store operation runs inside `StoreLease.hold()`, which takes an exclusive flock on
  `<root>/.embedscope.lock` if this instance does not hold it yet;
* a process that wants the lease writes a request into `<root>/.embedscope.wanted` and polls;
* the holder sees the request at the end of its current operation once it has had the store
  for MIN_TURN_S (or at once when idle, in a watcher thread polling every 0.1 s), closes its
  shards (on_release) and unlocks; its next operation waits in turn (after a 0.3 s head start
  for the requester, so two busy processes alternate instead of one starving). The minimum turn
  keeps two busy processes from handing over after every single operation (each hand-over
  closes and re-opens the shards); operations are short (long reads are cut into slices, see
  core.store.edge_ops), so a busy holder still hands over within about a second. Reads are
  never stale: shards are re-opened after every hand-over. `with lease.hold(...)` blocks nest:
  hand-over happens only between outermost ones.
* the threads of one process take turns through a fair (FIFO) mutex (core.store.fair_lock);
  the time spent waiting for it, and for another process, is counted in core.store.waits.
* a waiter gives up after timeout_s with StoreLockedError naming the folder, the holder's pid
  and what it is doing. The OS drops a flock when its process dies, so a crash never leaves a
  stale lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import StoreLockedError
from core.store import waits
from core.store.fair_lock import FairRLock

log = logging.getLogger(__name__)

LOCK_FILE = ".embedscope.lock"
HOLDER_FILE = ".embedscope.holder"
WANTED_FILE = ".embedscope.wanted"
MIN_TURN_S = 0.5  # a busy holder keeps the store this long after taking it before handing it over
HEAD_START_S = 0.3  # after handing over, let the requester (polling every 30 ms) in first


class StoreLease:
    """Exclusive, hand-over-on-request access to one store folder (see module docstring)."""

    def __init__(
        self,
        root: Path,
        on_release: Callable[[], None],
        timeout_s: float = 30.0,
        watch_s: float = 0.1,
    ) -> None:
        self._root = root
        self._on_release = on_release
        self._timeout_s = timeout_s
        self._watch_s = watch_s
        self._token = uuid.uuid4().hex
        self._mutex = FairRLock()  # serialises operations and the hand-over, in arrival order
        self._fd: int | None = None
        self._acquired_ns = 0
        self._acquired_at = 0.0  # time.monotonic() when the lease was taken (MIN_TURN_S)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._depth = 0  # nesting of hold(); hand-over happens only between outermost operations
        self._yield_until = 0.0  # after a requested hand-over, let the requester in first

    @property
    def held(self) -> bool:
        """True while this instance holds the lease."""
        return self._fd is not None

    @contextmanager
    def hold(self, operation: str) -> Iterator[None]:
        """Run one store operation with the lease held (acquiring it first if needed)."""
        asked = time.monotonic()
        with self._mutex:
            waits.record(waits.THREAD, time.monotonic() - asked, operation)
            if self._fd is None:
                self._acquire(operation)
            if self._depth == 0:
                self._write_holder(operation)
            self._depth += 1
            started = time.monotonic()
            try:
                yield
            finally:
                self._depth -= 1
                # A busy holder may never look idle to the watcher: hand over between operations.
                if self._depth == 0 and self._turn_over() and self._requested_by_other():
                    self._hand_over()
                if self._depth == 0:  # closing the shards on a hand-over is part of the hold
                    waits.record_hold(time.monotonic() - started, operation)

    def _turn_over(self) -> bool:
        return time.monotonic() - self._acquired_at >= MIN_TURN_S

    def release(self) -> None:
        """Close the shards and give the lease up (no-op when not held)."""
        with self._mutex:
            if self._fd is None:
                return
            self._stop.set()
            try:
                self._on_release()
            finally:
                fd, self._fd = self._fd, None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                log.debug("released the lease on %s", self._root)

    def _hand_over(self) -> None:
        log.debug("handing the lease on %s over to another process", self._root)
        self._yield_until = time.monotonic() + HEAD_START_S
        self.release()

    def _acquire(self, operation: str) -> None:
        asked = time.monotonic()
        time.sleep(max(0.0, self._yield_until - asked))  # requester polls every 30 ms
        self._root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreLockedError(self._locked_message(operation)) from None
                if not waited:
                    log.info("waiting up to %.0f s for another process to hand over %s", self._timeout_s, self._root)
                    waited = True
                self._request()
                time.sleep(0.03)
        self._fd = fd
        self._acquired_ns = time.time_ns()
        self._acquired_at = time.monotonic()
        waits.record(waits.PROCESS, self._acquired_at - asked, operation)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(self._stop,), daemon=True,
                                         name=f"embedscope-lease-{self._token[:6]}")
        self._watcher.start()

    def _request(self) -> None:
        # Rewritten on every poll, so the holder sees a fresh request even after a hand-over.
        tmp = self._root / f"{WANTED_FILE}.{self._token}"
        tmp.write_text(f"{os.getpid()} {self._token} {time.time_ns()}")
        os.replace(tmp, self._root / WANTED_FILE)

    def _requested_by_other(self) -> bool:
        try:
            _pid, token, stamp = (self._root / WANTED_FILE).read_text().split()
        except (OSError, ValueError):
            return False
        return token != self._token and int(stamp) > self._acquired_ns

    def _watch(self, stop: threading.Event) -> None:
        """Hand the lease over when another process (or instance) asks and we are idle."""
        while not stop.wait(self._watch_s):
            if not self._requested_by_other():
                continue
            if not self._mutex.acquire(blocking=False):
                continue  # an operation is running; hand over right after it
            try:
                if not stop.is_set() and self._depth == 0:
                    self._hand_over()
            finally:
                self._mutex.release()

    def _write_holder(self, operation: str) -> None:
        text = f"pid={os.getpid()} (last operation: {operation} at {time.strftime('%H:%M:%S')})"
        try:
            (self._root / HOLDER_FILE).write_text(text)
        except OSError:
            log.warning("cannot write %s (the lock itself still holds)", self._root / HOLDER_FILE)

    def _locked_message(self, operation: str) -> str:
        try:
            holder = (self._root / HOLDER_FILE).read_text().strip()
        except OSError:
            holder = "an unknown process"
        return (
            f"The embedded store at {self._root} is busy: process {holder} holds it and did not "
            f"hand it over within {self._timeout_s:g} s, so {operation!r} could not run. Wait for that "
            "process to finish, stop it, or run a Qdrant server and set EMBEDSCOPE_QDRANT_URL so "
            "several processes can share the data."
        )
