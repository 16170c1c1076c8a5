"""Optical flow induced by camera motion over a static scene with known depth.

The camera model is a pinhole in the REP-103 optical frame (x right, y down, z forward)
with pixel centres at integer coordinates, the convention of
:mod:`kestrel_core.geometry.warp`. The result can be fed straight to
:func:`kestrel_core.geometry.warp.backward_warp` to synthesise frame 1 from frame 2,
which is what self-supervised depth and pose training does.
"""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.geometry.warp import pixel_grid

__all__ = ["rigid_flow"]


def _batched_matrix(value: object, size: int, batch: int, like: torch.Tensor, name: str) -> torch.Tensor:
    """Accept ``(size, size)`` or ``(B, size, size)`` numpy/torch; return ``(B, size, size)``."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(value).__name__}")
    matrix = value.to(device=like.device, dtype=like.dtype)
    if matrix.shape == (size, size):
        matrix = matrix.unsqueeze(0)
    if matrix.ndim != 3 or matrix.shape[1:] != (size, size) or matrix.shape[0] not in (1, batch):
        raise ValueError(
            f"{name} must have shape ({size}, {size}) or ({batch}, {size}, {size}), got {tuple(value.shape)}"
        )
    return matrix.expand(batch, size, size)


def rigid_flow(depth: torch.Tensor, K: object, T_2_1: object) -> torch.Tensor:
    """Flow from frame 1 to frame 2 of the pixels of frame 1, given their depth.

    Every pixel ``p = (x, y)`` of frame 1 is back-projected with its depth ``Z``,
    ``P_1 = Z K^-1 [x, y, 1]^T``, moved into frame 2 with ``P_2 = R P_1 + t`` and
    projected, ``p' = pi(K P_2)``; the flow is ``p' - p``.

    Args:
        depth: ``(B, 1, H, W)`` floating-point depth of frame 1 in metres (z along the
            optical axis, not range). NaN (or ``<= 0``) marks unknown depth.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics (numpy or torch), shared by both frames.
        T_2_1: ``(4, 4)`` or ``(B, 4, 4)`` rigid transform taking points expressed in
            frame 1 to frame 2 (the pose of frame 1 in frame 2), numpy or torch.

    Returns:
        ``(B, 2, H, W)`` flow ``(u, v)`` in pixels, ``depth.dtype`` on ``depth.device``.
        NaN where the depth is unknown or the point lands at or behind the plane of
        camera 2 (``Z_2 <= 0``). Differentiable with respect to ``depth``, ``K`` and
        ``T_2_1`` where it is finite.

    Raises:
        ValueError: bad shapes or types, or a singular ``K``.
    """
    if not isinstance(depth, torch.Tensor) or depth.ndim != 4 or depth.shape[1] != 1:
        shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
        raise ValueError(f"depth must be a (B, 1, H, W) torch tensor, got {shape}")
    if not depth.is_floating_point():
        raise ValueError(f"depth must be floating point, got {depth.dtype}")
    batch, _, height, width = depth.shape
    intrinsics = _batched_matrix(K, 3, batch, depth, "K")
    transform = _batched_matrix(T_2_1, 4, batch, depth, "T_2_1")
    if not bool((torch.linalg.det(intrinsics).abs() > 0).all()):
        raise ValueError("K is singular")

    pixels = pixel_grid(height, width, depth.device, depth.dtype).reshape(1, 2, -1)
    homogeneous = torch.cat((pixels, torch.ones_like(pixels[:, :1])), dim=1)  # (1, 3, N)
    rays = torch.linalg.solve(intrinsics, homogeneous.expand(batch, 3, -1))  # K^-1 [x y 1]^T
    known = torch.isfinite(depth) & (depth > 0)
    z1 = torch.where(known, depth, torch.ones((), dtype=depth.dtype, device=depth.device)).reshape(batch, 1, -1)
    points_1 = rays * z1
    points_2 = transform[:, :3, :3] @ points_1 + transform[:, :3, 3:]
    projected = intrinsics @ points_2
    z2 = projected[:, 2:3]
    in_front = z2 > 0
    safe_z2 = torch.where(in_front, z2, torch.ones((), dtype=z2.dtype, device=z2.device))
    flow = (projected[:, :2] / safe_z2 - pixels).reshape(batch, 2, height, width)
    usable = known & in_front.reshape(batch, 1, height, width)
    return torch.where(usable, flow, torch.full((), float("nan"), dtype=flow.dtype, device=flow.device))
