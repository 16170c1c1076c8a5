"""Wall-clock medians after a warm-up, the one timing rule every benchmark follows."""

from __future__ import annotations

import statistics
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def median_ms(run_once: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``run_once`` in ms over ``repeats`` runs after one warm-up,
    and the last output."""
    output = run_once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = run_once()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), output
