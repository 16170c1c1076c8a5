"""OpenCV optical-flow methods that Kestrel's flow is compared against.

* DIS (Kroeger et al., ECCV 2016), ``cv2.DISOpticalFlow`` with its built-in presets;
* Farneback polynomial expansion (SCIA 2003), ``cv2.calcOpticalFlowFarneback``.

Both run on the CPU on 8-bit grey images and return OpenCV's ``(H, W, 2)`` layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kestrel_core.imaging import gray_pair

__all__ = ["DIS_PRESETS", "FarnebackConfig", "opencv_dis_flow", "opencv_farneback_flow"]

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FarnebackConfig:
    """Parameters of ``cv2.calcOpticalFlowFarneback`` (OpenCV's names in brackets).

    Attributes:
        pyramid_scale: scale between pyramid levels, in ``(0, 1)`` [pyr_scale].
        levels: number of pyramid levels (>= 1) [levels]. OpenCV stops adding levels
            once the smaller side would drop below 32 pixels, so a
            500-pixel-high image gets at most 3 levels (1/8) at ``pyramid_scale = 0.5``;
            for motions of tens of pixels use a larger scale and more levels (e.g. 0.8
            and 20).
        window: averaging window size (>= 1) [winsize].
        iterations: iterations per level (>= 1) [iterations].
        poly_n: neighbourhood of the polynomial expansion, 5 or 7 [poly_n].
        poly_sigma: Gaussian sigma of the expansion; about 1.1 for poly_n 5 and 1.5 for
            poly_n 7 [poly_sigma].
        gaussian_window: use a Gaussian instead of a box window
            [OPTFLOW_FARNEBACK_GAUSSIAN].
    """

    pyramid_scale: float = 0.5
    levels: int = 5
    window: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.1
    gaussian_window: bool = False

    def __post_init__(self) -> None:
        for name in ("levels", "window", "iterations", "poly_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"FarnebackConfig.{name} must be an int, got {value!r}")
        if not 0.0 < self.pyramid_scale < 1.0:
            raise ValueError(f"FarnebackConfig.pyramid_scale must be in (0, 1), got {self.pyramid_scale}")
        if self.levels < 1 or self.window < 1 or self.iterations < 1:
            raise ValueError("FarnebackConfig.levels, window and iterations must be >= 1")
        if self.poly_n not in (5, 7):
            raise ValueError(f"FarnebackConfig.poly_n must be 5 or 7, got {self.poly_n}")
        if not self.poly_sigma > 0:
            raise ValueError(f"FarnebackConfig.poly_sigma must be positive, got {self.poly_sigma}")


def opencv_dis_flow(first: object, second: object, preset: str = "medium") -> np.ndarray:
    """Dense inverse search flow from ``first`` to ``second``.

    Args:
        first, second: images as accepted by :func:`kestrel_core.flow.dense_lucas_kanade`
            (grey or RGB, numpy or torch, integer or float), same size.
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.

    Returns:
        ``(H, W, 2)`` float32 flow ``(u, v)`` in pixels.
    """
    if preset not in DIS_PRESETS:
        raise ValueError(f"preset must be one of {tuple(DIS_PRESETS)}, got {preset!r}")
    a, b = _gray_u8_pair(first, second)
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(a, b, None).astype(np.float32, copy=False)


def opencv_farneback_flow(
    first: object, second: object, config: FarnebackConfig = FarnebackConfig()
) -> np.ndarray:
    """Farneback flow from ``first`` to ``second``.

    Args:
        first, second: images as in :func:`opencv_dis_flow`.
        config: the :class:`FarnebackConfig`.

    Returns:
        ``(H, W, 2)`` float32 flow ``(u, v)`` in pixels.
    """
    if not isinstance(config, FarnebackConfig):
        raise ValueError(f"config must be a FarnebackConfig, got {type(config).__name__}")
    a, b = _gray_u8_pair(first, second)
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if config.gaussian_window else 0
    flow = cv2.calcOpticalFlowFarneback(
        a, b, None, config.pyramid_scale, config.levels, config.window, config.iterations,
        config.poly_n, config.poly_sigma, flags,
    )
    return flow.astype(np.float32, copy=False)


def _gray_u8_pair(first: object, second: object) -> tuple[np.ndarray, np.ndarray]:
    """Both frames as contiguous ``(H, W)`` uint8 grey images (what OpenCV's flow needs)."""
    a, b = gray_pair(first, second)
    return tuple(
        np.ascontiguousarray(np.clip(np.rint(t.cpu().numpy() * 255.0), 0, 255).astype(np.uint8)) for t in (a, b)
    )
