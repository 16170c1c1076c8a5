"""``BagRecorder``: subscribe to topics as serialized bytes and write them to a new bag.

A topic is subscribed once a publisher of it is seen in the graph (its type comes from the
graph), with a QoS compatible with those publishers. Subscription callbacks run on whichever
executor spins ``node`` and only queue the bytes; one writer thread owns the bag (SQLite
objects must stay in the thread that made them), so disk I/O never stalls the callbacks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from kestrel_tools.bags import BagError, BagWriter
from kestrel_tools.replay.player import absolute
from kestrel_tools.replay.types import message_class

_DONE = object()


class _WriterThread:
    """Runs a ``BagWriter`` in its own thread, fed by a queue of ``(method, args)``."""

    def __init__(self, path: Path, storage: str) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._opened = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path, storage),
                                        name="kestrel-bag-writer", daemon=True)
        self._thread.start()
        self._opened.wait()
        if self.error is not None:
            raise self.error

    def _run(self, path: Path, storage: str) -> None:
        try:
            writer = BagWriter(path, storage)
            writer.__enter__()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.error = err
            self._opened.set()
            return
        self._opened.set()
        failed = False
        while (item := self._queue.get()) is not _DONE:
            if failed:
                continue
            method, args = item
            try:
                getattr(writer, method)(*args)
            except (BagError, ValueError) as err:
                self.error, failed = err, True
        try:
            writer.__exit__(None, None, None)
        except BagError as err:
            self.error = self.error or err

    def put(self, method: str, *args: object) -> None:
        self._queue.put((method, args))

    def finish(self) -> None:
        self._queue.put(_DONE)
        self._thread.join()
        if self.error is not None:
            raise self.error


class BagRecorder:
    """Records ``topics`` to a new bag at ``path``; a context manager (finishes the bag).

    Args:
        node: the node that owns the subscriptions; spin it (e.g. in another thread).
        path: the new bag directory (must not exist).
        topics: topic names to record.
        storage: ``sqlite3`` or ``mcap``.
        stamp: the time (ns) written for a received message (receive wall time by default).
        qos_depth: subscription history depth.
        discovery_period: seconds between looks at the graph for topics not yet subscribed.
    """

    def __init__(self, node: Node, path: Path | str, topics: list[str], storage: str = "sqlite3",
                 stamp: Callable[[], int] = time.time_ns, qos_depth: int = 100,
                 discovery_period: float = 0.05) -> None:
        if not topics:
            raise ValueError("--record needs at least one topic in --record-topics")
        self.node = node
        self.path = Path(path)
        self.topics = list(dict.fromkeys(absolute(t) for t in topics))
        self.counts: Counter[str] = Counter()
        self.types: dict[str, str] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it cannot be recorded
        self._stamp = stamp
        self._qos_depth = qos_depth
        self._changed = threading.Condition()
        self._last_message = time.monotonic()
        self._closed = False
        self._writer = _WriterThread(self.path, storage)
        self._subscriptions: list = []
        self._timer = node.create_timer(discovery_period, self.discover)
        self.discover()

    @property
    def pending(self) -> list[str]:
        """Topics not subscribed yet (no publisher seen)."""
        return [t for t in self.topics if t not in self.types and t not in self.skipped]

    def discover(self) -> None:
        """Subscribe to every pending topic that now has a publisher."""
        if self._closed or not self.pending:
            return
        graph = dict(self.node.get_topic_names_and_types())
        found = False
        for topic in self.pending:
            names = graph.get(topic)
            if not names:
                continue
            msgtype = names[0]
            try:
                cls = message_class(msgtype)
            except ValueError as err:  # reported in the summary; the other topics go on
                self.skipped[topic] = str(err)
                found = True
                continue
            self._writer.put("add_topic", topic, msgtype)
            self.types[topic] = msgtype
            self._subscriptions.append(self.node.create_subscription(
                cls, topic, partial(self._received, topic), self._qos_for(topic), raw=True))
            found = True
        if found:
            with self._changed:
                self._changed.notify_all()

    def _qos_for(self, topic: str) -> QoSProfile:
        """Reliable and volatile, unless the publishers are all latched or any is best effort.

        The history keeps all samples: a burst faster than Python takes them (a bag replayed
        at a high rate) waits in the reader instead of being dropped.
        """
        infos = self.node.get_publishers_info_by_topic(topic)
        latched = bool(infos) and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
        return QoSProfile(
            history=HistoryPolicy.KEEP_ALL, depth=self._qos_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _received(self, topic: str, data: bytes) -> None:
        with self._changed:
            if self._closed:
                return
            self._writer.put("write", topic, self._stamp(), data)
            self.counts[topic] += 1
            self._last_message = time.monotonic()
            self._changed.notify_all()

    def wait_discovered(self, timeout: float) -> bool:
        """Wait until every topic is subscribed (or skipped), at most ``timeout`` seconds."""
        end = time.monotonic() + timeout
        with self._changed:
            while self.pending:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_for_counts(self, expected: Mapping[str, int], timeout: float) -> list[str]:
        """Wait, at most ``timeout`` seconds, until each topic of ``expected`` has at least
        its count of recorded messages; the topics still short.

        After a replay, its own played topics are known to have reached this process (their
        publishers were acknowledged), but the callbacks that write them may still be queued
        behind a busy executor; an idle wait alone could then close the bag before them.
        """
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                short = [t for t, n in expected.items() if self.counts[t] < n]
                remaining = end - time.monotonic()
                if not short or remaining <= 0:
                    return short
                self._changed.wait(remaining)

    def wait_idle(self, idle: float, limit: float | None = None) -> None:
        """Return once ``idle`` seconds pass with no new message, counted from now or from
        the latest message if later; or once ``limit`` seconds pass."""
        start = time.monotonic()
        end = None if limit is None else start + limit
        with self._changed:
            while True:
                now = time.monotonic()
                quiet_until = max(self._last_message, start) + idle
                stop = quiet_until if end is None else min(quiet_until, end)
                if now >= stop:
                    return
                self._changed.wait(stop - now)

    def close(self) -> None:
        """Stop recording and finish the bag (stop spinning ``node`` first).

        Raises:
            BagError: the bag could not be written.
        """
        with self._changed:
            if self._closed:
                return
            self._closed = True
        self._timer.cancel()
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self.node.destroy_timer(self._timer)
        self._writer.finish()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
