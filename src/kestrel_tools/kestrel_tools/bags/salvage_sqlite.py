"""Reading a damaged rosbag2 sqlite3 file, up to the damage.

rosbags opens a .db3 by counting the rows of every topic and the time range of the
``messages`` table, which makes SQLite walk the whole table first: one damaged page, or a
file cut short, fails the open with "database disk image is malformed" and nothing is read.
SQLite itself keeps no checksums, so bytes overwritten inside a message's payload go unnoticed
(the CDR decoder may still catch them).

This reader asks SQLite for the rows in storage order (rowid) instead, so every row on the
pages before the damage comes out, and it lets SQLite read a file shorter than its header
says (``writable_schema``, read-only here). When SQLite gives up, it walks the table's B-tree
itself to find the page holding the next row and reports its byte offset.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat

from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.records import RawMessage

SQLITE_MAGIC = b"SQLite format 3\x00"
TABLE_INTERIOR, TABLE_LEAF = 0x05, 0x0D
ROWS = "SELECT id, topic_id, timestamp, data FROM messages"
DEFINITION_FORMATS = {"ros2msg": MessageDefinitionFormat.MSG,
                      "ros2idl": MessageDefinitionFormat.IDL}


def _varint(data: bytes, pos: int) -> int:
    """SQLite's big-endian base-128 integer of up to 9 bytes."""
    value = 0
    for index in range(min(9, len(data) - pos)):
        byte = data[pos + index]
        if index == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return value


def page_size_of(path: Path) -> int | None:
    """Page size from an SQLite file header, or None if the header is not SQLite's."""
    with path.open("rb") as stream:
        header = stream.read(18)
    if len(header) < 18 or header[:16] != SQLITE_MAGIC:
        return None
    (size,) = struct.unpack_from(">H", header, 16)
    return 65536 if size == 1 else size


def page_of_next_row(path: Path, root: int, after_rowid: int | None) -> tuple[int, str] | None:
    """The table page that holds the first row after ``after_rowid``, and what is wrong with it.

    Descends the table B-tree from ``root`` the way SQLite does for a rowid lookup, checking
    each page on the way. Returns (page number, reason), or None if the header is unreadable.
    """
    page_size = page_size_of(path)
    if page_size is None:
        return None
    file_size = path.stat().st_size
    target = -(2**63) if after_rowid is None else after_rowid + 1
    page = root
    with path.open("rb") as stream:
        for _ in range(64):  # B-trees are far shallower; a cycle means damage
            start = (page - 1) * page_size
            if page < 1 or start + page_size > file_size:
                return page, f"lies beyond the end of the file ({file_size} bytes): it is truncated"
            stream.seek(start)
            data = stream.read(page_size)
            header = 100 if page == 1 else 0
            kind = data[header]
            if kind == TABLE_LEAF:
                return page, "holds the next row"
            if kind != TABLE_INTERIOR:
                return page, f"is not a table B-tree page (type byte 0x{kind:02x})"
            (cells,) = struct.unpack_from(">H", data, header + 3)
            (child,) = struct.unpack_from(">I", data, header + 8)  # right-most child
            if header + 12 + 2 * cells > page_size:
                return page, f"claims {cells} cells, more than fit"
            for index in range(cells):  # the cells of one page, sorted by key
                (cell,) = struct.unpack_from(">H", data, header + 12 + 2 * index)
                if cell + 5 > page_size:
                    return page, f"has cell {index} pointing outside the page"
                if _varint(data, cell + 4) >= target:
                    (child,) = struct.unpack_from(">I", data, cell)
                    break
            page = child
    return None


class SqliteSalvage:
    """Reads a rosbag2 .db3 file row by row in storage order and stops at the first damage.

    Attributes:
        path: the .db3 file.
        topics: topic -> message type.
        definitions: message type -> definition stored in the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as stream:
            if stream.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise BagError(f"{path}: damaged at byte 0: not an SQLite database", path, offset=0)
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        self.connection = sqlite3.connect(uri, uri=True)
        try:
            # Lets SQLite read a file shorter than its header says; nothing is written.
            self.connection.execute("PRAGMA writable_schema=ON")
            tables = dict(self.connection.execute(
                "SELECT name, rootpage FROM sqlite_master WHERE type='table'").fetchall())
            if "messages" not in tables or "topics" not in tables:
                raise BagError(f"{path}: not a rosbag2 database (no messages or topics table)",
                               path)
            self.root = int(tables["messages"])
            self.topic_ids = {row[0]: (row[1], row[2]) for row in self.connection.execute(
                "SELECT id, name, type FROM topics")}
            self.definitions = {}
            if "message_definitions" in tables:
                for msgtype, encoding, text in self.connection.execute(
                        "SELECT topic_type, encoding, encoded_message_definition "
                        "FROM message_definitions"):
                    fmt = DEFINITION_FORMATS.get(encoding, MessageDefinitionFormat.NONE)
                    self.definitions[msgtype] = MessageDefinition(fmt, text)
        except sqlite3.DatabaseError as err:
            self.connection.close()
            raise BagError(f"{path}: cannot read the bag's topics: {err}", path) from err

    @property
    def topics(self) -> dict[str, str]:
        return dict(self.topic_ids.values())

    def close(self) -> None:
        self.connection.close()

    def scan(self) -> Iterator[RawMessage]:
        """Every readable row; raises ``BagError`` where SQLite finds the file damaged."""
        last: tuple[int, int] | None = None
        try:
            for row in self.connection.execute(f"{ROWS} ORDER BY id"):
                last = row[0], row[2]
                yield self._message(row)
            return
        except sqlite3.DatabaseError:
            pass
        # Python's sqlite3 steps one row ahead, so the row before the damage is lost with
        # the error. Take the rows after the last good one singly: LIMIT 1 stops SQLite
        # before it steps onto the next row.
        while True:
            try:
                row = self.connection.execute(f"{ROWS} WHERE id > ? ORDER BY id LIMIT 1",
                                              (-(2**63) if last is None else last[0],)).fetchone()
            except sqlite3.DatabaseError as err:
                raise self._damage(err, last) from err
            if row is None:
                return
            last = row[0], row[2]
            yield self._message(row)

    def _message(self, row: tuple[int, int, int, bytes]) -> RawMessage:
        rowid, topic_id, timestamp, data = row
        if topic_id not in self.topic_ids:
            raise BagError(f"{self.path}: message {rowid} refers to unknown topic id {topic_id}",
                           self.path)
        topic, msgtype = self.topic_ids[topic_id]
        return RawMessage(topic, msgtype, timestamp, bytes(data))

    def _damage(self, err: sqlite3.DatabaseError, last: tuple[int, int] | None) -> BagError:
        after = "before its first message" if last is None else \
            f"after message {last[0]} (t={last[1]} ns)"
        found = page_of_next_row(self.path, self.root, None if last is None else last[0])
        if found is None:
            return BagError(f"{self.path}: damaged {after}: {err}", self.path)
        page, what = found
        offset = (page - 1) * (page_size_of(self.path) or 0)
        return BagError(f"{self.path}: damaged at byte {offset} (page {page}, which {what}), "
                        f"{after}: {err}", self.path, offset=offset)
