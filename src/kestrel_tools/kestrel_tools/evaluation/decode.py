"""Bag messages to arrays and camera models, through Kestrel's ROS conversions.

The conversions read rosbags dataclasses as they read rclpy messages (same field names).
"""

from __future__ import annotations

import numpy as np

from kestrel_core.geometry.camera import StereoRig
from kestrel_ros.conversions.camera_info import stereo_rig_from_camera_infos
from kestrel_ros.conversions.image import image_to_numpy
from kestrel_tools.sample import topics


def image_array(msg: object) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image`` as a new ``(H, W)`` or ``(H, W, C)`` array (torch
    takes writable arrays only)."""
    return np.array(image_to_numpy(msg))


def float_map(msg: object) -> np.ndarray:
    """A 32FC1 image (ground-truth disparity or depth) as a writable ``(H, W)`` float32."""
    if msg.encoding != "32FC1":
        raise ValueError(f"a ground-truth map must be 32FC1, got {msg.encoding!r} "
                         f"(frame {msg.header.frame_id!r})")
    return np.array(image_to_numpy(msg), dtype=np.float32)


def stereo_rig(group: dict[str, object]) -> StereoRig:
    """The rectified rig of a synchronized group holding both camera_info topics."""
    return stereo_rig_from_camera_infos(group[topics.LEFT_INFO], group[topics.RIGHT_INFO])
