"""The demo refuses a bag given with --bag that lacks topics its nodes or scores need."""

from __future__ import annotations

import pytest

from kestrel_tools.bags import BagWriter
from kestrel_tools.commands.demo import _ensure_sample_bag
from kestrel_tools.sample import topics


def test_a_given_bag_without_the_mapping_stream_is_refused_by_name(tmp_path):
    old = tmp_path / "old_sample"
    with BagWriter(old, "mcap") as bag:  # every topic but the mapping stream's
        for topic, msgtype in topics.TOPIC_TYPES.items():
            if not topic.startswith("/mapping/"):
                bag.add_topic(topic, msgtype)
    with pytest.raises(RuntimeError) as error:
        _ensure_sample_bag(old)
    message = str(error.value)
    assert str(old) in message and "\n" not in message
    for topic in (topics.MAPPING_POINTS, topics.MAPPING_ODOM, topics.MAPPING_GT_MAP,
                  topics.MAPPING_GT_POSE):
        assert topic in message
    assert old.exists()  # never deleted: only the default sample is rebuilt
