"""Where a ``BagReader`` gets its raw messages: rosbags for sound bags, salvage for damaged ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml
from rosbags.interfaces import MessageDefinition
from rosbags.rosbag2 import Reader

from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.records import RawMessage
from kestrel_tools.bags.salvage_mcap import McapSalvage
from kestrel_tools.bags.salvage_sqlite import SqliteSalvage

SALVAGE_STORAGES = ("mcap", "sqlite3")


class StorageFailure(Exception):
    """rosbags failed while reading a bag it had opened; ``cause`` says how."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(" ".join(str(cause).split()) or type(cause).__name__)
        self.cause = cause


class RosbagsBackend:
    """A bag that rosbags opened: its index and metadata are trusted.

    Messages come in timestamp order across all files and chunks.
    """

    damaged = False

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        topics = reader.topics
        mixed = [name for name, info in topics.items() if info.msgtype is None]
        if mixed:
            raise BagError(f"{reader.path}: topic {mixed[0]} carries several message types",
                           reader.path, topic=mixed[0])
        self.topics: dict[str, str] = {name: info.msgtype for name, info in topics.items()}
        self.counts = {name: info.msgcount for name, info in topics.items()}
        empty = reader.message_count == 0
        self.start_ns = 0 if empty else reader.start_time
        self.end_ns = 0 if empty else reader.end_time - 1  # rosbags' end is exclusive
        self.definitions = [(c.msgtype, c.msgdef) for c in reader.connections]

    def raw(self, topics: set[str]) -> Iterator[RawMessage]:
        connections = [c for c in self.reader.connections if c.topic in topics]
        if not connections:
            return
        # rosbags parses untrusted bytes and fails with assorted errors (its ReaderError,
        # apsw.CorruptError, zstd and lz4 errors, struct.error): all mean the storage is damaged.
        stream = self.reader.messages(connections)
        while True:
            try:
                connection, timestamp, data = next(stream)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 - see above; BagReader raises BagError
                raise StorageFailure(err) from err
            yield RawMessage(connection.topic, connection.msgtype, timestamp, bytes(data))

    def close(self) -> None:
        self.reader.close()


def storage_files(path: Path) -> tuple[list[Path], dict[str, str]]:
    """The storage files of a bag and the topics its metadata.yaml lists.

    Raises:
        BagError: no metadata.yaml, an unreadable one, a compressed bag, an unknown storage,
            or a storage file that does not exist.
    """
    if path.is_file():
        return [path], {}
    metadata = path / "metadata.yaml"
    if not metadata.is_file():
        raise BagError(f"{path}: not a rosbag2 bag: there is no {metadata.name}", path)
    try:
        info = yaml.safe_load(metadata.read_text())["rosbag2_bagfile_information"]
        files = [path / Path(name).name for name in info["relative_file_paths"]]
        storage = info.get("storage_identifier", "")
        compression = info.get("compression_mode", "") or ""
        listed = {entry["topic_metadata"]["name"]: entry["topic_metadata"]["type"]
                  for entry in info.get("topics_with_message_count") or []}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise BagError(f"{metadata}: unreadable bag metadata: {err!r}", metadata) from err
    missing = [str(file) for file in files if not file.exists()]
    if missing:
        raise BagError(f"{metadata}: lists storage files that do not exist: {', '.join(missing)}",
                       metadata)
    if compression.lower() not in ("", "none"):
        raise BagError(f"{path}: {compression}-compressed bags cannot be read past damage", path)
    if storage not in SALVAGE_STORAGES:
        raise BagError(f"{path}: unknown storage {storage!r}", path)
    return files, listed


def salvage_source(file: Path) -> McapSalvage | SqliteSalvage:
    """The salvage reader for one storage file, chosen by its first bytes."""
    with file.open("rb") as stream:
        start = stream.read(16)
    if start.startswith(b"\x89MCAP") or file.suffix == ".mcap":
        return McapSalvage(file)  # which raises BagError when the magic is missing
    return SqliteSalvage(file)


class SalvageBackend:
    """A bag that rosbags refused: its files are read front to back up to the first damage.

    Opening scans the readable part once to learn topics, counts and the time range; those
    describe what can be read, not what was recorded. Messages come in storage order (time
    order within an MCAP chunk), and the iteration raises ``BagError`` where the damage is.
    """

    damaged = True

    def __init__(self, path: Path) -> None:
        files, listed = storage_files(path)
        self.sources = [salvage_source(file) for file in files]
        self.counts: dict[str, int] = {}
        self.start_ns = self.end_ns = 0
        self.damage: BagError | None = None
        first = last = None
        try:
            for message in self.scan():
                self.counts[message.topic] = self.counts.get(message.topic, 0) + 1
                first = message.timestamp_ns if first is None else min(first, message.timestamp_ns)
                last = message.timestamp_ns if last is None else max(last, message.timestamp_ns)
        except BagError as err:
            self.damage = err
        if first is not None:
            self.start_ns, self.end_ns = first, last
        self.topics = dict(listed)
        self.definitions: list[tuple[str, MessageDefinition]] = []
        for source in self.sources:
            self.topics.update(source.topics)
            self.definitions.extend(source.definitions.items())
        for topic in self.topics:
            self.counts.setdefault(topic, 0)

    def scan(self) -> Iterator[RawMessage]:
        for source in self.sources:
            yield from source.scan()

    def raw(self, topics: set[str]) -> Iterator[RawMessage]:
        return (message for message in self.scan() if message.topic in topics)

    def close(self) -> None:
        for source in self.sources:
            if isinstance(source, SqliteSalvage):
                source.close()
