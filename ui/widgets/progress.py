"""Adapt core's progress(done, total) callbacks to a Streamlit progress bar with a live count."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import streamlit as st


def eta_s(elapsed_s: float, done: float, total: float, min_elapsed_s: float = 1.0) -> float | None:
    """Seconds left at the rate so far (elapsed_s for done of total); None until there is a rate."""
    if total <= 0 or done <= 0 or done >= total or elapsed_s < min_elapsed_s:
        return None
    return elapsed_s * (total - done) / done


def eta_text(seconds: float) -> str:
    """'about 40 s left' / 'about 3 min left'."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


class ProgressBar:
    """A callable `progress(done, total, message=None)` drawing st.progress and "done / total".

    Usage: `with ProgressBar("Embedding images") as bar: ingest_items(..., progress=bar)`.
    Redraws at most every `min_interval_s` (Streamlit messages are not free), always at the end.
    """

    def __init__(self, label: str, container: Any = None, min_interval_s: float = 0.1) -> None:
        self.label = label
        self.done = 0
        self.total = 0
        self._min_interval_s = min_interval_s
        self._last_draw = 0.0
        self._start = time.monotonic()
        parent = container if container is not None else st
        self._bar = parent.progress(0.0, text=label)

    def __call__(self, done: int, total: int, message: str | None = None, *_: Any) -> None:
        if int(done) < self.done or int(total) != self.total:  # a new phase: its own ETA
            self._start = time.monotonic()
        self.done, self.total = int(done), int(total)
        now = time.monotonic()
        if done < total and now - self._last_draw < self._min_interval_s:
            return
        self._last_draw = now
        self._draw(message)

    def _draw(self, message: str | None = None) -> None:
        fraction = min(1.0, self.done / self.total) if self.total > 0 else 0.0
        text = f"{message or self.label}: {self.done:,} / {self.total:,}"
        left = eta_s(time.monotonic() - self._start, self.done, self.total)
        if left is not None:
            text += f" · {eta_text(left)}"
        self._bar.progress(fraction, text=text)

    def finish(self, message: str | None = None) -> None:
        """Draw the final state (full bar when the total was reached)."""
        self._draw(message)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.finish()
