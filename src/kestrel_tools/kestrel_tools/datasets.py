"""Loaders for the real recordings in ``../shared/data`` (see its README for provenance)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_tools.image_io import read_image
from kestrel_tools.paths import data_dir



@dataclass(frozen=True)
class StereoSample:
    """A rectified pair with its calibration.

    Attributes:
        name: scene name.
        left, right: (H, W, 3) uint8 RGB.
        left_camera, right_camera: rectified cameras; the right one's ``P[0, 3]`` is
            ``-fx * baseline`` and its ``cx`` includes the principal-point offset ``doffs``.
        ground_truth: (H, W) float32 disparity in pixels, NaN where unknown, or None.
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    left_camera: PinholeCamera
    right_camera: PinholeCamera
    ground_truth: np.ndarray | None = None


def rectified_pair_cameras(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                           baseline: float, doffs: float = 0.0,
                           frames: tuple[str, str] = ("left_optical", "right_optical"),
                           ) -> tuple[PinholeCamera, PinholeCamera]:
    """The two rectified cameras of a stereo rig, as CameraInfo would carry them."""
    K_left = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    K_right = np.array([[fx, 0, cx + doffs], [0, fy, cy], [0, 0, 1]])
    P_left = np.hstack([K_left, np.zeros((3, 1))])
    P_right = np.hstack([K_right, np.array([[-fx * baseline], [0.0], [0.0]])])
    left = PinholeCamera(width, height, K_left, np.zeros(5), np.eye(3), P_left, "plumb_bob", frames[0])
    right = PinholeCamera(width, height, K_right, np.zeros(5), np.eye(3), P_right, "plumb_bob",
                          frames[1])
    return left, right


def load_middlebury_motorcycle(root: Path | None = None) -> StereoSample:
    """Middlebury 2014 Motorcycle at 741x500 with dense ground truth."""
    folder = (root or data_dir()) / "stereo" / "motorcycle"
    calib = json.loads((folder / "calib.json").read_text())
    ground_truth = np.load(folder / "motorcycle_disp.npz")["arr_0"].astype(np.float32)
    ground_truth[~np.isfinite(ground_truth)] = np.nan
    left_camera, right_camera = rectified_pair_cameras(
        calib["width"], calib["height"], calib["fx"], calib["fy"], calib["cx"], calib["cy"],
        calib["baseline_m"], calib["cx_right_offset_doffs"],
    )
    return StereoSample(
        "motorcycle",
        read_image(folder / "motorcycle_left.png"),
        read_image(folder / "motorcycle_right.png"),
        left_camera,
        right_camera,
        ground_truth,
    )


def load_oakd_pairs(root: Path | None = None) -> list[StereoSample]:
    """The 12 OAK-D indoor pairs (640x480, no ground truth), sorted by name."""
    folder = (root or data_dir()) / "stereo" / "oakd"
    calib = json.loads((folder / "stereodemo_calibration.json").read_text())
    left_camera, right_camera = rectified_pair_cameras(
        calib["width"], calib["height"], calib["fx"], calib["fy"], calib["cx0"], calib["cy"],
        calib["baseline_meters"], calib["cx1"] - calib["cx0"],
    )
    samples = []
    for left_path in sorted(folder.glob("*_left.png")):
        name = left_path.name[: -len("_left.png")]
        samples.append(StereoSample(name, read_image(left_path),
                                    read_image(folder / f"{name}_right.png"),
                                    left_camera, right_camera))
    return samples
