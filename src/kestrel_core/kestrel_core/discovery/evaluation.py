"""Evaluation of object discovery without instance labels: a foreground object from real
depth, best-mask IoU (the CorLoc idea), and a k-means baseline on the same features.

Foreground from disparity (:func:`foreground_from_disparity`), for a scene with one near
object standing on a floor, like Middlebury Motorcycle:

1. Floor. A plane in 3D is affine in disparity space, ``d = a u + b v + c``. It is fitted by
   least squares to the valid disparities of the bottom ``floor_rows`` share of the image
   (the floor in front of the object), then refitted twice to the pixels of the lower half
   within ``1 px`` of it. Valid pixels within ``floor_tolerance`` px of the plane are floor.
2. Near. Otsu's threshold (OpenCV, on disparities rounded to whole pixels and clipped to
   0..255) splits the remaining valid disparities into near and far; near pixels are
   those above it.
3. Object. The largest 8-connected near component, with its holes filled (pixels without
   ground truth inside the object, e.g. occlusions, count as object).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F

__all__ = ["foreground_from_disparity", "mask_iou", "best_iou", "kmeans_masks", "largest_component"]


def largest_component(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """``(H, W)`` bool: the largest 4- or 8-connected component of ``mask`` (all False if none)."""
    structure = np.ones((3, 3), bool) if connectivity == 8 else None
    labels, count = scipy.ndimage.label(mask, structure)
    if count == 0:
        return np.zeros_like(mask, bool)
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


def _floor_plane(disparity: np.ndarray, valid: np.ndarray, floor_rows: float) -> np.ndarray:
    """``(H, W)`` disparity of the floor plane fitted as in the module docstring."""
    height, width = disparity.shape
    rows, cols = np.mgrid[0:height, 0:width]
    design = np.stack([cols, rows, np.ones_like(cols)], axis=-1).astype(np.float64)
    chosen = valid & (rows >= int((1.0 - floor_rows) * height))
    if chosen.sum() < 3:
        raise ValueError("too few valid disparities in the bottom rows to fit a floor plane")
    plane = design @ np.linalg.lstsq(design[chosen], disparity[chosen], rcond=None)[0]
    for _ in range(2):
        chosen = valid & (rows >= height // 2) & (np.abs(disparity - plane) < 1.0)
        if chosen.sum() < 3:
            break
        plane = design @ np.linalg.lstsq(design[chosen], disparity[chosen], rcond=None)[0]
    return plane


def foreground_from_disparity(disparity: np.ndarray, floor_rows: float = 0.1,
                              floor_tolerance: float = 2.0) -> np.ndarray:
    """The near object of a ground-truth disparity map (rule in the module docstring).

    Args:
        disparity: ``(H, W)`` float disparity in pixels, NaN where unknown.
        floor_rows: share of the image height, from the bottom, that shows only floor.
        floor_tolerance: largest distance in pixels of disparity from the floor plane.

    Returns:
        ``(H, W)`` bool object mask.
    """
    if disparity.ndim != 2:
        raise ValueError(f"disparity must be (H, W), got {disparity.shape}")
    valid = np.isfinite(disparity)
    rest = valid & ~(np.abs(disparity - _floor_plane(disparity, valid, floor_rows)) <= floor_tolerance)
    if not rest.any():
        raise ValueError("no valid disparity off the floor")
    levels = np.clip(np.rint(disparity[rest]), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    near = rest & (disparity > threshold)
    return scipy.ndimage.binary_fill_holes(largest_component(near))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(H, W)`` bool masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def best_iou(instances: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Best IoU of any object of an instance map ``(H, W)`` (ids ``1..K``) with the
    ``(H, W)`` bool ``truth``, and that object's id (0 and 0 when there is none)."""
    if instances.shape != truth.shape:
        raise ValueError(f"instance map {instances.shape} and truth {truth.shape} differ in size")
    ious = [(mask_iou(instances == k, truth), int(k)) for k in np.unique(instances) if k != 0]
    return max(ious, default=(0.0, 0))


def kmeans_masks(keys: torch.Tensor, grid: tuple[int, int], clusters: int = 2,
                 iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Baseline: spherical k-means of the centred unit keys into ``clusters`` groups.

    Args:
        keys: ``(N, D)`` patch keys, ``N = h * w`` row-major.
        grid: ``(h, w)``.
        clusters: k.
        iterations: Lloyd iterations (vectorised assignment and update).
        seed: initial centres are ``clusters`` distinct tokens drawn with this seed.

    Returns:
        ``(clusters, h, w)`` bool token masks, one per cluster (the largest 4-connected
        component of each, like MaskCut's masks).
    """
    h, w = grid
    unit = F.normalize(keys.float() - keys.float().mean(dim=0, keepdim=True), dim=1)
    generator = torch.Generator().manual_seed(seed)
    centres = unit[torch.randperm(unit.shape[0], generator=generator)[:clusters].to(unit.device)]
    for _ in range(iterations):
        assignment = (unit @ centres.T).argmax(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, assignment, unit)
        centres = torch.where(sums.norm(dim=1, keepdim=True) > 0, F.normalize(sums, dim=1), centres)
    labels = (unit @ centres.T).argmax(dim=1).cpu().numpy().reshape(h, w)
    return np.stack([largest_component(labels == c, connectivity=4) for c in range(clusters)])
