"""rosbag2 input and output (sqlite3 and MCAP) on top of rosbags, without a ROS install.

- ``open_bag(path) -> BagReader``: topics, counts, time range and deserialized messages.
- ``BagWriter(path, storage)``: a new bag from rosbags dataclasses or CDR bytes.
- ``BagError``: every failure; its message names the file, and the topic or byte offset.

A damaged bag is read up to the damage, then ``BagError`` says where it stopped (see
``kestrel_tools.bags.reader``).
"""

from kestrel_tools.bags.errors import BagError
from kestrel_tools.bags.reader import BagMessage, BagReader, open_bag
from kestrel_tools.bags.writer import BagWriter

__all__ = ["BagError", "BagMessage", "BagReader", "BagWriter", "open_bag"]
