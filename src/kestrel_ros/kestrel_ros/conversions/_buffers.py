"""Private helpers shared by the conversion modules: byte buffers and headers.

Message ``uint8[]`` fields (``Image.data``, ``PointCloud2.data``) are ``array.array('B')``
in rclpy. The generated setter copies an ``array.array('B')`` with one ``memcpy`` whether
or not ``ROS_PYTHON_CHECK_FIELDS`` is set, whereas assigning ``bytes`` makes the checking
setter test every element in Python (about 0.4 s for a 720p RGB image). So every writer
here builds an ``array.array('B')`` straight from the array's bytes and assigns that.
"""

from __future__ import annotations

import array
import sys

import numpy as np
from std_msgs.msg import Header

HOST_IS_BIGENDIAN: bool = sys.byteorder == "big"


def bytes_to_uint8_field(arr: np.ndarray) -> array.array:
    """Copy the bytes of ``arr`` (any shape, C order) into a new ``array.array('B')``.

    Equivalent to ``array.array('B', arr.tobytes())`` with one copy fewer: the buffer of a
    C-contiguous array is handed to ``array.frombytes`` directly.
    """
    contiguous = np.ascontiguousarray(arr)
    out = array.array("B")
    out.frombytes(contiguous.reshape(-1).view(np.uint8))
    return out


def uint8_view(data: object) -> np.ndarray:
    """A read-only ``(N,) uint8`` view of a message's ``data`` field, without copying.

    Works on ``array.array('B')`` (rclpy), ``bytes``/``bytearray``/``memoryview`` and
    ``uint8`` numpy arrays (e.g. messages deserialized by ``rosbags``). Anything else, such
    as a plain list, is converted (one copy).
    """
    try:
        view = np.frombuffer(data, dtype=np.uint8)  # type: ignore[call-overload]
    except TypeError:
        view = np.asarray(data, dtype=np.uint8).reshape(-1)
    return view


def make_header(header: Header | None, frame_id: str | None) -> Header:
    """Return ``header`` (shared, not copied) or, when ``frame_id`` is given, a new header
    with the stamp of ``header`` and that frame. ``header=None`` means a zero stamp."""
    if frame_id is None:
        return header if header is not None else Header()
    out = Header(frame_id=str(frame_id))
    if header is not None:
        out.stamp.sec = header.stamp.sec
        out.stamp.nanosec = header.stamp.nanosec
    return out
