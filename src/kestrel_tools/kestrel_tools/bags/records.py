"""Plain records shared by the bag readers."""

from __future__ import annotations

from typing import NamedTuple


class RawMessage(NamedTuple):
    """One serialized message as stored.

    Attributes:
        topic: topic name.
        msgtype: ROS 2 type name, e.g. ``sensor_msgs/msg/Image``.
        timestamp_ns: receive time in nanoseconds since the epoch.
        data: CDR bytes.
    """

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes
