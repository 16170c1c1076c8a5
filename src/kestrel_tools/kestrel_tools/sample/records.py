"""``SampleMessage``: one message of the sample bag before it is written."""

from __future__ import annotations

from typing import NamedTuple


class SampleMessage(NamedTuple):
    """A rosbags dataclass on ``topic`` received (and stamped) at ``stamp_ns``."""

    topic: str
    stamp_ns: int
    msg: object
