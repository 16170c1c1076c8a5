"""``open_bag``: read a rosbag2 bag (sqlite3 or MCAP) into deserialized messages.

Damage policy. A bag that rosbags cannot open (a truncated MCAP file has no footer; a damaged
.db3 fails SQLite's first full-table query) is opened in salvage mode instead: ``damaged`` is
True, ``damage`` holds the ``BagError`` found by a first scan, and ``messages()`` yields every
message before the damage and then raises that ``BagError``, which names the storage file and
the byte offset. A bag that opens but fails while being read (a chunk that does not
decompress, a damaged overflow page) raises ``BagError`` at that point too, after the messages
before it. Nothing is skipped silently: a caller that wants the readable part catches the
error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.rosbag2 import Reader
from rosbags.serde import SerdeError

from kestrel_tools.bags.backends import RosbagsBackend, SalvageBackend, StorageFailure
from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.records import RawMessage
from kestrel_tools.bags.typestore import BagTypes, build_types


@dataclass(frozen=True, slots=True)
class BagMessage:
    """One message of a bag.

    Attributes:
        topic: topic name.
        msgtype: ROS 2 type name, e.g. ``nav_msgs/msg/Odometry``.
        timestamp_ns: receive time, nanoseconds since the epoch.
        msg: the rosbags dataclass (e.g. ``msg.header.stamp.sec``), or the CDR ``bytes`` when
            read with ``raw=True``.
    """

    topic: str
    msgtype: str
    timestamp_ns: int
    msg: Any


class BagReader:
    """An open bag. Use ``open_bag``; close it, or use it as a context manager.

    Attributes:
        path: the bag directory or file.
        types: the type store used to deserialize (Kilted plus the bag's own definitions).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"no such bag: {self.path}", self.path)
        self._backend: RosbagsBackend | SalvageBackend = self._open_backend()
        self.types: BagTypes = build_types(self._backend.definitions)
        self.damage: BagError | None = getattr(self._backend, "damage", None)

    def _open_backend(self) -> RosbagsBackend | SalvageBackend:
        try:
            reader = Reader(self.path)
            reader.open()
        # rosbags fails on damaged bytes with assorted errors: ReaderError, TypeError from
        # ord() on a short read, struct.error, OSError on a seek before the start.
        except Exception as err:  # noqa: BLE001 - wrapped below with the salvage attempt
            refused = " ".join(str(err).split()) or type(err).__name__
            try:
                return SalvageBackend(self.path)
            except BagError as salvage_err:
                raise BagError(f"{salvage_err} (rosbags: {refused})", salvage_err.path,
                               offset=salvage_err.offset) from err
        try:
            return RosbagsBackend(reader)
        except BagError:
            reader.close()
            raise

    @property
    def damaged(self) -> bool:
        """True when the bag is read in salvage mode, or a read already hit damage."""
        return self._backend.damaged or self.damage is not None

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type."""
        return dict(self._backend.topics)

    @property
    def start_ns(self) -> int:
        """Timestamp of the earliest message (0 for an empty bag)."""
        return self._backend.start_ns

    @property
    def end_ns(self) -> int:
        """Timestamp of the latest message, inclusive (0 for an empty bag)."""
        return self._backend.end_ns

    def message_count(self, topic: str) -> int:
        """Messages on ``topic``: as recorded, or as readable in salvage mode."""
        self._check_topics([topic])
        return self._backend.counts.get(topic, 0)

    def messages(self, topics: Iterable[str] | str | None = None, *,
                 raw: bool = False) -> Iterator[BagMessage]:
        """Messages of the chosen topics (all by default).

        Topics and types are checked here, before the first message: a topic not in the bag,
        or (unless ``raw``) one whose type cannot be deserialized, raises ``BagError``.
        Damage met during the iteration raises ``BagError`` after the messages before it.

        Args:
            topics: topic names, one name, or None for every topic.
            raw: yield the CDR bytes instead of deserialized messages.
        """
        wanted = list(self.topics) if topics is None else \
            [topics] if isinstance(topics, str) else list(topics)
        self._check_topics(wanted)
        if not raw:
            for topic in wanted:
                if not self.types.knows(self.topics[topic]):
                    raise BagError(f"{self.path}: topic {topic}: "
                                   f"{self.types.unknown_reason(self.topics[topic])}; read it "
                                   "with raw=True", self.path, topic=topic)
        return self._iterate(set(wanted), raw)

    def _check_topics(self, topics: list[str]) -> None:
        for topic in topics:
            if topic not in self._backend.topics:
                known = ", ".join(sorted(self._backend.topics)) or "none"
                raise BagError(f"{self.path}: topic {topic} is not in the bag (topics: {known})",
                               self.path, topic=topic)

    def _iterate(self, topics: set[str], raw: bool) -> Iterator[BagMessage]:
        count, last = 0, None
        try:
            for message in self._backend.raw(topics):
                yield BagMessage(message.topic, message.msgtype, message.timestamp_ns,
                                 message.data if raw else self._decode(message))
                count, last = count + 1, message.timestamp_ns
        except BagError as err:
            self.damage = self._stopped(err, count, last, err.path, err.offset, err.topic)
            raise self.damage from err
        except StorageFailure as err:
            located = self._locate_damage()
            reason = f"{self.path}: rosbags failed ({err})" + (f"; {located}" if located else "")
            self.damage = self._stopped(reason, count, last, self.path,
                                        located.offset if located else None)
            raise self.damage from err.cause

    def _stopped(self, reason: object, count: int, last: int | None, path: Path,
                 offset: int | None, topic: str | None = None) -> BagError:
        where = "" if last is None else f", the last at t={last} ns"
        return BagError(f"{reason} [read {count} messages before the damage{where}]", path,
                        offset=offset, topic=topic)

    def _locate_damage(self) -> BagError | None:
        """The first damage a front-to-back scan finds, to point at the bytes."""
        try:
            backend = SalvageBackend(self.path)
        except BagError as err:
            return err
        backend.close()
        return backend.damage

    def _decode(self, message: RawMessage) -> object:
        try:
            return self.types.store.deserialize_cdr(message.data, message.msgtype)
        except SerdeError as err:
            raise BagError(f"{self.path}: topic {message.topic}: message at "
                           f"t={message.timestamp_ns} ns is not a valid {message.msgtype}: {err}",
                           self.path, topic=message.topic) from err

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def open_bag(path: Path | str) -> BagReader:
    """Open a rosbag2 bag: a directory with metadata.yaml (sqlite3 or MCAP), a bare .mcap or .db3.

    Raises:
        BagError: a missing path, a bag that cannot be opened at all, or unreadable metadata.
    """
    return BagReader(path)
