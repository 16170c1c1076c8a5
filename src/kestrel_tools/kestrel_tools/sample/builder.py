"""``build_sample_bag``: write the sample recording from the real data in ``../shared/data``."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kestrel_tools.bags import BagWriter
from kestrel_tools.datasets import load_middlebury_motorcycle, load_oakd_pairs
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import topics
from kestrel_tools.sample.config import T0_NS, SampleConfig
from kestrel_tools.sample.lidar import LIDAR_FROM_CAMERA, lidar_message
from kestrel_tools.sample.mapping import mapping_messages, mapping_stream, scan_mount
from kestrel_tools.sample.motion import motion_messages, static_transforms
from kestrel_tools.sample.records import SampleMessage
from kestrel_tools.sample.stereo import (MOTORCYCLE_FRAMES, OAKD_FRAMES, baseline_of,
                                         downscale_pair, pair_messages, with_frames)
from kestrel_tools.sample.video import video_messages
from kestrel_tools.trajectory import load_tum

FIRST_PAIR_S = 0.5
TAIL_S = 0.2  # poses continue this long after the last camera message
VIDEO_FILE = Path("frames") / "vtest.avi"
TRAJECTORY_FILE = Path("trajectories") / "freiburg1_xyz-groundtruth.txt"


@dataclass(frozen=True)
class SampleSummary:
    """What ``build_sample_bag`` wrote: the bag path and messages per topic."""

    path: Path
    counts: dict[str, int]


def sample_messages(store, config: SampleConfig, root: Path) -> list[SampleMessage]:
    """Every message of the sample, in the order they are written (by stamp, then topic)."""
    motorcycle = with_frames(downscale_pair(load_middlebury_motorcycle(root), config.max_width),
                             MOTORCYCLE_FRAMES)
    oakd = [with_frames(pair, OAKD_FRAMES) for pair in load_oakd_pairs(root)[: config.oakd_pairs]]
    stamps = [T0_NS + round((FIRST_PAIR_S + k * config.stereo_period_s) * 1e9)
              for k in range(1 + len(oakd))]
    out: list[SampleMessage] = []
    for pair, stamp in zip([motorcycle, *oakd], stamps):
        out += pair_messages(store, pair, stamp)
    out.append(lidar_message(store, motorcycle, config.lidar_beams, stamps[0]))
    out += video_messages(store, root / VIDEO_FILE, config.video_frames, config.video_width,
                          T0_NS, config.video_rate_hz)
    rigs = [(*MOTORCYCLE_FRAMES, baseline_of(motorcycle.right_camera))]
    if oakd:
        rigs.append((*OAKD_FRAMES, baseline_of(oakd[0].right_camera)))
    out.append(static_transforms(store, T0_NS, LIDAR_FROM_CAMERA, rigs,
                                 (scan_mount(store, T0_NS),)))
    end_ns = max(message.stamp_ns for message in out) + round(TAIL_S * 1e9)
    out += motion_messages(store, load_tum(root / TRAJECTORY_FILE), T0_NS, end_ns,
                           config.odom_scale, config.odom_yaw_drift_deg_s)
    # The mapping car's drive is longer than the camera streams; it does not stretch /tf.
    out += mapping_messages(store, mapping_stream(root, config.mapping_seconds), T0_NS)
    return sorted(out, key=lambda message: (message.stamp_ns, message.topic))


def build_sample_bag(out: Path, storage: str = "mcap", config: SampleConfig = SampleConfig(),
                     root: Path | None = None) -> SampleSummary:
    """Write the sample bag to the new directory ``out``.

    Args:
        out: bag directory; it must not exist.
        storage: ``mcap`` or ``sqlite3``.
        config: contents and timing (the defaults make the shipped sample).
        root: the shared data folder (default :func:`kestrel_tools.paths.data_dir`).

    Raises:
        BagError: ``out`` exists or cannot be written. OSError, ValueError: missing data.
    """
    writer = BagWriter(out, storage)  # refuses an existing ``out`` before anything is made
    try:
        with writer as bag:
            for topic, msgtype in topics.TOPIC_TYPES.items():
                bag.add_topic(topic, msgtype)
            messages = sample_messages(bag.types.store, config, root or data_dir())
            for message in messages:
                bag.write(message.topic, message.stamp_ns, message.msg)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written sample is left behind
        raise
    return SampleSummary(Path(out), dict(Counter(message.topic for message in messages)))
