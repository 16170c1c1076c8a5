"""Rectified stereo geometry: disparity <-> depth, and disparity -> 3D points.

All functions accept numpy arrays or torch tensors (any device) and return the same
kind. Conventions (REP-103 optical frame of the *left* rectified camera): x right,
y down, z forward; disparity ``d = x_left - x_right`` in pixels and
``Z = focal * baseline / (d + doffs)`` with ``doffs = cx_right - cx_left``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from kestrel_core.geometry.camera import StereoRig

__all__ = ["disparity_to_depth", "depth_to_disparity", "disparity_to_points"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def disparity_to_depth(disparity: ArrayT, focal: float, baseline: float, doffs: float = 0.0) -> ArrayT:
    """Depth ``Z = focal * baseline / (disparity + doffs)``.

    Args:
        disparity: disparity in pixels, any shape; numpy array or torch tensor. NaN
            marks invalid pixels.
        focal: rectified focal length in pixels (> 0).
        baseline: baseline in metres (> 0).
        doffs: ``cx_right - cx_left`` in pixels.

    Returns:
        Depth in metres, same kind and shape as ``disparity`` (float32 for integer or
        float32 input, float64 for float64 input); NaN where the disparity is NaN or
        ``disparity + doffs <= 0``.

    Raises:
        ValueError: non-positive focal length or baseline, unsupported input type.
    """
    _check_rig_numbers(focal, baseline, doffs)
    d = _as_float(disparity, "disparity")
    shifted = d + doffs
    usable = shifted > 0  # False for NaN
    safe = _where(usable, shifted, 1.0)
    return _where(usable, (focal * baseline) / safe, float("nan"))


def depth_to_disparity(depth: ArrayT, focal: float, baseline: float, doffs: float = 0.0) -> ArrayT:
    """Disparity ``d = focal * baseline / depth - doffs``, the inverse of
    :func:`disparity_to_depth`.

    Args:
        depth: depth in metres, any shape, numpy or torch; NaN marks invalid pixels.
        focal, baseline, doffs: as in :func:`disparity_to_depth`.

    Returns:
        Disparity in pixels, same kind and shape; NaN where the depth is NaN or
        ``<= 0``. An infinite depth maps to ``-doffs``.
    """
    _check_rig_numbers(focal, baseline, doffs)
    z = _as_float(depth, "depth")
    usable = z > 0  # False for NaN
    safe = _where(usable, z, 1.0)
    return _where(usable, (focal * baseline) / safe - doffs, float("nan"))


def disparity_to_points(disparity: ArrayT, rig: StereoRig) -> ArrayT:
    """Back-project a left-image disparity map to 3D points in the left optical frame.

    ``Z = f B / (d + doffs)``, ``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy`` with the
    left rectified intrinsics of ``rig`` (``u`` column, ``v`` row, pixel centres at
    integer coordinates).

    Args:
        disparity: ``(H, W)`` disparity in pixels (numpy or torch), NaN where invalid;
            ``(H, W)`` must match the rig's image size.
        rig: the rectified stereo rig.

    Returns:
        ``(H, W, 3)`` float32 XYZ in metres, same kind and device as ``disparity``;
        all three NaN where the depth is invalid.

    Raises:
        ValueError: wrong shape or type.
    """
    if not isinstance(rig, StereoRig):
        raise ValueError(f"rig must be a StereoRig, got {type(rig).__name__}")
    shape = tuple(disparity.shape) if isinstance(disparity, (np.ndarray, torch.Tensor)) else None
    if shape is None or len(shape) != 2:
        got = shape if shape else type(disparity).__name__
        raise ValueError(f"disparity must be an (H, W) array or tensor, got {got}")
    if shape != rig.left.size:
        raise ValueError(
            f"disparity is {shape[1]}x{shape[0]} but the rig's images are {rig.left.width}x{rig.left.height}"
        )
    disparity = _as_float(disparity, "disparity", force32=True)
    depth = disparity_to_depth(disparity, rig.focal, rig.baseline, rig.doffs)
    cam = rig.left
    height, width = shape
    if isinstance(depth, torch.Tensor):
        v, u = torch.meshgrid(
            torch.arange(height, dtype=torch.float32, device=depth.device),
            torch.arange(width, dtype=torch.float32, device=depth.device),
            indexing="ij",
        )
        x = (u - cam.cx) * depth / cam.fx
        y = (v - cam.cy) * depth / cam.fy
        return torch.stack((x, y, depth), dim=-1).to(torch.float32)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    x = (u - np.float32(cam.cx)) * depth / np.float32(cam.fx)
    y = (v - np.float32(cam.cy)) * depth / np.float32(cam.fy)
    return np.stack((x, y, depth), axis=-1).astype(np.float32)


def _check_rig_numbers(focal: float, baseline: float, doffs: float) -> None:
    for name, value in (("focal", focal), ("baseline", baseline), ("doffs", doffs)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if focal <= 0 or baseline <= 0:
        raise ValueError(f"focal and baseline must be positive, got focal={focal}, baseline={baseline}")


def _as_float(values: ArrayT, name: str, force32: bool = False) -> ArrayT:
    """Floating-point version of ``values`` (float64 kept unless ``force32``)."""
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.float64 and not force32:
            return values
        return values.to(torch.float32)
    if isinstance(values, np.ndarray):
        if values.dtype == np.float64 and not force32:
            return values
        return values.astype(np.float32)
    raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(values).__name__}")


def _where(condition: ArrayT, value: ArrayT, fill: float) -> ArrayT:
    """``value`` where ``condition`` holds, else ``fill`` (numpy or torch, dtype kept)."""
    if isinstance(value, torch.Tensor):
        return torch.where(condition, value, torch.full_like(value, fill))
    return np.where(condition, value, value.dtype.type(fill))
