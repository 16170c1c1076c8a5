"""Search for the highest input rate a node sustains with few dropped frames.

Like ros2_benchmark's peak-throughput search: ramp the rate up geometrically while the drop
share stays under the threshold, then bisect (geometrically) between the last rate that passed
and the first that failed until they are within ``resolution`` of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateSearchConfig:
    """Attributes:
        start_hz: first rate tried.
        min_hz, max_hz: the rates tried stay in this range.
        max_drop: a rate passes when its drop share is strictly below this.
        step: ramp factor (rate multiplied, or divided when the start fails).
        resolution: stop bisecting once failing / passing rate <= 1 + resolution.
        max_trials: at most this many trials in all.
    """

    start_hz: float = 2.0
    min_hz: float = 0.25
    max_hz: float = 60.0
    max_drop: float = 0.05
    step: float = 2.0
    resolution: float = 0.15
    max_trials: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.min_hz <= self.start_hz <= self.max_hz:
            raise ValueError(f"need 0 < min_hz <= start_hz <= max_hz, got {self.min_hz}, "
                             f"{self.start_hz}, {self.max_hz}")
        if not 0 < self.max_drop <= 1:
            raise ValueError(f"max_drop must be in (0, 1], got {self.max_drop}")
        if self.step <= 1 or self.resolution <= 0 or self.max_trials < 1:
            raise ValueError("step must exceed 1, resolution be positive, max_trials >= 1")


@dataclass(frozen=True)
class RateSearchResult:
    """Attributes:
        peak_hz: the highest rate that passed, or None if none did.
        failed_hz: the lowest rate that failed above it, or None (then the peak is a lower
            bound: max_hz passed, or the trials ran out).
        trials: ``(rate_hz, drop_fraction)`` in the order tried.
    """

    peak_hz: float | None
    failed_hz: float | None
    trials: tuple[tuple[float, float], ...]


def find_peak_rate(trial: Callable[[float], float], config: RateSearchConfig) -> RateSearchResult:
    """Run ``trial(rate_hz) -> drop_fraction`` at chosen rates; the peak sustainable rate."""
    trials: list[tuple[float, float]] = []
    passed: float | None = None
    failed: float | None = None

    def run(rate: float) -> bool:
        drop = trial(rate)
        trials.append((rate, drop))
        return drop < config.max_drop

    rate = config.start_hz
    # Ramp until the pass/fail boundary is bracketed (or a limit of the range is reached).
    while len(trials) < config.max_trials:
        if run(rate):
            passed = rate
            if failed is not None or rate >= config.max_hz:
                break
            rate = min(rate * config.step, config.max_hz)
        else:
            failed = rate
            if passed is not None or rate <= config.min_hz:
                break
            rate = max(rate / config.step, config.min_hz)
    # Bisect the bracket geometrically.
    while (passed is not None and failed is not None and len(trials) < config.max_trials
           and failed / passed > 1 + config.resolution):
        middle = math.sqrt(passed * failed)
        if run(middle):
            passed = middle
        else:
            failed = middle
    return RateSearchResult(passed, failed, tuple(trials))
