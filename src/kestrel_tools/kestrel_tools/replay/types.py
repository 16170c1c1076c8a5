"""ROS message classes from type names such as ``sensor_msgs/msg/Image``."""

from __future__ import annotations

import importlib
from functools import lru_cache


@lru_cache(maxsize=None)
def message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Type`` (also accepts ``pkg/Type``).

    Raises:
        ValueError: a malformed name, or a type whose Python package is not installed.
    """
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts) or parts[1] != "msg":
        raise ValueError(f"not a message type name: {msgtype!r}")
    package, _, name = parts
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError as err:
        raise ValueError(f"message type {msgtype} cannot be imported: {err}") from err
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"message type {msgtype}: {package}.msg has no {name}")
    return cls
