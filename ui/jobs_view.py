"""Background jobs on the pages: wait briefly for a job, then follow it in a polling fragment; the job list."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.errors import CoreError
from core.jobs import CANCELLED, FAILED, Job, JobRegistry, jobs
from core.jobs.work import JobSpec
from core.types import Progress
from ui import resources
from ui.errors import show_errors
from ui.text import md
from ui.widgets.progress import eta_text

POLL_S = 1.0  # how often a page following a job redraws its progress
LIST_POLL_S = 2.0  # how often the sidebar's job list redraws while a job runs
RECENT = 5  # finished jobs shown in the sidebar list
MAX_LISTED = 20  # finished jobs shown on the Home page
_FOLLOWED = "_jobs.followed."  # + key: the id of the job this session follows there
_CANCELLED = "_jobs.cancelled."  # + key: the job key of the last job followed there that was cancelled
ICONS = {"map": ":material/map:", "analysis": ":material/troubleshoot:", "compare": ":material/compare_arrows:",
         "ingest": ":material/upload_file:", "index": ":material/manage_search:",
         "evaluate": ":material/leaderboard:", "demo": ":material/rocket_launch:",
         "calibration": ":material/straighten:"}
STATE_ICONS = {"done": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/block:"}


def registry() -> JobRegistry:
    """This server process's job registry (its pool sized by settings.job_workers)."""
    return jobs(resources.get_settings().job_workers)


def _store() -> str:
    """The dashboard's store (its describe()): the lists show the jobs working on it."""
    return resources.get_store().describe()


def submit(spec: JobSpec) -> Job:
    """Start spec in this process's registry (or join the job already computing the same thing)."""
    return spec.submit(registry())


def mirrored(job: Job, phase: str, progress: Progress) -> Progress:
    """progress (a page's own bar), also reported to `job` (JobRegistry.running_here: listed for everyone)
    with `phase` as its words."""
    def both(done: int, total: int) -> None:
        progress(done, total)
        job.progress(done, total, phase)
    return both


def progress_text(job: Job) -> str:
    """"fitting the layout (%): 37 / 100 · about 40 s left" (what the job does, how far, how long)."""
    text = md(job.phase, limit=None)
    if job.total > 0 and job.running:
        text += f": {job.done:,} / {job.total:,}"
    left = job.eta_s()
    return text + (f" · {eta_text(left)}" if left is not None else "")


def track(key: str, label: str, job: Job | None = None, *, container: Any = None) -> Job | None:
    """Follow `job` (just submitted) or, when None, the job this session follows under `key`.

    A job just submitted gets settings.job_wait_s to finish while its progress shows (short jobs: no
    flicker); still running then, its progress is drawn in a fragment that polls it and reruns the page
    when it ends, and None is returned so the page goes on (it never blocks for minutes). Returns the
    job once it finished well (its result in job.result); raises its error when it failed (a CoreError:
    the page's show_errors says it); says so and returns None when it was cancelled.
    """
    state_key = _FOLLOWED + key
    if job is None:
        followed = st.session_state.get(state_key)
        job = registry().get(followed) if isinstance(followed, str) else None
        if job is None:
            st.session_state.pop(state_key, None)
            return None
        label = job.title  # followed since an earlier run, perhaps of other choices: its own words
    parent = container if container is not None else st
    if job.running:
        _wait_inline(job, label, parent)
    if job.running:
        st.session_state[state_key] = job.id
        with parent.container():
            _follower(job.id, label, key)
        return None
    st.session_state.pop(state_key, None)
    if job.state == FAILED and job.error is not None:
        if isinstance(job.error, CoreError):
            raise job.error
        raise RuntimeError(f"{job.title} failed: {job.error}") from job.error
    if job.state == CANCELLED:
        st.session_state[_CANCELLED + key] = job.key
        parent.info(f"{md(label)}: cancelled by {md(job.cancelled_by or job.owner)}.", icon=":material/block:")
        return None
    return job


def start(key: str, spec: JobSpec) -> Job:
    """submit(spec) and follow the job under `key` from now on (track(key, ...) draws it)."""
    job = submit(spec)
    st.session_state[_FOLLOWED + key] = job.id
    st.session_state.pop(_CANCELLED + key, None)
    return job


def cancelled_here(key: str, spec: JobSpec) -> bool:
    """Whether the job followed under `key` was cancelled while computing what `spec` computes: a page
    that starts it on its own (the first map) then waits for the user instead of starting it again."""
    if st.session_state.get(_CANCELLED + key) == spec.key:
        return True
    followed = st.session_state.get(_FOLLOWED + key)  # cancelled since the last run: track() not called yet
    job = registry().get(followed) if isinstance(followed, str) else None
    return job is not None and job.key == spec.key and job.state == CANCELLED


def _wait_inline(job: Job, label: str, parent: Any) -> None:
    """Wait until settings.job_wait_s after the job was submitted, drawing its progress (a fast job
    needs no fragment; a job someone started minutes ago is not waited for)."""
    deadline = job.submitted + resources.get_settings().job_wait_s
    bar = None
    while job.running and time.time() < deadline:
        if job.wait(min(0.25, max(deadline - time.time(), 0.0))):
            break
        if bar is None:
            bar = parent.empty()
        bar.progress(job.fraction, text=f"{md(label)} · {progress_text(job)}")
    if bar is not None:
        bar.empty()


@st.fragment(run_every=POLL_S)
def _follower(job_id: str, label: str, key: str) -> None:
    """The followed job's progress, redrawn every POLL_S; the whole page reruns once it has ended."""
    job = registry().get(job_id)
    if job is None or not job.running:
        st.rerun()  # the page picks up the result (or the error) and stops following
        return
    job_card(job, key=f"{key}.follow", label=label)


def job_card(job: Job, *, key: str, label: str | None = None, compact: bool = False) -> None:
    """One job: title, who started it, progress with its ETA, and Cancel for its owner or an admin."""
    from ui.actor import current_actor

    icon = ICONS.get(job.kind, ":material/pending:")
    who = f"started by {md(job.owner)}"
    if job.running:
        text = f"{icon} {md(label or job.title)} · {who}"
        st.progress(job.fraction, text=f"{text} · {progress_text(job)}" if not compact else text)
        if compact:
            st.caption(progress_text(job))
        actor = current_actor()
        if job.cancel_requested:
            st.caption(":material/hourglass_top: stopping at the next batch…")
        elif JobRegistry.may_cancel(job, actor) and st.button(
                "Cancel", key=f"{key}.cancel.{job.id}", icon=":material/cancel:",
                help="Stop this job at its next batch (a map or an analysis saves nothing; an ingest keeps "
                     "what it stored, and running it again resumes)"):
            with show_errors():  # refused (rights changed meanwhile): said, not raised
                registry().cancel(job.id, actor)
                st.caption(":material/hourglass_top: stopping at the next batch…")
        return
    took = f"{job.elapsed_s:,.0f} s" if job.started is not None else "not started"
    state = STATE_ICONS.get(job.state, "")
    st.caption(f"{state} {md(job.title)} · {who} · {job.state} · {took}")


def _job_list(project: str | None, key: str, recent: int) -> None:
    listed = registry().recent(project, _store())
    running = [j for j in listed if j.running]
    finished = [j for j in listed if not j.running][:recent]
    if not running and not finished:
        if key == HOME_KEY:
            st.caption("No background job ran in this server process lately.")
        return
    if key != HOME_KEY:
        st.markdown(f"**:material/pending_actions: Jobs** · {len(running)} running")
    for job in [*running, *finished]:
        job_card(job, key=key, compact=key != HOME_KEY)


_live_list = st.fragment(_job_list, run_every=LIST_POLL_S)
_still_list = st.fragment(_job_list)
SIDEBAR_KEY, HOME_KEY = "jobs.list", "jobs.home"


def jobs_sidebar(project: str | None) -> None:
    """The job list every user sees, in the sidebar: running jobs (of this project and of none) with
    who started them, progress and ETA, and the latest finished ones; redrawn while any runs."""
    live = any(j.running for j in registry().recent(project, _store()))
    with st.sidebar:
        (_live_list if live else _still_list)(project, SIDEBAR_KEY, RECENT)


def jobs_section() -> None:
    """Every project's background jobs of this server process, on the Home page: running ones with
    progress, ETA and Cancel (for their owner or an admin), then those finished lately."""
    listed = registry().recent(store=_store())
    running = sum(j.running for j in listed)
    with st.expander(f":material/pending_actions: Background jobs · {running} running", expanded=running > 0):
        st.caption("Map fits, analyses and comparisons run here for everyone: asking for the same map as "
                   "someone else joins their job. Their owner or an admin can cancel them.")
        (_live_list if running else _still_list)(None, HOME_KEY, MAX_LISTED)
