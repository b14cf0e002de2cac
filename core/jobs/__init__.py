"""Background jobs: heavy work (map fits, analyses, comparisons, ingests, index builds) off the page's script run."""

from core.jobs.job import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobCancelledError, Work
from core.jobs.registry import DEFAULT_WORKERS, JobRegistry, jobs

__all__ = [
    "CANCELLED",
    "DEFAULT_WORKERS",
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "Job",
    "JobCancelledError",
    "JobRegistry",
    "Work",
    "jobs",
]
