"""OpenCV StereoSGBM, the baseline Kestrel's matcher is compared against."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ["OpenCVSGBMConfig", "opencv_sgbm_disparity", "SGBM_MODES"]

SGBM_MODES = {
    "sgbm": cv2.STEREO_SGBM_MODE_SGBM,
    "hh": cv2.STEREO_SGBM_MODE_HH,
    "sgbm_3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    "hh4": cv2.STEREO_SGBM_MODE_HH4,
}


@dataclass(frozen=True)
class OpenCVSGBMConfig:
    """Parameters of ``cv2.StereoSGBM`` (OpenCV's names in brackets).

    Attributes:
        max_disparity: number of disparities [numDisparities]; rounded up to a multiple
            of 16 when the matcher is created.
        min_disparity: [minDisparity].
        block_size: odd matching block size [blockSize].
        p1, p2: smoothness penalties [P1, P2]; None means ``8 * cn * block_size**2`` and
            ``32 * cn * block_size**2`` with ``cn`` the number of image channels.
        disp12_max_diff: left-right check tolerance in pixels, < 0 disables
            [disp12MaxDiff].
        uniqueness_ratio: margin in percent [uniquenessRatio].
        speckle_window_size: 0 disables [speckleWindowSize].
        speckle_range: disparity range inside a speckle, in pixels (OpenCV multiplies it
            by 16 internally) [speckleRange].
        pre_filter_cap: [preFilterCap].
        mode: ``"sgbm"`` (5 paths), ``"hh"`` (8 paths), ``"sgbm_3way"`` or ``"hh4"``.
    """

    max_disparity: int = 128
    min_disparity: int = 0
    block_size: int = 5
    p1: int | None = None
    p2: int | None = None
    disp12_max_diff: int = 1
    uniqueness_ratio: int = 10
    speckle_window_size: int = 100
    speckle_range: int = 2
    pre_filter_cap: int = 63
    mode: str = "sgbm_3way"

    def __post_init__(self) -> None:
        for name in ("max_disparity", "min_disparity", "block_size", "disp12_max_diff", "uniqueness_ratio",
                     "speckle_window_size", "speckle_range", "pre_filter_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.max_disparity < 1:
            raise ValueError(f"max_disparity must be >= 1, got {self.max_disparity}")
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ValueError(f"block_size must be odd and >= 1, got {self.block_size}")
        for name in ("p1", "p2"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be None or an int >= 0, got {value!r}")
        if self.p1 is not None and self.p2 is not None and self.p2 <= self.p1:
            raise ValueError(f"OpenCV needs p2 > p1, got p1={self.p1}, p2={self.p2}")
        if not 0 <= self.uniqueness_ratio < 100:
            raise ValueError(f"uniqueness_ratio must be in [0, 100), got {self.uniqueness_ratio}")
        if self.speckle_window_size < 0 or self.speckle_range < 0:
            raise ValueError("speckle_window_size and speckle_range must be >= 0")
        if not 1 <= self.pre_filter_cap <= 63:
            raise ValueError(f"pre_filter_cap must be in [1, 63], got {self.pre_filter_cap}")
        if self.mode not in SGBM_MODES:
            raise ValueError(f"mode must be one of {', '.join(SGBM_MODES)}; got {self.mode!r}")

    @property
    def num_disparities(self) -> int:
        """``max_disparity`` rounded up to a multiple of 16, as OpenCV requires."""
        return -(-self.max_disparity // 16) * 16


def opencv_sgbm_disparity(left: object, right: object, config: OpenCVSGBMConfig | None = None) -> np.ndarray:
    """Disparity of a rectified pair with ``cv2.StereoSGBM``.

    Args:
        left, right: ``(H, W)`` grey or ``(H, W, 3)`` images (numpy or torch); uint8 is
            used as is, uint16 is divided by 257, float in ``[0, 1]`` is scaled by 255
            (float above 1 is taken as 0-255).
        config: matcher parameters; ``OpenCVSGBMConfig()`` if None.

    Returns:
        ``(H, W)`` float32 disparity in pixels (OpenCV's fixed point divided by 16); NaN
        where OpenCV marks the pixel invalid.

    Raises:
        ValueError: on shape, size or dtype problems.
    """
    config = config if config is not None else OpenCVSGBMConfig()
    left8 = _to_uint8(left, "left")
    right8 = _to_uint8(right, "right")
    if left8.shape != right8.shape:
        raise ValueError(f"left {left8.shape} and right {right8.shape} images differ in shape")
    channels = 1 if left8.ndim == 2 else left8.shape[2]
    area = config.block_size * config.block_size
    matcher = cv2.StereoSGBM_create(
        minDisparity=config.min_disparity,
        numDisparities=config.num_disparities,
        blockSize=config.block_size,
        P1=config.p1 if config.p1 is not None else 8 * channels * area,
        P2=config.p2 if config.p2 is not None else 32 * channels * area,
        disp12MaxDiff=config.disp12_max_diff,
        preFilterCap=config.pre_filter_cap,
        uniquenessRatio=config.uniqueness_ratio,
        speckleWindowSize=config.speckle_window_size,
        speckleRange=config.speckle_range,
        mode=SGBM_MODES[config.mode],
    )
    fixed = matcher.compute(left8, right8)
    disparity = fixed.astype(np.float32) / 16.0
    disparity[fixed < config.min_disparity * 16] = np.nan
    return disparity


def _to_uint8(image: object, name: str) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} image must be a numpy array or a torch tensor, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"{name} image must have shape (H, W) or (H, W, 3), got {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return np.ascontiguousarray((image.astype(np.float32) / 257.0).round().astype(np.uint8))
    if np.issubdtype(image.dtype, np.floating):
        scale = 1.0 if float(np.nanmax(image)) > 1.0 else 255.0
        return np.ascontiguousarray(np.clip(image * scale, 0, 255).round().astype(np.uint8))
    raise ValueError(f"{name} image dtype {image.dtype} is not supported; use uint8, uint16 or float")
