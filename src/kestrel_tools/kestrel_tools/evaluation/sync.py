"""Messages of several topics of a bag grouped by equal header stamps (exact-time sync).

A recording from one rig stamps every message of a capture with the capture time, as the
sample bag and image_pipeline do; exact matching is then right, and nothing is paired by
receive time. Groups are yielded as soon as they are complete, so memory stays bounded by
the groups still open (at most ``max_open``; the oldest is dropped beyond that).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from kestrel_ros.compat.approximate_time import stamp_ns
from kestrel_tools.bags import BagReader


@dataclass
class SyncStats:
    """Complete groups yielded and incomplete groups dropped (open at the end, or evicted)."""

    complete: int = 0
    dropped: int = 0
    dropped_stamps: list[int] = field(default_factory=list)


def synchronized(bag: BagReader, topics: Sequence[str], stats: SyncStats | None = None,
                 max_open: int = 64) -> Iterator[tuple[int, dict[str, object]]]:
    """``(stamp_ns, {topic: message})`` for every stamp present on all ``topics``.

    Args:
        bag: an open bag; every topic must carry messages with a ``header``.
        topics: the topics to group (distinct).
        stats: filled in while iterating, if given.
        max_open: incomplete groups kept at most.

    Raises:
        BagError: a topic not in the bag, or damage met while reading (after the groups
            completed before it).
    """
    stats = stats if stats is not None else SyncStats()
    wanted = len(set(topics))
    open_groups: dict[int, dict[str, object]] = {}
    for message in bag.messages(topics):
        stamp = stamp_ns(message.msg)
        group = open_groups.setdefault(stamp, {})
        group[message.topic] = message.msg
        if len(group) == wanted:
            del open_groups[stamp]
            stats.complete += 1
            yield stamp, group
        elif len(open_groups) > max_open:
            oldest = min(open_groups)
            del open_groups[oldest]
            stats.dropped += 1
            stats.dropped_stamps.append(oldest)
    stats.dropped += len(open_groups)
    stats.dropped_stamps += sorted(open_groups)
