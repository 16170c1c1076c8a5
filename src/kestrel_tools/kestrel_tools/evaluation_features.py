"""Dense-correspondence evaluation of feature maps on a rectified stereo pair.

For every left cell ``(i, j)`` the matched right cell is the one with the highest cosine
similarity in the same grid row ``i``. A cell is correct when the matched column shift
``j - j'`` is within one cell of the ground-truth disparity of the cell divided by the
stride. Only cells whose ground truth is valid count: at least half of their pixels have a
finite disparity (their median is the cell's disparity) and the true match lies inside the
right image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kestrel_core.features.model import FeatureModel, rgb_to_batch

MIN_VALID_FRACTION = 0.5


@dataclass(frozen=True)
class CorrespondenceResult:
    """Share of correct cells (``accuracy`` in [0, 1]) over ``cells`` evaluated cells."""

    accuracy: float
    cells: int


def cell_disparity(disparity: np.ndarray, stride: int, grid: tuple[int, int]) -> np.ndarray:
    """Per-cell median of a ``(H, W)`` pixel disparity (NaN invalid) -> ``(h, w)`` in pixels,
    NaN where fewer than half of the cell's pixels are valid."""
    height, width = grid
    cropped = disparity[: height * stride, : width * stride]
    if cropped.shape != (height * stride, width * stride):
        raise ValueError(f"disparity {disparity.shape} is smaller than grid {grid} x stride {stride}")
    blocks = cropped.reshape(height, stride, width, stride).transpose(0, 2, 1, 3).reshape(height, width, -1)
    valid = np.isfinite(blocks).mean(axis=-1) >= MIN_VALID_FRACTION
    medians = np.full((height, width), np.nan, dtype=np.float64)
    if valid.any():
        medians[valid] = np.nanmedian(blocks[valid], axis=-1)
    return medians


def row_matches(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """For ``(C, h, w)`` left/right features, the column ``j'`` of the most cosine-similar
    right cell in the same row for each left cell: ``(h, w)`` int64."""
    if left.shape != right.shape or left.dim() != 3:
        raise ValueError(f"expected two (C, h, w) feature maps of one shape, got {tuple(left.shape)}, {tuple(right.shape)}")
    left_unit = torch.nn.functional.normalize(left.float(), dim=0)
    right_unit = torch.nn.functional.normalize(right.float(), dim=0)
    similarity = torch.einsum("chw,chv->hwv", left_unit, right_unit)  # (h, w, w)
    return similarity.argmax(dim=-1)


def correspondence_accuracy(left: torch.Tensor, right: torch.Tensor, disparity: np.ndarray,
                            stride: int) -> CorrespondenceResult:
    """Score ``(C, h, w)`` feature maps of a rectified pair against the ``(H, W)`` left
    disparity in pixels (NaN invalid), cell ``(i, j)`` covering pixels ``[i*stride, (i+1)*stride)``."""
    grid = (int(left.shape[1]), int(left.shape[2]))
    expected_shift = cell_disparity(disparity, stride, grid) / stride  # (h, w) cells
    columns = np.arange(grid[1])[None, :]
    evaluable = np.isfinite(expected_shift) & (columns - np.nan_to_num(expected_shift) >= -0.5)
    if not evaluable.any():
        raise ValueError("no cell has valid ground truth")
    shift = columns - row_matches(left, right).cpu().numpy()
    correct = np.abs(shift - expected_shift) <= 1.0
    return CorrespondenceResult(float(correct[evaluable].mean()), int(evaluable.sum()))


def pixel_patch_features(image: np.ndarray, stride: int) -> torch.Tensor:
    """Raw-pixel baseline: each ``stride x stride`` RGB cell of an ``(H, W, 3)`` uint8 image,
    flattened, mean-removed and L2-normalized -> ``(3*stride*stride, H//stride, W//stride)``."""
    batch = rgb_to_batch(image)[0]
    height, width = batch.shape[1] // stride, batch.shape[2] // stride
    cells = batch[:, : height * stride, : width * stride].reshape(3, height, stride, width, stride)
    cells = cells.permute(0, 2, 4, 1, 3).reshape(3 * stride * stride, height, width)
    cells = cells - cells.mean(dim=0, keepdim=True)
    return torch.nn.functional.normalize(cells, dim=0)


def model_features(model: FeatureModel, image: np.ndarray) -> torch.Tensor:
    """Dense features ``(C, h, w)`` of one ``(H, W, 3)`` uint8 image, on the CPU."""
    return model.dense(rgb_to_batch(image))[0].cpu()


def evaluate_model(model: FeatureModel, left: np.ndarray, right: np.ndarray,
                   disparity: np.ndarray) -> CorrespondenceResult:
    """Correspondence accuracy of ``model`` on one rectified pair."""
    return correspondence_accuracy(model_features(model, left), model_features(model, right), disparity, model.stride)


def evaluate_pixel_patches(left: np.ndarray, right: np.ndarray, disparity: np.ndarray,
                           stride: int) -> CorrespondenceResult:
    """Correspondence accuracy of the raw-pixel baseline at ``stride``."""
    return correspondence_accuracy(pixel_patch_features(left, stride), pixel_patch_features(right, stride),
                                   disparity, stride)
