"""``BagWriter``: write a rosbag2 bag (sqlite3 or MCAP) from rosbags message dataclasses."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import TypesysError, get_types_from_msg

from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.typestore import BagTypes, build_types

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
ROSBAG2_VERSION = 9


class BagWriter:
    """Writes a new bag directory with metadata.yaml; every type's definition is embedded.

    Use as a context manager: the bag is complete (index, metadata.yaml) only after the
    ``with`` block ends without an exception; after an exception it is left unfinished.

    Example::

        with BagWriter(out, storage="mcap") as bag:
            bag.add_topic("/image", "sensor_msgs/msg/Image")
            bag.write("/image", stamp_ns, image)  # a rosbags dataclass, or CDR bytes

    Attributes:
        path: the bag directory, which must not exist yet.
        types: the type store used to serialize (ROS 2 Kilted plus ``add_topic`` definitions).
    """

    def __init__(self, path: Path | str, storage: str = "sqlite3") -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; a bag is never overwritten", self.path)
        self.types: BagTypes = build_types()
        self._writer = Writer(self.path, version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage])
        self._connections: dict[str, Connection] = {}
        self._open = False

    def __enter__(self) -> BagWriter:
        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"{self.path}: cannot create the bag: {err}", self.path) from err
        self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._open = False
        try:
            self._writer.__exit__(exc_type, exc, traceback)
        except (WriterError, OSError) as err:
            raise BagError(f"{self.path}: cannot finish the bag: {err}", self.path) from err

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None) -> None:
        """Declare a topic before writing to it.

        Args:
            topic: topic name.
            msgtype: ROS 2 type name, e.g. ``sensor_msgs/msg/Image``.
            msgdef: ``.msg`` text for a type that is not in ROS 2 Kilted.
        """
        self._check_open()
        if topic in self._connections:
            raise BagError(f"{self.path}: topic {topic} was added already", self.path, topic=topic)
        if msgdef is not None:
            try:
                self.types.store.register(get_types_from_msg(msgdef, msgtype))
            except TypesysError as err:
                raise BagError(f"{self.path}: topic {topic}: bad definition of {msgtype}: {err}",
                               self.path, topic=topic) from err
        if not self.types.knows(msgtype):
            raise BagError(f"{self.path}: topic {topic}: {self.types.unknown_reason(msgtype)}; "
                           "pass its .msg text as msgdef", self.path, topic=topic)
        self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                               typestore=self.types.store)

    def write(self, topic: str, timestamp_ns: int, msg: object) -> None:
        """Append one message.

        Args:
            topic: a topic declared with ``add_topic``.
            timestamp_ns: receive time, nanoseconds since the epoch (>= 0).
            msg: a rosbags dataclass of the topic's type, or its CDR bytes.
        """
        self._check_open()
        connection = self._connections.get(topic)
        if connection is None:
            raise BagError(f"{self.path}: topic {topic} was not added", self.path, topic=topic)
        if int(timestamp_ns) != timestamp_ns or timestamp_ns < 0:
            raise ValueError(f"timestamp_ns must be a non-negative integer, got {timestamp_ns!r}")
        if isinstance(msg, (bytes, bytearray, memoryview)):
            data = bytes(msg)
        else:
            given = getattr(msg, "__msgtype__", type(msg).__name__)
            if given != connection.msgtype:
                raise BagError(f"{self.path}: topic {topic} takes {connection.msgtype}, "
                               f"got {given}", self.path, topic=topic)
            try:
                data = bytes(self.types.store.serialize_cdr(msg, connection.msgtype))
            except (SerdeError, TypeError, ValueError, AttributeError) as err:
                raise BagError(f"{self.path}: topic {topic}: cannot serialize the message: {err}",
                               self.path, topic=topic) from err
        self._writer.write(connection, int(timestamp_ns), data)

    def _check_open(self) -> None:
        if not self._open:
            raise BagError(f"{self.path}: the writer is not open; use it in a with block",
                           self.path)
