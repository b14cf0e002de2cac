"""Accumulate wall-clock seconds per stage of a pipeline (waiting on input, model, store)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class Timer:
    """Seconds per named section, plus the total since creation."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def iterate(self, name: str, source: Iterable[T]) -> Iterator[T]:
        """Yield from source, adding the time spent waiting for each element to `name`."""
        iterator = iter(source)
        while True:
            start = time.perf_counter()
            try:
                value = next(iterator)
            except StopIteration:
                self.seconds[name] += time.perf_counter() - start
                return
            self.seconds[name] += time.perf_counter() - start
            yield value

    def totals(self) -> dict[str, float]:
        """{section: seconds} plus "total" (seconds since the timer was created)."""
        return {**self.seconds, "total": time.perf_counter() - self.started}
