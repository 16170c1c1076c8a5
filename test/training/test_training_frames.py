"""Training frames from rosbag2 image topics equal the frames that were recorded."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_tools.paths import data_dir
from kestrel_tools.sample import SampleConfig, build_sample_bag, topics
from kestrel_tools.training.frames import FrameSource, _image_topics, iter_frames


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_image_topics_give_back_the_recorded_video_frames(tmp_path, storage):
    config = SampleConfig.reduced()
    bag = build_sample_bag(tmp_path / "bag", storage, config).path
    video = FrameSource("video", data_dir() / "frames" / "vtest.avi")
    recorded = list(iter_frames(video, max_frames=config.video_frames, max_side=config.video_width))

    from_bag = list(iter_frames(FrameSource("bag", bag, topics.VIDEO_IMAGE)))
    assert len(from_bag) == config.video_frames
    for got, want in zip(from_bag, recorded):
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    # Stride, count and shrinking apply to bags as to videos.
    picked = list(iter_frames(FrameSource("bag", bag, topics.VIDEO_IMAGE), stride=2, max_frames=2,
                              max_side=80))
    assert len(picked) == 2 and max(picked[1].shape[:2]) == 80
    # Every image topic of the bag is found when none is named; a bag has several here.
    assert topics.VIDEO_IMAGE in _image_topics(bag)
    with pytest.raises(ValueError, match="name the image topic"):
        list(iter_frames(FrameSource("bag", bag)))
