"""Latency and drop accounting of one fixed-rate trial.

A trial sends frames stamped with their send time; the node keeps each input's stamp on its
outputs. An output is matched to the frame with the same stamp, so for every output topic:
latency = receive time - stamp, and drops = frames sent - frames answered on that topic.
An answer that arrives after the trial's deadline (the last send plus a grace period) is
*late*: a node that only keeps up by queueing has a growing latency, and a short trial would
otherwise hide that in the input queues. Dropped and late frames are *missed*; the peak-rate
search judges rates by the missed share. Outputs whose stamp was not sent in this trial (late
answers to an earlier trial, duplicates) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class LatencySummary:
    """Latency figures in milliseconds; all NaN when nothing was received."""

    median_ms: float
    p90_ms: float
    max_ms: float

    @classmethod
    def of(cls, latencies_ms: Iterable[float]) -> LatencySummary:
        values = np.asarray(list(latencies_ms), dtype=np.float64)
        if values.size == 0:
            return cls(float("nan"), float("nan"), float("nan"))
        return cls(float(np.median(values)), float(np.percentile(values, 90)), float(values.max()))


@dataclass(frozen=True)
class TopicResult:
    """One output topic in one trial."""

    topic: str
    received: int
    dropped: int
    late: int
    latency: LatencySummary

    @property
    def sent(self) -> int:
        return self.received + self.dropped

    @property
    def drop_fraction(self) -> float:
        """Share of frames never answered."""
        return self.dropped / self.sent if self.sent else 0.0

    @property
    def miss_fraction(self) -> float:
        """Share of frames never answered or answered after the deadline."""
        return (self.dropped + self.late) / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class TrialResult:
    """One trial at a requested input rate.

    Attributes:
        rate_hz: the requested input rate.
        achieved_rate_hz: frames actually sent per second (lower when the feeder lags).
        sent: frames sent.
        topics: one result per output topic, in the target's order.
    """

    rate_hz: float
    achieved_rate_hz: float
    sent: int
    topics: tuple[TopicResult, ...]

    @property
    def drop_fraction(self) -> float:
        """The worst output topic's share of frames without an answer."""
        return max((t.drop_fraction for t in self.topics), default=0.0)

    @property
    def miss_fraction(self) -> float:
        """The worst output topic's share of frames dropped or late."""
        return max((t.miss_fraction for t in self.topics), default=0.0)


def achieved_rate(send_ns: Iterable[int]) -> float:
    """Frames per second from the send instants (ns): (n - 1) / span; 0 for fewer than 2."""
    times = sorted(send_ns)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return (len(times) - 1) * 1e9 / (times[-1] - times[0])


def summarize_trial(rate_hz: float, sent_stamps_ns: Iterable[int],
                    received: Mapping[str, Mapping[int, int]],
                    deadline_ns: int | None = None) -> TrialResult:
    """Figures of one trial.

    Args:
        rate_hz: the requested input rate.
        sent_stamps_ns: stamps of the frames sent (each equal to its send time, ns).
        received: per output topic, ``{stamp_ns: first receive time ns}`` of what arrived.
            Stamps not in ``sent_stamps_ns`` are ignored.
        deadline_ns: answers received after this instant are late; None: none is.

    Returns:
        The :class:`TrialResult`; ``received + dropped == sent`` for every topic.
    """
    sent = sorted(set(sent_stamps_ns))
    sent_set = set(sent)
    topics = []
    for topic, arrivals in received.items():
        matched = {stamp: at for stamp, at in arrivals.items() if stamp in sent_set}
        latencies = [(at - stamp) / NS_PER_MS for stamp, at in matched.items()]
        late = 0 if deadline_ns is None else sum(at > deadline_ns for at in matched.values())
        topics.append(TopicResult(topic, len(matched), len(sent) - len(matched), late,
                                  LatencySummary.of(latencies)))
    return TrialResult(rate_hz, achieved_rate(sent), len(sent), tuple(topics))
