"""The process's job registry: a small pool of low-priority worker threads, jobs shared by key, cancel rights."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from core.auth import Actor, Permission
from core.errors import NotFoundError, PermissionDeniedError, UnsupportedOperationError
from core.jobs.job import DONE, FAILED, Job, Work

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Below normal priority, above the demo's idle-only embedding (19): a job someone waits for still gets
# most of an idle CPU, while page reruns (nice 0) win whenever both want it, so clicks stay responsive.
JOB_NICE = 10
KEEP_S = 600.0  # how long a finished job stays listed, and a done one is handed to a new ask for its key
MAX_FINISHED = 50  # finished jobs listed at most (the oldest forgotten first)


class JobRegistry:
    """Jobs of one process: submit() runs work on a worker thread (or hands back the job already
    running / recently done for the same key), jobs() lists them for everyone, cancel() stops one."""

    def __init__(self, workers: int = DEFAULT_WORKERS, *, nice: int | None = JOB_NICE,
                 keep_s: float = KEEP_S) -> None:
        if workers < 1:
            raise ValueError(f"a job registry needs at least one worker, got {workers}")
        self.workers, self.nice, self.keep_s = workers, nice, keep_s
        self._jobs: dict[str, Job] = {}  # by id, in submission order
        self._by_key: dict[Hashable, Job] = {}
        self._work: dict[str, Work] = {}  # work of the jobs not started yet
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def submit(self, key: Hashable, kind: str, title: str, actor: Actor, fn: Work, *,
               project: str | None = None, store: str | None = None, own_thread: bool = False,
               cancellable: bool = True) -> Job:
        """The job computing `key`: the one running (or queued) for it, or done less than keep_s ago,
        else a new job running fn(progress, cancelled) on a worker. The key must name everything the
        result depends on (the store, the arguments, the data's revision): two users asking for the
        same key share one computation. A failed or cancelled job is not reused: asking again retries.
        own_thread: run it on a thread of its own, not the pool (work that mostly waits, e.g. on an index
        build in a child process, must not hold a worker for minutes). cancellable: False for work that
        cannot stop half-way (cancel() then refuses)."""
        with self._lock:
            self._prune()
            known = self._by_key.get(key)
            if known is not None and (known.running or known.state == DONE):
                return known
            job = Job(key=key, kind=kind, title=title, owner=actor.name, project=project, store=store,
                      cancellable=cancellable)
            self._jobs[job.id] = self._by_key[key] = job
            self._work[job.id] = fn
            if not own_thread:
                self._start_workers()
        if own_thread:
            threading.Thread(target=self._run, args=(job,), name=f"embedscope-job-{job.kind}-{job.id}",
                             daemon=True).start()
        else:
            self._queue.put(job)
        log.info("job %s submitted by %s: %s", job.id, job.owner, title)
        return job

    @contextmanager
    def running_here(self, kind: str, title: str, actor: Actor, *, project: str | None = None,
                     store: str | None = None) -> Iterator[Job]:
        """List work the caller runs in its own thread (e.g. the first part of Load demo, which the page
        waits for) like any job, for everyone: the caller reports through job.progress; the job ends
        DONE, or FAILED with the exception, which propagates. Never shared (a key of its own) nor
        cancellable (the caller's thread has no batch loop that checks)."""
        job = Job(key=(kind, uuid.uuid4().hex), kind=kind, title=title, owner=actor.name, project=project,
                  store=store, cancellable=False)
        with self._lock:
            self._prune()
            self._jobs[job.id] = self._by_key[job.key] = job
        job.started, job.phase = time.time(), "starting…"
        outcome = FAILED
        try:
            yield job
            outcome = DONE
        except BaseException as e:
            job.error = e
            raise
        finally:
            job.finish(outcome)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def find(self, key: Hashable) -> Job | None:
        """The latest job of `key` (any state), if still kept."""
        with self._lock:
            return self._by_key.get(key)

    def recent(self, project: str | None = None, store: str | None = None) -> list[Job]:
        """Running and queued jobs first (oldest first), then finished ones (latest first); of one
        project and of one store (VectorStore.describe()) when given (jobs of none are listed everywhere)."""
        with self._lock:
            self._prune()
            kept = [j for j in self._jobs.values() if (project is None or j.project in (None, project))
                    and (store is None or j.store in (None, store))]
        running = [j for j in kept if j.running]
        finished = sorted((j for j in kept if not j.running), key=lambda j: j.ended or 0.0, reverse=True)
        return running + finished

    @staticmethod
    def may_cancel(job: Job, actor: Actor) -> bool:
        """Its owner may cancel a (cancellable) job, and so may an actor allowed to manage jobs (admins)."""
        return job.cancellable and (actor.name == job.owner or actor.can(Permission.MANAGE_JOBS))

    def cancel(self, job_id: str, actor: Actor) -> Job:
        """Ask a job to stop (it does at its next progress call or check; a queued one never starts).
        Raises NotFoundError for an unknown job, PermissionDeniedError when actor may not cancel it."""
        job = self.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}: it finished a while ago or never existed")
        if not job.cancellable:
            raise UnsupportedOperationError(f"the job “{job.title}” cannot be stopped half-way; it ends on its own")
        if not self.may_cancel(job, actor):
            raise PermissionDeniedError(f"{actor.name} is a {actor.role.value}: cancelling the job "
                                        f"“{job.title}” started by {job.owner} needs the admin role")
        if job.running:
            job.request_cancel(actor.name)
            log.info("job %s (%s) cancel requested by %s", job.id, job.title, actor.name)
        return job

    def _start_workers(self) -> None:
        # Started on the first submit, so importing core.jobs costs no threads; daemons, so a server
        # stopping does not wait for a long fit (its partial result is never persisted).
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._worker, name=f"embedscope-job-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _worker(self) -> None:
        self._lower_priority()
        while True:
            self._run(self._queue.get(), lowered=True)

    def _run(self, job: Job, lowered: bool = False) -> None:
        if not lowered:
            self._lower_priority()
        with self._lock:
            fn = self._work.pop(job.id)
        job.run(fn)

    def _lower_priority(self) -> None:
        if self.nice is not None:
            from core.demo_job import lower_thread_priority

            lower_thread_priority(self.nice)

    def _prune(self) -> None:
        """Forget finished jobs older than keep_s, and all but the MAX_FINISHED latest (lock held)."""
        now = time.time()
        finished = sorted((j for j in self._jobs.values() if not j.running), key=lambda j: j.ended or 0.0)
        stale = [j for j in finished if now - (j.ended or now) > self.keep_s]
        stale += finished[len(stale):max(len(finished) - MAX_FINISHED, len(stale))]
        for job in stale:
            del self._jobs[job.id]
            if self._by_key.get(job.key) is job:
                del self._by_key[job.key]


_REGISTRY: JobRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def jobs(workers: int | None = None) -> JobRegistry:
    """This process's registry, made on the first call with `workers` threads (None: DEFAULT_WORKERS;
    the dashboard passes settings.job_workers); later calls return the same registry."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            _REGISTRY = JobRegistry(workers or DEFAULT_WORKERS)
        return _REGISTRY
