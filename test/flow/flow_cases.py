"""Known motions applied to real images, with their exact flow, for the flow tests."""

from __future__ import annotations

import cv2
import numpy as np


def shift_image(image: np.ndarray, tx: float, ty: float) -> np.ndarray:
    """Move the content of ``image`` by ``(tx, ty)`` pixels (bicubic), so that the flow
    from ``image`` to the result is ``(tx, ty)`` everywhere (away from the borders)."""
    return affine_image(image, np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]]))


def affine_image(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map the pixel at ``p`` of ``image`` to ``matrix @ [p, 1]`` (bicubic resampling)."""
    return cv2.warpAffine(
        image, np.float32(matrix), image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def affine_flow(matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(2, H, W)`` float64 flow of the affine map: ``A p + t - p``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    u = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs
    v = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys
    return np.stack((u, v))


def textured_mask(image: np.ndarray, border: int, min_gradient: float = 20.0) -> np.ndarray:
    """Interior pixels (``border`` away from the edges) whose 7x7 mean Sobel gradient
    magnitude exceeds ``min_gradient`` grey levels (of 255) - where LK is well posed."""
    gray = image.astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    mask = cv2.blur(magnitude, (7, 7)) > min_gradient
    interior = np.zeros_like(mask)
    interior[border:-border, border:-border] = True
    return mask & interior
