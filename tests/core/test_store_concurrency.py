"""Many users at once: the server adapter lets calls over HTTP overlap (local mode stays one at a
time), the embedded store's long reads let other threads' calls in between their slices, its
threads take turns in arrival order, a busy lease holder hands over within a turn, and waits for
the store are counted (core.store.waits)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.store import EdgeStore, ServerStore, edge_ops, waits
from core.store.fair_lock import FairRLock
from core.store.lease import MIN_TURN_S, StoreLease
from core.types import SpaceInfo

P = "proj"


def _wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


# -- the server adapter's guard ----------------------------------------------------------------------
class _Qdrant(BaseHTTPRequestHandler):
    """Just enough of Qdrant's HTTP API for ServerStore's constructor: one documents collection."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = json.dumps({"result": {"collections": [{"name": "es__documents"}]}, "status": "ok", "time": 0.0})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def qdrant_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Qdrant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _most_at_once(store: ServerStore) -> int:
    """How many of two threads' list_projects calls ran inside the client at the same time."""
    inside, most, lock = [0], [0], threading.Lock()
    plain = store.client.get_collections

    def slow() -> Any:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.3)
        with lock:
            inside[0] -= 1
        return plain()

    store.client.get_collections = slow  # type: ignore[method-assign]
    threads = [threading.Thread(target=store.list_projects) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return most[0]


def test_calls_over_http_overlap_but_local_mode_runs_one_at_a_time(qdrant_url: str) -> None:
    remote = ServerStore(url=qdrant_url, check_schema=False)
    try:
        assert remote.list_projects() == []
        assert _most_at_once(remote) == 2, "no process-wide lock in front of a Qdrant server"
    finally:
        remote.close()
    local = ServerStore(path=":memory:")
    try:
        assert _most_at_once(local) == 1, "qdrant-client's local mode is not thread-safe"
    finally:
        local.close()


# -- the embedded store ------------------------------------------------------------------------------
class _SlowShard:
    """An EdgeShard whose scroll takes a little longer and is logged."""

    def __init__(self, shard: Any, events: list[str]) -> None:
        self._shard, self._events = shard, events

    def scroll(self, request: Any) -> Any:
        time.sleep(0.004)
        self._events.append("page")
        return self._shard.scroll(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shard, name)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeStore]:
    store = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)
    store.ensure_space(P, SpaceInfo("own", 8, "vector"))
    n = 1500
    vectors = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    store.upsert(P, "own", ids, vectors, [{"dataset": "d", "kind": "item", "label": f"c{i % 3}"} for i in range(n)])
    yield store
    store.close()


@pytest.mark.parametrize("read", ["payloads", "vectors"])
def test_a_long_read_lets_another_threads_call_in_between_its_slices(
        edge: EdgeStore, read: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge_ops, "_PAGE", 50)  # 30 pages, one per slice
    monkeypatch.setattr(edge_ops, "SLICE_S", 0.0)
    events: list[str] = []
    plain = edge._shard
    monkeypatch.setattr(edge, "_shard", lambda project, space: _SlowShard(plain(project, space), events))
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(getattr(edge, read)(P, "own")))
    reader.start()
    _wait_until(lambda: events.count("page") >= 3)
    assert edge.count(P, "own") == 1500
    events.append("count")
    reader.join(timeout=30)
    assert events.index("count") < len(events) - 1, "the count ran while the read was still going"
    assert "page" in events[events.index("count"):], events
    read_ids = list(result[0].index) if read == "payloads" else result[0][0]
    assert len(read_ids) == 1500 and read_ids == sorted(read_ids), "every point once, in id order"


def test_threads_waiting_for_the_store_take_turns_in_arrival_order() -> None:
    lock, order = FairRLock(), []
    lock.acquire()
    assert lock.acquire(blocking=True), "re-entrant"
    lock.release()

    def worker(name: str) -> None:
        with lock:
            order.append(name)

    threads = []
    for name in "abc":
        threads.append(threading.Thread(target=worker, args=(name,)))
        threads[-1].start()
        queued = len(threads)
        _wait_until(lambda: len(lock._queue) == queued)  # noqa: B023 - called within this iteration
    assert lock.acquire(blocking=False), "the owner gets it again even with others queued"
    lock.release()
    lock.release()
    with lock:  # asks again at once: behind the three that waited
        order.append("owner again")
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["a", "b", "c", "owner again"]
    other: list[bool] = []
    with lock:
        thread = threading.Thread(target=lambda: other.append(lock.acquire(blocking=False)))
        thread.start()
        thread.join()
    assert other == [False], "a held lock is not taken without waiting"


def test_waiting_for_another_thread_is_counted_as_a_store_wait(edge: EdgeStore) -> None:
    waits.reset()
    holding = threading.Event()

    def hold() -> None:
        with edge.hold("a long operation"):
            holding.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    edge.count(P, "own")
    holder.join()
    counted = waits.snapshot()[waits.THREAD]
    assert counted["count"] == 1 and 0.1 < counted["total_s"] < 5, counted
    assert waits.snapshot()[waits.PROCESS]["count"] == 0


def test_a_busy_holder_hands_over_after_its_turn_and_the_wait_is_counted(tmp_path: Path) -> None:
    """Two leases on one folder (two flocks: as two processes): one runs short operations without a
    pause; the other gets the store after about MIN_TURN_S, not when the busy one stops."""
    busy, other = StoreLease(tmp_path, lambda: None, timeout_s=10), StoreLease(tmp_path, lambda: None, timeout_s=10)
    stop, ops = threading.Event(), [0]

    def work() -> None:
        while not stop.is_set():
            with busy.hold("ingest batch"):
                ops[0] += 1
                time.sleep(0.02)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        _wait_until(lambda: ops[0] >= 3)
        waits.reset()
        started = time.monotonic()
        with other.hold("sidebar count"):
            waited = time.monotonic() - started
            assert not busy.held
        assert waited < MIN_TURN_S + 2.0, waited
        assert waits.snapshot()[waits.PROCESS]["count"] >= 1
        _wait_until(lambda: busy.held)  # and the busy one gets it back
    finally:
        stop.set()
        worker.join(timeout=10)
        busy.release()
        other.release()


def test_the_writer_keeps_the_dataset_counts_so_the_next_holder_need_not_load_the_shard(tmp_path: Path) -> None:
    writer, reader = EdgeStore(tmp_path / "s", lock_timeout_s=10), EdgeStore(tmp_path / "s", lock_timeout_s=10)
    try:
        writer.ensure_space(P, SpaceInfo("own", 4, "vector"))
        vectors = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
        ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]
        writer.upsert(P, "own", ids, vectors, [{"dataset": "d", "kind": "item"}] * 5)
        assert [(d.name, d.counts) for d in reader.list_datasets(P)] == [("d", {"own": 5})]
        assert (P, "own") not in reader._shards, "counted by the writer before it handed the store over"
    finally:
        writer.close()
        reader.close()


def test_a_cli_index_build_leaves_the_store_to_others_while_the_index_is_built(
        edge: EdgeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline.indexing import build_index_if_large
    from core.store import edge_build

    other = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)  # the dashboard, next to the CLI
    counted: list[float] = []
    plain = edge_build.run_child

    def building(copy: Path) -> None:  # while the child optimizes the copy, the other one reads
        started = time.monotonic()
        assert other.count(P, "own") == 1500
        counted.append(time.monotonic() - started)
        plain(copy)

    monkeypatch.setattr(edge_build, "run_child", building)
    try:
        assert build_index_if_large(edge, P, "own", threshold=100) is True  # no tick: as `ingest --object-vectors`
        assert counted and counted[0] < 5, "the store was free during the build"
        assert edge.count(P, "own") == 1500, "the indexed copy swapped in holds every point"
    finally:
        other.close()
