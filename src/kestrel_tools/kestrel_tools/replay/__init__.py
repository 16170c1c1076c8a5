"""Replay a rosbag2 bag into the ROS graph and record topics to a new bag.

- ``BagPlayer`` publishes a bag's CDR bytes paced by their timestamps (``--rate``), with
  ``/clock``, remaps and loops (``player``).
- ``BagRecorder`` subscribes to topics as bytes and writes them with ``BagWriter``
  (``recorder``).
- ``PlaybackClock`` maps bag time to monotonic time (``clock``).
"""

from kestrel_tools.replay.clock import PlaybackClock
from kestrel_tools.replay.player import BagPlayer, PlayOptions, PlayStats, parse_remaps
from kestrel_tools.replay.recorder import BagRecorder
from kestrel_tools.replay.types import message_class

__all__ = ["BagPlayer", "BagRecorder", "PlayOptions", "PlayStats", "PlaybackClock",
           "message_class", "parse_remaps"]
