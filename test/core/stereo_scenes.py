"""A synthetic layered stereo scene with exact ground truth, for the SGM tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayeredScene:
    """A rectified pair of two fronto-parallel textured planes.

    Attributes:
        left, right: ``(H, W)`` uint8 images.
        disparity: ``(H, W)`` float32 true disparity of every left pixel.
        occluded: ``(H, W)`` bool, left pixels hidden by the foreground in the right view.
    """

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    occluded: np.ndarray


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    noise = rng.uniform(0, 255, size=(height, width)).astype(np.float32)
    # a light [1 2 1] blur keeps the texture rich but gives it usable gradients
    blurred = (noise[:, :-2] + 2 * noise[:, 1:-1] + noise[:, 2:]) / 4
    blurred = (blurred[:-2] + 2 * blurred[1:-1] + blurred[2:]) / 4
    return np.clip((blurred - blurred.mean()) * 2.0 + 128.0, 0, 255)


def layered_scene(
    height: int = 48,
    width: int = 96,
    background: int = 5,
    foreground: int | None = None,
    columns: tuple[int, int] = (40, 70),
    seed: int = 0,
) -> LayeredScene:
    """Background plane at disparity ``background``; optionally a foreground plane at
    disparity ``foreground`` covering left-image ``columns`` ``[x0, x1)``.

    Textures are attached to the planes in left-image coordinates, so the left pixel
    ``x`` of a plane with disparity ``d`` appears at ``x - d`` in the right image, and the
    right image shows whichever plane is nearer.
    """
    rng = np.random.default_rng(seed)
    margin = 2 * max(background, foreground or 0) + 4
    back = _texture(rng, height + 2, width + 2 * margin + 2)  # columns x + margin
    front = _texture(rng, height + 2, width + 2 * margin + 2)
    x = np.arange(width)
    in_front = np.zeros(width, dtype=bool)
    if foreground is not None:
        in_front = (x >= columns[0]) & (x < columns[1])
    left = np.where(in_front[None, :], front[:height, x + margin], back[:height, x + margin])
    disparity = np.where(in_front, foreground if foreground is not None else 0, background).astype(np.float32)

    # right pixel xr shows the foreground where xr + foreground lands inside its columns
    right_front = np.zeros(width, dtype=bool)
    if foreground is not None:
        right_front = (x + foreground >= columns[0]) & (x + foreground < columns[1])
        front_view = front[:height, x + foreground + margin]
        right = np.where(right_front[None, :], front_view, back[:height, x + background + margin])
    else:
        right = back[:height, x + background + margin]
    # a background left pixel is occluded when its right position shows the foreground
    xr = x - background
    occluded_cols = ~in_front & (xr >= 0) & right_front[np.clip(xr, 0, width - 1)]
    occluded = np.broadcast_to(occluded_cols[None, :], (height, width)).copy()
    return LayeredScene(
        left=left.round().astype(np.uint8),
        right=right.round().astype(np.uint8),
        disparity=np.broadcast_to(disparity[None, :], (height, width)).copy(),
        occluded=occluded,
    )
