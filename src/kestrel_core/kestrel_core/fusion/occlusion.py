"""Removal of LiDAR points that the camera cannot see (mounting-offset "see-through" points).

A LiDAR mounted beside the camera sees, near the edges of foreground objects, background
surfaces that the camera's view hides. Projected into the image, such a point lands *inside*
the foreground object, surrounded by the foreground's (nearer) points. The classical test,
the "min filter" of occlusion handling, keeps a point only if no clearly nearer point lies
within a small window around it; here it is made two-sided so that genuinely visible
background points just beside a foreground edge survive: a point is dropped when clearly
nearer points lie on *both* sides of it within the window: in the strips left and right
of it (a few rows high) or in those above and below it (a few columns wide). "Clearly nearer" means nearer by more than ``relative_gap`` of its depth.

Vectorised OpenCV erosions (minimum filters) with half-window kernels; numpy in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["OcclusionFilterConfig", "remove_occluded_points"]

_FAR = np.float32(1e9)  # stands for "no measurement" inside the minimum filters


@dataclass(frozen=True)
class OcclusionFilterConfig:
    """Window of the test in pixels and the depth gap that counts as occlusion.

    Attributes:
        half_width: columns searched left and right of a point (>= 1).
        half_height: rows searched above and below a point (>= 1); LiDAR scan lines are
            far apart in the image, so this may be larger than ``half_width``.
        band: half-thickness of the four search strips (0: the point's own row / column).
        relative_gap: a neighbour occludes a point of depth ``d`` when it is nearer than
            ``d * (1 - relative_gap)``; in ``(0, 1)``.
    """

    half_width: int = 4
    half_height: int = 4
    band: int = 1
    relative_gap: float = 0.1

    def __post_init__(self) -> None:
        if self.half_width < 1 or self.half_height < 1:
            raise ValueError(f"half_width and half_height must be >= 1, got {self.half_width}, {self.half_height}")
        if not 0 <= self.band <= min(self.half_width, self.half_height):
            raise ValueError(f"band must be in [0, min(half_width, half_height)], got {self.band}")
        if not 0 < self.relative_gap < 1:
            raise ValueError(f"relative_gap must be in (0, 1), got {self.relative_gap}")


def _side_kernels(config: OcclusionFilterConfig) -> dict[str, np.ndarray]:
    """``(2 * half_height + 1, 2 * half_width + 1)`` uint8 masks of the four search strips:
    left and right of the centre pixel (``2 * band + 1`` rows high), above and below it
    (``2 * band + 1`` columns wide)."""
    w, h, b = config.half_width, config.half_height, config.band
    window = np.zeros((2 * h + 1, 2 * w + 1), np.uint8)
    kernels = {side: window.copy() for side in ("left", "right", "above", "below")}
    kernels["left"][h - b : h + b + 1, :w] = 1
    kernels["right"][h - b : h + b + 1, w + 1 :] = 1
    kernels["above"][:h, w - b : w + b + 1] = 1
    kernels["below"][h + 1 :, w - b : w + b + 1] = 1
    return kernels


def remove_occluded_points(sparse: np.ndarray, config: OcclusionFilterConfig = OcclusionFilterConfig()
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Drop sparse depth pixels that lie behind nearer points on two opposite sides.

    Args:
        sparse: ``(H, W)`` depth in metres, NaN (or <= 0) where empty.
        config: window and depth gap, see :class:`OcclusionFilterConfig`.

    Returns:
        ``filtered (H, W)`` float32 (removed pixels set to NaN) and ``removed (H, W)`` bool.
    """
    sparse = np.asarray(sparse, dtype=np.float32)
    if sparse.ndim != 2:
        raise ValueError(f"sparse depth must be (H, W), got {sparse.shape}")
    measured = np.isfinite(sparse) & (sparse > 0)
    depth = np.where(measured, sparse, _FAR).astype(np.float32)
    nearest = {side: cv2.erode(depth, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=float(_FAR))
               for side, kernel in _side_kernels(config).items()}
    left, right, above, below = (nearest[side] for side in ("left", "right", "above", "below"))
    limit = depth * np.float32(1 - config.relative_gap)
    removed = measured & (((left < limit) & (right < limit)) | ((above < limit) & (below < limit)))
    filtered = np.where(removed | ~measured, np.nan, sparse).astype(np.float32)
    return filtered, removed
