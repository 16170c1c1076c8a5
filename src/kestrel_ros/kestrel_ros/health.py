"""Node health bookkeeping (ROS-free): rates, processing times, drops and bad-input causes."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from statistics import median
from typing import Callable


@dataclass
class CauseCount:
    """How often one bad-input cause happened, and what was last said about it."""

    total: int = 0
    suppressed: int = 0
    last_logged: float = float("-inf")
    last_seen: float = float("-inf")
    last_detail: str = ""


@dataclass
class HealthStats:
    """Counts what a node receives, processes and drops, for ``/diagnostics``.

    Times come from ``clock`` (monotonic seconds) so tests can drive it.

    Attributes:
        window: number of recent samples used for rates and medians.
        throttle_s: a cause is logged at most once per this many seconds.
        warn_hold_s: a cause keeps the status at WARN this long after it was last seen.
    """

    window: int = 50
    throttle_s: float = 5.0
    warn_hold_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    received: int = 0
    processed: int = 0
    causes: dict[str, CauseCount] = field(default_factory=dict)
    _arrivals: deque = field(default_factory=deque, repr=False)
    _durations: deque = field(default_factory=deque, repr=False)

    def input_received(self) -> None:
        self.received += 1
        self._arrivals.append(self.clock())
        while len(self._arrivals) > self.window:
            self._arrivals.popleft()

    def frame_processed(self, seconds: float) -> None:
        self.processed += 1
        self._durations.append(seconds)
        while len(self._durations) > self.window:
            self._durations.popleft()

    def frame_dropped(self, cause: str, detail: str) -> str | None:
        """Count a dropped frame; return the line to log now, or ``None`` while throttled."""
        now = self.clock()
        count = self.causes.setdefault(cause, CauseCount())
        count.total += 1
        count.last_seen = now
        count.last_detail = detail
        if now - count.last_logged < self.throttle_s:
            count.suppressed += 1
            return None
        line = f"[{cause}] {detail}; frame dropped"
        if count.suppressed:
            line += f" ({count.suppressed} more since the last report)"
        count.suppressed = 0
        count.last_logged = now
        return line

    @property
    def dropped(self) -> int:
        return sum(count.total for count in self.causes.values())

    @property
    def input_rate_hz(self) -> float:
        if len(self._arrivals) < 2:
            return 0.0
        span = self._arrivals[-1] - self._arrivals[0]
        return (len(self._arrivals) - 1) / span if span > 0 else 0.0

    @property
    def median_processing_ms(self) -> float:
        return 1000.0 * median(self._durations) if self._durations else 0.0

    def active_causes(self) -> list[str]:
        """Causes seen within ``warn_hold_s``: they make the status WARN."""
        now = self.clock()
        return sorted(
            name for name, count in self.causes.items() if now - count.last_seen <= self.warn_hold_s
        )

    def key_values(self) -> list[tuple[str, str]]:
        """Flat key/value pairs for a DiagnosticStatus."""
        pairs = [
            ("input_rate_hz", f"{self.input_rate_hz:.2f}"),
            ("processing_time_ms_median", f"{self.median_processing_ms:.1f}"),
            ("frames_received", str(self.received)),
            ("frames_processed", str(self.processed)),
            ("frames_dropped", str(self.dropped)),
        ]
        pairs += [(f"dropped.{name}", str(count.total)) for name, count in sorted(self.causes.items())]
        return pairs
