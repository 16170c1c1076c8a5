"""Read and rewrite ``header.stamp`` inside a serialized (CDR) message, without decoding it.

Every message Kestrel's nodes consume or publish starts with a ``std_msgs/Header``, so its
stamp is the first field: after the 4-byte encapsulation header come ``int32 sec`` and
``uint32 nanosec``. Patching those 8 bytes lets a benchmark publish large images at a high rate
without serializing them again, and read an output's stamp without deserializing it.
"""

from __future__ import annotations

import struct

_STAMP_OFFSET = 4
_LITTLE = struct.Struct("<iI")
_BIG = struct.Struct(">iI")
NS_PER_S = 1_000_000_000


def _layout(data: bytes | bytearray | memoryview) -> struct.Struct:
    if len(data) < _STAMP_OFFSET + _LITTLE.size:
        raise ValueError(f"{len(data)} bytes are too few for a CDR message with a header")
    if data[0] != 0 or data[1] not in (0, 1):
        raise ValueError(f"not a plain CDR encapsulation: {bytes(data[:2]).hex()}")
    return _LITTLE if data[1] == 1 else _BIG


def read_stamp_ns(data: bytes | bytearray | memoryview) -> int:
    """``header.stamp`` of a serialized header-first message, in nanoseconds."""
    sec, nanosec = _layout(data).unpack_from(data, _STAMP_OFFSET)
    return sec * NS_PER_S + nanosec


def with_stamp(data: bytes, stamp_ns: int) -> bytes:
    """A copy of the serialized message ``data`` with ``header.stamp`` set to ``stamp_ns``."""
    layout = _layout(data)
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    out = bytearray(data)
    layout.pack_into(out, _STAMP_OFFSET, sec, nanosec)
    return bytes(out)
