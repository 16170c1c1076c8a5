"""Pinhole camera and rectified stereo rig models (the CameraInfo contents, free of ROS)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED_DISTORTION_MODELS = ("", "plumb_bob", "rational_polynomial", "equidistant")


def _frozen_array(values, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.array(values, dtype=np.float64).reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"camera {name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """A calibrated pinhole camera as described by sensor_msgs/CameraInfo.

    Attributes:
        width, height: image size in pixels.
        K: (3, 3) intrinsic matrix of the raw (distorted) image.
        D: (N,) distortion coefficients for ``distortion_model``.
        R: (3, 3) rectification rotation.
        P: (3, 4) projection matrix of the rectified image. For the right camera of a
            rectified pair ``P[0, 3] = -fx' * baseline``.
        distortion_model: ``plumb_bob``, ``rational_polynomial``, ``equidistant`` or ``""``.
        frame_id: optical frame of the camera.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray | None = None
    distortion_model: str = "plumb_bob"
    frame_id: str = ""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.distortion_model not in SUPPORTED_DISTORTION_MODELS:
            raise ValueError(
                f"unsupported distortion model {self.distortion_model!r}; "
                f"supported: {', '.join(m for m in SUPPORTED_DISTORTION_MODELS if m)}"
            )
        object.__setattr__(self, "K", _frozen_array(self.K, (3, 3), "K"))
        object.__setattr__(self, "D", _frozen_array(self.D, (-1,), "D"))
        object.__setattr__(self, "R", _frozen_array(self.R, (3, 3), "R"))
        projection = self.P
        if projection is None:
            projection = np.hstack([self.K, np.zeros((3, 1))])
        object.__setattr__(self, "P", _frozen_array(projection, (3, 4), "P"))
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    # Rectified intrinsics (from P), which is what stereo and projection use.
    @property
    def fx(self) -> float:
        return float(self.P[0, 0])

    @property
    def fy(self) -> float:
        return float(self.P[1, 1])

    @property
    def cx(self) -> float:
        return float(self.P[0, 2])

    @property
    def cy(self) -> float:
        return float(self.P[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``, the order of array shapes."""
        return (self.height, self.width)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PinholeCamera):
            return NotImplemented
        return (
            (self.width, self.height, self.distortion_model, self.frame_id)
            == (other.width, other.height, other.distortion_model, other.frame_id)
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.D, other.D)
            and np.array_equal(self.R, other.R)
            and np.array_equal(self.P, other.P)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class StereoRig:
    """A rectified stereo pair: the left camera and the right camera.

    Depth follows ``Z = focal * baseline / (d + doffs)`` where ``d = x_left - x_right``
    is the disparity in pixels and ``doffs = cx_right - cx_left`` is the difference of the
    rectified principal points (zero for most rigs, non-zero for Middlebury).
    """

    left: PinholeCamera
    right: PinholeCamera

    def __post_init__(self) -> None:
        if self.left.size != self.right.size:
            raise ValueError(
                f"left camera is {self.left.width}x{self.left.height} but right camera is "
                f"{self.right.width}x{self.right.height}"
            )
        if not self.baseline > 0:
            raise ValueError(
                f"stereo baseline must be positive, got {self.baseline:g} m "
                "(right CameraInfo P[0,3] must be -fx*baseline)"
            )

    @property
    def focal(self) -> float:
        """Rectified focal length in pixels (``P_left[0, 0]``)."""
        return self.left.fx

    @property
    def baseline(self) -> float:
        """Baseline in metres, from the right camera's ``P[0, 3] = -fx * baseline``."""
        return float(-self.right.P[0, 3] / self.right.P[0, 0])

    @property
    def doffs(self) -> float:
        """``cx_right - cx_left`` in pixels."""
        return self.right.cx - self.left.cx
