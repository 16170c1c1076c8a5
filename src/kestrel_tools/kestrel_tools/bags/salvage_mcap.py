"""Sequential reading of a damaged MCAP file, up to the damage.

rosbags opens an MCAP file through its footer and summary section, so it refuses a file cut
short anywhere ("File end magic is invalid.") and yields nothing. This reader walks the data
section from the start instead, record by record, as the MCAP specification lays it out:
an opcode byte, a little-endian uint64 length, then the record. It yields every message it
can decode and raises ``BagError`` with the byte offset of the first record it cannot read.
A chunk cut short is decompressed as far as its bytes go (zstd and lz4 frames decode
incrementally), so the messages in its readable part are recovered too.

Messages come in file order, sorted by time within each chunk.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from zlib import crc32

import lz4.frame
from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat

from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.records import RawMessage

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x02, 0x03, 0x04, 0x05, 0x06
OP_DATA_END = 0x0F
RECORD_HEAD = 9  # opcode + uint64 length
RECORD_NAMES = {0x01: "header", 0x02: "footer", 0x03: "schema", 0x04: "channel", 0x05: "message",
                0x06: "chunk", 0x07: "message index", 0x08: "chunk index", 0x09: "attachment",
                0x0A: "attachment index", 0x0B: "statistics", 0x0C: "metadata",
                0x0D: "metadata index", 0x0E: "summary offset", 0x0F: "data end"}
SCHEMA_FORMATS = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL,
                  "omgidl": MessageDefinitionFormat.IDL}


def _name(opcode: int) -> str:
    return RECORD_NAMES.get(opcode, f"unknown (opcode 0x{opcode:02x})")


class _Short(Exception):
    """A record's content ends before one of its fields."""


class _Fields:
    """Little-endian field reader over one record's content."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise _Short
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def uint(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.uint("<I")).decode("utf-8", errors="replace")

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)


def _inner_records(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, opcode, content) of each whole record in ``data``; stops at a partial one."""
    pos = 0
    while pos + RECORD_HEAD <= len(data):
        opcode = data[pos]
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        end = pos + RECORD_HEAD + length
        if end > len(data):
            return
        yield pos, opcode, data[pos + RECORD_HEAD:end]
        pos = end


def _decompress_prefix(compression: str, data: bytes) -> bytes:
    """As much of a cut-short compressed chunk as decodes; b'' when none does."""
    try:
        if compression == "zstd":
            return zstd.ZstdDecompressor().decompress(data)
        if compression == "lz4":
            return lz4.frame.LZ4FrameDecompressor().decompress(data)
    except (zstd.ZstdError, RuntimeError):
        return b""
    return data if compression == "" else b""


def _decompress(compression: str, data: bytes) -> bytes:
    """A whole chunk's records."""
    if compression == "":
        return data
    if compression == "zstd":
        return zstd.decompress(data)
    if compression == "lz4":
        return lz4.frame.decompress(data)
    raise ValueError(f"unknown chunk compression {compression!r}")


class McapSalvage:
    """Reads an MCAP file front to back and stops at the first damage.

    Attributes:
        path: the .mcap file.
        topics: topic -> message type, for the channels seen so far.
        definitions: message type -> definition from the schemas seen so far.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.schemas: dict[int, tuple[str, MessageDefinition]] = {}
        self.channels: dict[int, tuple[str, str]] = {}
        with path.open("rb") as stream:
            if stream.read(len(MAGIC)) != MAGIC:
                raise self._damage(0, "not an MCAP file (no MCAP magic at its start)")

    @property
    def topics(self) -> dict[str, str]:
        return dict(self.channels.values())

    @property
    def definitions(self) -> dict[str, MessageDefinition]:
        return dict(self.schemas.values())

    def _damage(self, offset: int, reason: str) -> BagError:
        return BagError(f"{self.path}: damaged at byte {offset}: {reason}", self.path,
                        offset=offset)

    def scan(self) -> Iterator[RawMessage]:
        """Every readable message; raises ``BagError`` where the file stops making sense."""
        with self.path.open("rb") as stream:
            pos = len(MAGIC)
            while True:
                stream.seek(pos)
                head = stream.read(RECORD_HEAD)
                if len(head) < RECORD_HEAD:
                    raise self._damage(pos, "the file ends before its footer: it is truncated")
                opcode = head[0]
                if opcode == 0x00:  # reserved: zero-filled or overwritten bytes
                    raise self._damage(pos, "opcode 0x00 is reserved: no MCAP record starts here")
                (length,) = struct.unpack_from("<Q", head, 1)
                present = self.size - pos - RECORD_HEAD
                if length > present:
                    recovered = 0
                    if opcode == OP_CHUNK:
                        recovered = yield from self._partial_chunk(stream.read(present), pos)
                    raise self._damage(
                        pos, f"{_name(opcode)} record declares {length} bytes but only {present} "
                             f"remain: the file is truncated ({recovered} messages recovered from "
                             "this record)")
                if opcode in (OP_DATA_END, OP_FOOTER):
                    return
                content = stream.read(length)
                if opcode == OP_CHUNK:
                    yield from self._chunk(content, pos)
                elif (message := self._record(opcode, content, pos)) is not None:
                    yield message
                pos += RECORD_HEAD + length

    def _record(self, opcode: int, content: bytes, offset: int) -> RawMessage | None:
        """Registers a schema or channel, or decodes a message; other records are skipped."""
        fields = _Fields(content)
        try:
            if opcode == OP_SCHEMA:
                key = fields.uint("<H")
                name, encoding = fields.string(), fields.string()
                text = fields.take(fields.uint("<I")).decode("utf-8", errors="replace")
                fmt = SCHEMA_FORMATS.get(encoding, MessageDefinitionFormat.NONE)
                self.schemas[key] = (name, MessageDefinition(fmt, text))
            elif opcode == OP_CHANNEL:
                key, schema = fields.uint("<H"), fields.uint("<H")
                topic = fields.string()
                if schema not in self.schemas:
                    raise self._damage(offset, f"channel {topic} refers to unknown schema {schema}")
                self.channels[key] = (topic, self.schemas[schema][0])
            elif opcode == OP_MESSAGE:
                channel = fields.uint("<H")
                fields.take(4)  # sequence
                log_time = fields.uint("<Q")
                fields.take(8)  # publish time
                if channel not in self.channels:
                    raise self._damage(offset, f"message refers to unknown channel {channel}")
                topic, msgtype = self.channels[channel]
                return RawMessage(topic, msgtype, log_time, fields.rest())
        except _Short:
            reason = f"{_name(opcode)} record is shorter than its fields"
            raise self._damage(offset, reason) from None
        return None

    def _messages_of(self, records: bytes, offset: int) -> list[RawMessage]:
        """Messages of a chunk's decompressed records, by time; schemas/channels registered."""
        messages = [message for _, opcode, content in _inner_records(records)
                    if (message := self._record(opcode, content, offset)) is not None]
        return sorted(messages, key=lambda message: message.timestamp_ns)

    def _chunk_header(self, content: bytes) -> tuple[int, int, str, bytes]:
        """(uncompressed size, crc, compression, compressed bytes present)."""
        fields = _Fields(content)
        fields.take(16)  # message start and end time
        size, crc = fields.uint("<Q"), fields.uint("<I")
        compression = fields.string()
        declared = fields.uint("<Q")
        return size, crc, compression, fields.data[fields.pos:fields.pos + declared]

    def _chunk(self, content: bytes, offset: int) -> Iterator[RawMessage]:
        try:
            size, crc, compression, compressed = self._chunk_header(content)
        except _Short:
            raise self._damage(offset, "chunk header is shorter than its fields") from None
        try:
            records = _decompress(compression, compressed)
        except (zstd.ZstdError, RuntimeError, ValueError) as err:
            reason = f"chunk cannot be decompressed ({compression}): {err}"
            raise self._damage(offset, reason) from None
        if len(records) != size:
            raise self._damage(offset, f"chunk holds {len(records)} bytes, its header says {size}")
        if crc and crc32(records) != crc:
            raise self._damage(offset, "chunk fails its CRC check")
        covered = sum(RECORD_HEAD + len(content) for _, _, content in _inner_records(records))
        if covered != size:
            raise self._damage(offset, f"chunk record at chunk offset {covered} overruns the chunk")
        yield from self._messages_of(records, offset)

    def _partial_chunk(self, content: bytes, offset: int) -> Iterator[RawMessage]:
        """Messages of a cut-short chunk's readable part; returns how many."""
        try:
            _, _, compression, compressed = self._chunk_header(content)
        except _Short:
            return 0
        messages = self._messages_of(_decompress_prefix(compression, compressed), offset)
        yield from messages
        return len(messages)
