"""Paths of the real bags and small helpers shared by the bag tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from kestrel_tools.bags import BagError, open_bag
from kestrel_tools.paths import data_dir

BAGS = data_dir() / "bags"
MCAP_BAG = BAGS / "nav2_turtlebot.mcap"
SQLITE_BAG = BAGS / "tf_example"


def writable_copy(source: Path, target: Path) -> Path:
    """A copy of a bag file or directory that the test may damage (the data is read-only)."""
    if source.is_dir():
        shutil.copytree(source, target)
        for file in target.iterdir():
            file.chmod(0o644)
    else:
        shutil.copyfile(source, target)
        target.chmod(0o644)
    return target


def raw_messages(path: Path) -> list[tuple[str, int, bytes]]:
    """(topic, timestamp, CDR bytes) of every message of an intact bag."""
    with open_bag(path) as bag:
        return [(m.topic, m.timestamp_ns, m.msg) for m in bag.messages(raw=True)]


def read_until_damage(path: Path) -> tuple[list[tuple[str, int, bytes]], BagError | None]:
    """The messages a damaged bag yields, and the error that ended the iteration."""
    read = []
    with open_bag(path) as bag:
        try:
            for message in bag.messages(raw=True):
                read.append((message.topic, message.timestamp_ns, message.msg))
        except BagError as err:
            return read, err
    return read, None
