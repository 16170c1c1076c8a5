"""Stereo stream of the sample bag: Motorcycle (downscaled, with ground truth) and OAK-D pairs.

Per pair, all at the pair's stamp: left and right ``image_rect`` with their ``camera_info``;
for Motorcycle also ``/ground_truth/disparity`` (32FC1 pixels, NaN unknown, in the left
image) and ``/ground_truth/depth`` (32FC1 metres along the left optical axis).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from rosbags.typesys.store import Typestore

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_core.geometry.stereo import disparity_to_depth
from kestrel_tools.datasets import StereoSample, rectified_pair_cameras
from kestrel_tools.sample import messages, topics
from kestrel_tools.sample.records import SampleMessage

MOTORCYCLE_FRAMES = ("camera_left_optical", "camera_right_optical")
OAKD_FRAMES = ("oakd_left_optical", "oakd_right_optical")


def baseline_of(right: PinholeCamera) -> float:
    """Baseline in metres of a rectified pair from its right camera (``P[0, 3] = -fx B``)."""
    return float(-right.P[0, 3] / right.P[0, 0])


def pixel_centre_map(source_size: int, target_size: int) -> np.ndarray:
    """(target_size,) float32 source coordinates of the target pixel centres."""
    scale = source_size / target_size
    return ((np.arange(target_size, dtype=np.float32) + 0.5) * scale - 0.5).astype(np.float32)


def downscale_pair(sample: StereoSample, max_width: int) -> StereoSample:
    """``sample`` shrunk to at most ``max_width`` pixels wide, with cameras and ground truth.

    Images use area interpolation; the ground-truth disparity takes the nearest source pixel
    (no blending across depth edges) and is multiplied by the horizontal scale. Intrinsics
    scale about pixel centres, so ``cx' = (cx + 0.5) s - 0.5``; the baseline is unchanged.
    """
    height, width = sample.left.shape[:2]
    if width <= max_width:
        return sample
    new_w, new_h = max_width, round(height * max_width / width)
    sx, sy = new_w / width, new_h / height
    left, right = sample.left_camera, sample.right_camera
    cameras = rectified_pair_cameras(
        new_w, new_h, left.fx * sx, left.fy * sy, (left.cx + 0.5) * sx - 0.5,
        (left.cy + 0.5) * sy - 0.5, baseline_of(right), (right.cx - left.cx) * sx,
        (left.frame_id, right.frame_id))
    truth = None
    if sample.ground_truth is not None:
        map_x = np.broadcast_to(pixel_centre_map(width, new_w)[None, :], (new_h, new_w))
        map_y = np.broadcast_to(pixel_centre_map(height, new_h)[:, None], (new_h, new_w))
        nearest = cv2.remap(sample.ground_truth, np.ascontiguousarray(map_x),
                            np.ascontiguousarray(map_y), cv2.INTER_NEAREST)
        truth = (nearest * np.float32(sx)).astype(np.float32)
    size = (new_w, new_h)
    return StereoSample(sample.name, cv2.resize(sample.left, size, interpolation=cv2.INTER_AREA),
                        cv2.resize(sample.right, size, interpolation=cv2.INTER_AREA),
                        cameras[0], cameras[1], truth)


def with_frames(sample: StereoSample, frames: tuple[str, str]) -> StereoSample:
    """``sample`` with its cameras renamed to the optical frames ``frames`` (left, right)."""
    return dataclasses.replace(
        sample, left_camera=dataclasses.replace(sample.left_camera, frame_id=frames[0]),
        right_camera=dataclasses.replace(sample.right_camera, frame_id=frames[1]))


def ground_truth_depth(sample: StereoSample) -> np.ndarray:
    """(H, W) float32 depth in metres from the ground-truth disparity, NaN unknown."""
    left, right = sample.left_camera, sample.right_camera
    return disparity_to_depth(sample.ground_truth, left.fx, baseline_of(right),
                              right.cx - left.cx).astype(np.float32)


def pair_messages(store: Typestore, sample: StereoSample, stamp_ns: int) -> list[SampleMessage]:
    """The messages of one pair (and its ground truth, if any), all stamped ``stamp_ns``."""
    left, right = sample.left_camera, sample.right_camera
    out = [
        SampleMessage(topics.LEFT_INFO, stamp_ns, messages.camera_info(store, stamp_ns, left)),
        SampleMessage(topics.RIGHT_INFO, stamp_ns, messages.camera_info(store, stamp_ns, right)),
        SampleMessage(topics.LEFT_IMAGE, stamp_ns,
                      messages.image(store, stamp_ns, left.frame_id, sample.left)),
        SampleMessage(topics.RIGHT_IMAGE, stamp_ns,
                      messages.image(store, stamp_ns, right.frame_id, sample.right)),
    ]
    if sample.ground_truth is not None:
        out += [
            SampleMessage(topics.GT_DISPARITY, stamp_ns, messages.image(
                store, stamp_ns, left.frame_id, sample.ground_truth.astype(np.float32))),
            SampleMessage(topics.GT_DEPTH, stamp_ns, messages.image(
                store, stamp_ns, left.frame_id, ground_truth_depth(sample))),
        ]
    return out
