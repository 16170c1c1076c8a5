"""LiDAR stream of the sample bag: a scan simulated from the Motorcycle ground-truth depth.

The scan is :func:`kestrel_core.fusion.simulate_lidar_from_depth` with the default mounting
(:func:`kestrel_core.fusion.default_T_lidar_cam`: 0.1 m above the left camera, REP-103 body
axes); ``/tf_static`` carries that same transform, ``lidar -> camera_left_optical``.
"""

from __future__ import annotations

import numpy as np
from rosbags.typesys.store import Typestore

from kestrel_core.fusion import default_T_lidar_cam, simulate_lidar_from_depth
from kestrel_tools.datasets import StereoSample
from kestrel_tools.sample import messages, topics
from kestrel_tools.sample.records import SampleMessage
from kestrel_tools.sample.stereo import ground_truth_depth

LIDAR_FROM_CAMERA = default_T_lidar_cam()


def lidar_points(sample: StereoSample, beams: int) -> np.ndarray:
    """(N, 3) float32 points in the LiDAR frame, sampled from ``sample``'s true depth."""
    scan = simulate_lidar_from_depth(ground_truth_depth(sample), sample.left_camera,
                                     n_beams=beams, T_lidar_cam=LIDAR_FROM_CAMERA)
    return scan.numpy()


def lidar_message(store: Typestore, sample: StereoSample, beams: int,
                  stamp_ns: int) -> SampleMessage:
    """``/lidar/points`` at the stamp of the pair it was simulated from."""
    return SampleMessage(topics.LIDAR_POINTS, stamp_ns, messages.xyz_cloud(
        store, stamp_ns, topics.LIDAR_FRAME, lidar_points(sample, beams)))
