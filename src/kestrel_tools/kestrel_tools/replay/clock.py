"""Bag time versus wall time during a replay, scaled by a rate.

``PlaybackClock`` maps a bag timestamp to the monotonic instant it is due at, and the current
monotonic instant back to a bag timestamp (what ``/clock`` announces). It holds no ROS
objects, so the pacing arithmetic is testable on its own.
"""

from __future__ import annotations

import time
from typing import Callable


class PlaybackClock:
    """Bag time runs ``rate`` times as fast as the monotonic clock, from an anchor.

    ``start(bag_ns)`` anchors bag time ``bag_ns`` at the current monotonic instant; after
    that ``due(t)`` is the monotonic instant (seconds) at which bag time ``t`` is reached
    and ``now_ns()`` is the bag time of this instant.
    """

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0.0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self._monotonic = monotonic
        self._anchor_wall: float | None = None
        self._anchor_bag_ns = 0

    @property
    def started(self) -> bool:
        return self._anchor_wall is not None

    def start(self, bag_ns: int) -> None:
        """Anchor bag time ``bag_ns`` now (again at each pass of a loop)."""
        self._anchor_wall = self._monotonic()
        self._anchor_bag_ns = int(bag_ns)

    def due(self, bag_ns: int) -> float:
        """Monotonic instant (s) at which bag time ``bag_ns`` is due."""
        self._check_started()
        return self._anchor_wall + (bag_ns - self._anchor_bag_ns) * 1e-9 / self.rate

    def now_ns(self) -> int:
        """Bag time (ns) of the current instant."""
        self._check_started()
        elapsed = self._monotonic() - self._anchor_wall
        return self._anchor_bag_ns + int(round(elapsed * self.rate * 1e9))

    def _check_started(self) -> None:
        if self._anchor_wall is None:
            raise RuntimeError("the playback clock is not started")


def clock_message(bag_ns: int) -> object:
    """A rosgraph_msgs/Clock holding ``bag_ns``."""
    from rosgraph_msgs.msg import Clock

    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
    return msg
