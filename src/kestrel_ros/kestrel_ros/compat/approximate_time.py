"""A stand-in for ``message_filters`` (Subscriber + ApproximateTimeSynchronizer).

Used only where the real ``message_filters`` cannot be imported (the PyPI ROS wheels lack
it); :mod:`kestrel_ros.compat.message_filters` chooses. The interface matches the real one.

The matching policy (:class:`ApproximateTimePolicy`) is plain Python so it can be tested
without a ROS graph. It is simpler than the real adaptive algorithm but has the same
contract: every emitted set has one message per input, all stamps within ``slop`` seconds,
each message is used at most once, and sets come out in stamp order.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Sequence


def time_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_ns(msg: Any) -> int:
    """Nanoseconds of ``msg.header.stamp``."""
    return time_ns(msg.header.stamp)


class ApproximateTimePolicy:
    """Matches messages from ``n_inputs`` streams whose stamps lie within ``slop`` seconds.

    Each input keeps at most ``queue_size`` messages. When every input holds a message, the
    pivot is the newest of the inputs' oldest stamps; each input offers its message closest
    to the pivot. If those offers span at most ``slop``, they are emitted and everything up
    to them is discarded; otherwise the oldest message overall can never be matched any more
    and is discarded. Discarded messages are counted in ``dropped`` (per input).
    """

    def __init__(self, n_inputs: int, queue_size: int, slop: float) -> None:
        if n_inputs < 2:
            raise ValueError("synchronizing needs at least two inputs")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if slop < 0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        self._queues: list[deque[tuple[int, Any]]] = [deque() for _ in range(n_inputs)]
        self._queue_size = queue_size
        self._slop_ns = int(round(slop * 1e9))
        self.dropped = [0] * n_inputs

    def add(self, index: int, stamp: int, msg: Any) -> list[tuple[Any, ...]]:
        """Add a message stamped ``stamp`` (ns) to input ``index``; return matched sets."""
        queue = self._queues[index]
        queue.append((stamp, msg))
        if len(queue) > 1 and queue[-2][0] > stamp:
            ordered = sorted(queue, key=lambda item: item[0])
            queue.clear()
            queue.extend(ordered)
        while len(queue) > self._queue_size:
            queue.popleft()
            self.dropped[index] += 1
        return self._match()

    def _match(self) -> list[tuple[Any, ...]]:
        matched: list[tuple[Any, ...]] = []
        while all(self._queues):
            pivot = max(queue[0][0] for queue in self._queues)
            picks = [
                min(range(len(queue)), key=lambda i, q=queue: abs(q[i][0] - pivot))
                for queue in self._queues
            ]
            stamps = [queue[pick][0] for queue, pick in zip(self._queues, picks)]
            if max(stamps) - min(stamps) <= self._slop_ns:
                matched.append(tuple(queue[pick][1] for queue, pick in zip(self._queues, picks)))
                for index, (queue, pick) in enumerate(zip(self._queues, picks)):
                    self.dropped[index] += pick
                    for _ in range(pick + 1):
                        queue.popleft()
                continue
            oldest = min(range(len(self._queues)), key=lambda i: self._queues[i][0][0])
            self._queues[oldest].popleft()
            self.dropped[oldest] += 1
        return matched


class Subscriber:
    """Stand-in for ``message_filters.Subscriber``: a subscription that feeds filters."""

    def __init__(self, node: Any, msg_type: type, topic: str, qos_profile: Any = 10, **kwargs: Any):
        self.topic = topic
        self._callbacks: list[Callable[[Any], None]] = []
        self.sub = node.create_subscription(msg_type, topic, self._deliver, qos_profile, **kwargs)

    def registerCallback(self, callback: Callable[..., None], *args: Any) -> None:  # noqa: N802
        self._callbacks.append(lambda msg: callback(msg, *args))

    def _deliver(self, msg: Any) -> None:
        for callback in self._callbacks:
            callback(msg)


class ApproximateTimeSynchronizer:
    """Stand-in for ``message_filters.ApproximateTimeSynchronizer``."""

    def __init__(
        self,
        fs: Sequence[Subscriber],
        queue_size: int,
        slop: float,
        allow_headerless: bool = False,
    ) -> None:
        if allow_headerless:
            raise ValueError("the Kestrel stand-in synchronizes stamped messages only")
        self._policy = ApproximateTimePolicy(len(fs), queue_size, slop)
        self._callbacks: list[Callable[..., None]] = []
        for index, source in enumerate(fs):
            source.registerCallback(self._add, index)

    def registerCallback(self, callback: Callable[..., None], *args: Any) -> None:  # noqa: N802
        self._callbacks.append(lambda *msgs: callback(*msgs, *args))

    def _add(self, msg: Any, index: int) -> None:
        for matched in self._policy.add(index, stamp_ns(msg), msg):
            for callback in self._callbacks:
                callback(*matched)
