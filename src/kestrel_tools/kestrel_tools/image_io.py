"""Reading and writing image files for the command line and the demo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageReadError(OSError):
    """An image file is missing or cannot be decoded."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB (H, W, 3) uint8, or (H, W) for single-channel files.

    16-bit files keep their dtype. Raises :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"no such image file: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(f"cannot decode image file: {path}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def colorize_disparity(disparity: np.ndarray, max_disparity: float | None = None) -> np.ndarray:
    """(H, W) disparity, NaN invalid -> (H, W, 3) uint8 RGB, black where invalid."""
    valid = np.isfinite(disparity)
    top = max_disparity if max_disparity else (float(disparity[valid].max()) if valid.any() else 1.0)
    scaled = np.zeros(disparity.shape, np.uint8)
    scaled[valid] = np.clip(disparity[valid] / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    color = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)
    color[~valid] = 0
    return cv2.cvtColor(color, cv2.COLOR_BGR2RGB)


def write_rgb_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
