"""``BagPlayer``: publish a bag's messages into the ROS graph, paced by their timestamps.

Messages go out as the CDR bytes stored in the bag (rclpy publishes ``bytes`` as a serialized
message), so nothing is deserialized in Python. The message classes are only needed to create
the publishers. Bag time is announced on ``/clock`` so nodes with ``use_sim_time`` follow it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from kestrel_tools.bags import BagError, BagReader
from kestrel_tools.replay.clock import PlaybackClock, clock_message
from kestrel_tools.replay.types import message_class

LATCHED_TOPICS = frozenset({"/tf_static"})


def parse_remaps(remaps: list[str] | None) -> dict[str, str]:
    """``["OLD:=NEW", ...]`` -> ``{OLD: NEW}`` (names made absolute)."""
    table: dict[str, str] = {}
    for remap in remaps or []:
        old, sep, new = remap.partition(":=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--remap takes OLD:=NEW, got {remap!r}")
        table[absolute(old.strip())] = absolute(new.strip())
    return table


def absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


@dataclass(frozen=True)
class PlayOptions:
    """How to play a bag.

    Attributes:
        rate: bag seconds per wall second (2.0 plays twice as fast).
        loop: start again at the end, until interrupted.
        topics: bag topics to play; None plays every topic whose type is installed.
        remaps: bag topic -> published topic.
        qos_depth: history depth of the (reliable) publishers.
        clock: publish ``/clock`` with the bag time.
        clock_rate_hz: ``/clock`` ticks per wall second; 0 publishes it with each message.
    """

    rate: float = 1.0
    loop: bool = False
    topics: tuple[str, ...] | None = None
    remaps: dict[str, str] = field(default_factory=dict)
    qos_depth: int = 100
    clock: bool = True
    clock_rate_hz: float = 100.0

    def __post_init__(self) -> None:
        if not self.rate > 0.0:
            raise ValueError(f"--rate must be positive, got {self.rate}")
        if self.qos_depth < 1:
            raise ValueError(f"--qos-depth must be at least 1, got {self.qos_depth}")
        if self.clock_rate_hz < 0.0:
            raise ValueError(f"--clock-rate-hz must be >= 0, got {self.clock_rate_hz}")


@dataclass
class PlayStats:
    """What a replay did: messages per published topic, passes, wall and bag time spent."""

    published: Counter[str] = field(default_factory=Counter)
    passes: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0
    clock_ticks: int = 0
    error: BagError | None = None

    @property
    def total(self) -> int:
        return sum(self.published.values())

    @property
    def effective_rate(self) -> float:
        """Bag seconds played per wall second."""
        return self.bag_s / self.wall_s if self.wall_s > 0 else 0.0


def choose_topics(bag: BagReader, options: PlayOptions,
                  warn: Callable[[str], None] | None = None) -> list[str]:
    """The bag topics ``options`` selects, checked against the bag (no ROS graph needed).

    With no ``options.topics``, every topic whose message type is installed (the others are
    passed to ``warn``). A chosen topic that is not in the bag, a chosen topic of an uninstalled
    type, or a remap of a topic that is not played raises ``ValueError`` naming it.
    """
    known = bag.topics
    if options.topics is not None:
        chosen = list(dict.fromkeys(absolute(t) for t in options.topics))
        missing = [t for t in chosen if t not in known]
        if missing:
            raise ValueError(f"topic {', '.join(missing)} is not in {bag.path} "
                             f"(topics: {', '.join(sorted(known)) or 'none'})")
        for topic in chosen:
            message_class(known[topic])
    else:
        chosen = []
        for topic, msgtype in sorted(known.items()):
            try:
                message_class(msgtype)
            except ValueError as err:
                if warn is not None:
                    warn(f"skipping {topic}: {err}")
                continue
            chosen.append(topic)
        if not chosen:
            raise ValueError(f"{bag.path}: no topic has an installed message type")
    for old in options.remaps:
        if old not in chosen:
            raise ValueError(f"--remap {old}: not a played topic (played: {', '.join(chosen)})")
    return chosen


def publisher_qos(topic: str, depth: int, latched: bool = False) -> QoSProfile:
    """Reliable; transient-local for ``/tf_static`` (or when ``latched``), else volatile."""
    latched = latched or topic in LATCHED_TOPICS
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)


class BagPlayer:
    """Publishes a bag's topics on ``node``.

    The publishers exist from construction on, so subscribers can match before
    :meth:`play`. ``sleep`` is the pacing wait (``time.sleep`` by default).
    """

    def __init__(self, node: Node, bag: BagReader, options: PlayOptions,
                 sleep: Callable[[float], None] = time.sleep,
                 warn: Callable[[str], None] | None = None) -> None:
        self.node, self.bag, self.options = node, bag, options
        self._sleep = sleep
        self._warn = warn or (lambda text: print(f"kestrel replay: warning: {text}", file=sys.stderr))
        self.topics = choose_topics(bag, options, self._warn)
        self.output = {t: options.remaps.get(t, t) for t in self.topics}
        self._publishers = {
            t: node.create_publisher(message_class(bag.topics[t]), self.output[t],
                                     publisher_qos(self.output[t], options.qos_depth,
                                                   latched=t in LATCHED_TOPICS))
            for t in self.topics
        }
        self._clock_pub = None
        if options.clock:
            from rosgraph_msgs.msg import Clock
            self._clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(
                depth=options.qos_depth, reliability=ReliabilityPolicy.RELIABLE))
        self.clock = PlaybackClock(options.rate)
        self.clock_ticks = 0
        self.stats = PlayStats()
        self._next_tick = 0.0
        self._last_clock_ns = -1

    @property
    def output_topics(self) -> list[str]:
        return [self.output[t] for t in self.topics]

    def subscribers_ready(self, topics: list[str] | None = None) -> bool:
        """Whether every played topic (or every one of ``topics``, published names) has a
        subscriber."""
        wanted = None if topics is None else set(topics)
        return all(p.get_subscription_count() > 0 for t, p in self._publishers.items()
                   if wanted is None or self.output[t] in wanted)

    def wait_for_subscribers(self, timeout: float, topics: list[str] | None = None,
                             poll: float = 0.02) -> bool:
        """Wait until every played topic (or each of ``topics``) has a subscriber, at most
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.subscribers_ready(topics):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._sleep(min(poll, remaining))
        return True

    def unsubscribed_topics(self) -> list[str]:
        return [self.output[t] for t, p in self._publishers.items()
                if p.get_subscription_count() == 0]

    def play(self) -> PlayStats:
        """Play once (or until interrupted with ``--loop``); returns :attr:`stats`.

        Damage in the bag ends the replay after the messages before it; the ``BagError``
        is kept in ``stats.error`` for the caller to report. :attr:`stats` stays valid when
        the replay is interrupted (``KeyboardInterrupt`` propagates).
        """
        self.stats = stats = PlayStats()
        started = time.monotonic()
        try:
            while True:
                stats.passes += 1
                self._play_pass(stats)
                if not self.options.loop or stats.error is not None:
                    break
        finally:
            stats.wall_s = time.monotonic() - started
        return stats

    def flush(self, timeout: float) -> list[str]:
        """Wait, at most ``timeout`` seconds in all, until every reliable subscriber has
        acknowledged every message published so far; the topics still unacknowledged.

        Without this, destroying the node right after the last publish can drop the tail of
        the replay on its way to a slow subscriber.
        """
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout
        publishers = dict(self._publishers)
        if self._clock_pub is not None:
            publishers["/clock"] = self._clock_pub
        pending = []
        for topic, publisher in publishers.items():
            remaining = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(Duration(nanoseconds=int(remaining * 1e9))):
                pending.append(self.output.get(topic, topic))
        return pending

    def _play_pass(self, stats: PlayStats) -> None:
        first_ns = last_ns = None
        self._next_tick = 0.0
        self._last_clock_ns = -1  # /clock is monotone within a pass; a loop starts it again
        try:
            for message in self.bag.messages(self.topics, raw=True):
                if first_ns is None:
                    first_ns = message.timestamp_ns
                    self.clock.start(first_ns)
                    self._next_tick = time.monotonic()
                self._wait_until(message.timestamp_ns)
                if self._clock_pub is not None and self.options.clock_rate_hz == 0:
                    self._tick(message.timestamp_ns)
                self._publishers[message.topic].publish(message.msg)
                stats.published[self.output[message.topic]] += 1
                last_ns = message.timestamp_ns
        except BagError as err:
            stats.error = err
        finally:
            if last_ns is not None:
                stats.bag_s += (last_ns - first_ns) * 1e-9
                if self._clock_pub is not None and self.options.clock_rate_hz > 0:
                    self._tick(last_ns)  # the clock ends on the last message's time
            stats.clock_ticks = self.clock_ticks

    def _wait_until(self, due_ns: int) -> None:
        """Sleep until bag time ``due_ns`` is reached, ticking ``/clock`` on the way."""
        due = self.clock.due(due_ns)
        ticking = self._clock_pub is not None and self.options.clock_rate_hz > 0
        period = 1.0 / self.options.clock_rate_hz if ticking else 0.0
        while True:
            now = time.monotonic()
            if ticking and now >= self._next_tick:
                self._tick(min(self.clock.now_ns(), due_ns))
                # keep to the tick grid; after falling behind, start a new one from now
                self._next_tick += period
                if self._next_tick <= now:
                    self._next_tick = now + period
            wake = min(due, self._next_tick) if ticking else due
            if now >= due:
                return
            self._sleep(max(0.0, wake - now))

    def _tick(self, bag_ns: int) -> None:
        bag_ns = max(bag_ns, self._last_clock_ns)
        self._clock_pub.publish(clock_message(bag_ns))
        self._last_clock_ns = bag_ns
        self.clock_ticks += 1
