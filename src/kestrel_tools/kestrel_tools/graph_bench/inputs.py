"""Input frames for graph benchmarks, built once from the real recordings.

A frame is what one camera instant puts on the wire: a list of ``(topic, message)`` in publish
order, all stamped alike (the runner re-stamps them at send time).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from std_msgs.msg import Header

from kestrel_ros.conversions.camera_info import model_to_camera_info
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_tools.datasets import StereoSample, load_oakd_pairs, rectified_pair_cameras
from kestrel_tools.paths import data_dir
from kestrel_tools.training.frames import FrameSource, iter_frames

Frame = list[tuple[str, object]]
VIDEO = ("frames", "vtest.avi")
FLOW_FRAME_ID = "camera_optical"


def resize_stereo_sample(sample: StereoSample, width: int, height: int) -> StereoSample:
    """``sample`` at ``width`` x ``height``: images resized (area), cameras rescaled, ground
    truth resized (nearest) and its disparities multiplied by the horizontal scale.

    Pixel centres map as ``x' = (x + 0.5) * s - 0.5``, as the resize does, so the principal
    points move accordingly; the baseline is unchanged and ``doffs`` scales with the width.
    """
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2x2, got {width}x{height}")
    left_cam, right_cam = sample.left_camera, sample.right_camera
    sx, sy = width / left_cam.width, height / left_cam.height

    def shift(center: float, scale: float) -> float:
        return (center + 0.5) * scale - 0.5

    baseline = -right_cam.P[0, 3] / right_cam.fx
    cameras = rectified_pair_cameras(
        width, height, left_cam.fx * sx, left_cam.fy * sy, shift(left_cam.cx, sx),
        shift(left_cam.cy, sy), baseline, (right_cam.cx - left_cam.cx) * sx,
        frames=(left_cam.frame_id, right_cam.frame_id))
    size = (width, height)
    truth = None
    if sample.ground_truth is not None:
        truth = cv2.resize(sample.ground_truth, size, interpolation=cv2.INTER_NEAREST) * np.float32(sx)
    return replace(sample, left=cv2.resize(sample.left, size, interpolation=cv2.INTER_AREA),
                   right=cv2.resize(sample.right, size, interpolation=cv2.INTER_AREA),
                   left_camera=cameras[0], right_camera=cameras[1], ground_truth=truth)


def crop_stereo_sample(sample: StereoSample, x: int, y: int, width: int, height: int,
                       ) -> StereoSample:
    """The ``width`` x ``height`` window of ``sample`` at column ``x``, row ``y``: the principal
    points move with the window, baseline and ``doffs`` stay; ground truth is cropped alike."""
    if x < 0 or y < 0 or x + width > sample.left.shape[1] or y + height > sample.left.shape[0]:
        raise ValueError(f"window {width}x{height} at ({x}, {y}) leaves the "
                         f"{sample.left.shape[1]}x{sample.left.shape[0]} pair")
    window = (slice(y, y + height), slice(x, x + width))
    left, right = sample.left_camera, sample.right_camera
    cameras = rectified_pair_cameras(width, height, left.fx, left.fy, left.cx - x, left.cy - y,
                                     -right.P[0, 3] / right.fx, right.cx - left.cx,
                                     frames=(left.frame_id, right.frame_id))
    truth = None if sample.ground_truth is None else sample.ground_truth[window]
    return replace(sample, left=np.ascontiguousarray(sample.left[window]),
                   right=np.ascontiguousarray(sample.right[window]), left_camera=cameras[0],
                   right_camera=cameras[1], ground_truth=truth)


def stereo_frame(sample: StereoSample) -> Frame:
    """CameraInfo (left, right) then the images (left, right; mono8 or rgb8 as the arrays are
    (H, W) or (H, W, 3)) of one pair, unstamped."""
    encoding = "mono8" if sample.left.ndim == 2 else "rgb8"
    left_header = Header(frame_id=sample.left_camera.frame_id)
    right_header = Header(frame_id=sample.right_camera.frame_id)
    return [
        ("left/camera_info", model_to_camera_info(sample.left_camera, left_header)),
        ("right/camera_info", model_to_camera_info(sample.right_camera, right_header)),
        ("left/image_rect", numpy_to_image(sample.left, encoding, header=left_header)),
        ("right/image_rect", numpy_to_image(sample.right, encoding, header=right_header)),
    ]


def oakd_stereo_frames(width: int, height: int) -> list[Frame]:
    """The 12 OAK-D pairs at ``width`` x ``height`` with their CameraInfo."""
    return [stereo_frame(resize_stereo_sample(sample, width, height))
            for sample in load_oakd_pairs()]


def video_frames(width: int, height: int, count: int = 24) -> list[Frame]:
    """``count`` consecutive frames of vtest.avi at ``width`` x ``height``, rgb8 on ``image``."""
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2x2, got {width}x{height}")
    source = FrameSource("video", data_dir().joinpath(*VIDEO))
    header = Header(frame_id=FLOW_FRAME_ID)
    return [[("image", numpy_to_image(
                cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), "rgb8",
                header=header))]
            for rgb in iter_frames(source, max_frames=count)]
