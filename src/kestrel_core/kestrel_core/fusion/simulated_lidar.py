"""A simulated multi-beam LiDAR sampled from a dense camera depth map (e.g. Middlebury GT).

Frames and axes:

* camera *optical* frame (REP-103 ``_optical``): x right, y down, z forward;
* LiDAR frame (REP-103 body axes): x forward, y left, z up.

The optical-to-body axis change is ``x_b = z_o, y_b = -x_o, z_b = -y_o``
(:data:`R_BODY_FROM_OPTICAL`). The default LiDAR sits ``0.1 m`` above the camera with its
axes aligned to the camera's body axes (:func:`default_T_lidar_cam`).

How the scan is made: every valid depth pixel is back-projected with the rectified
intrinsics (``P``) and moved into the LiDAR frame; each point's elevation and azimuth are
measured *from the LiDAR origin*. The rays of the LiDAR are ``n_beams`` elevations evenly
spread over ``beam_fov_deg`` times azimuths every ``azimuth_step_deg``; for each ray the
pixel whose direction is closest keeps its point, if that angular error is below
``max_angle_error_deg`` (default: one pixel's angular pitch). The returned points are
exact back-projections of pixel centres, so re-projecting them lands on integer pixels.
Occlusions caused by the LiDAR-camera parallax are not modelled (the LiDAR "sees" what the
camera sees).

Vectorised torch; runs on the device of ``depth`` (numpy input -> CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from kestrel_core.geometry.camera import PinholeCamera

__all__ = [
    "R_BODY_FROM_OPTICAL",
    "SimulatedLidarConfig",
    "default_T_lidar_cam",
    "simulate_lidar_from_depth",
]

R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def default_T_lidar_cam(up_m: float = 0.1) -> np.ndarray:
    """``(4, 4)`` transform from the camera optical frame to a LiDAR ``up_m`` metres above
    the camera, axes REP-103 body (x forward, y left, z up), no relative rotation."""
    T = np.eye(4)
    T[:3, :3] = R_BODY_FROM_OPTICAL
    T[:3, 3] = (0.0, 0.0, -up_m)  # the camera origin seen from the LiDAR
    return T


@dataclass(frozen=True)
class SimulatedLidarConfig:
    """Beam pattern of :func:`simulate_lidar_from_depth` (angles in degrees)."""

    n_beams: int = 64
    beam_fov_deg: tuple[float, float] = (-15.0, 15.0)
    azimuth_step_deg: float = 0.2
    max_angle_error_deg: float | None = None

    def __post_init__(self) -> None:
        if self.n_beams < 1:
            raise ValueError(f"n_beams must be >= 1, got {self.n_beams}")
        low, high = self.beam_fov_deg
        if not -90.0 < low <= high < 90.0 or (self.n_beams > 1 and low == high):
            raise ValueError(f"beam_fov_deg must be (low, high) with -90 < low < high < 90, got {self.beam_fov_deg}")
        if not 0.0 < self.azimuth_step_deg <= 90.0:
            raise ValueError(f"azimuth_step_deg must be in (0, 90], got {self.azimuth_step_deg}")
        if self.max_angle_error_deg is not None and not self.max_angle_error_deg > 0:
            raise ValueError(f"max_angle_error_deg must be > 0, got {self.max_angle_error_deg}")


def simulate_lidar_from_depth(
    depth,
    camera: PinholeCamera,
    n_beams: int = 64,
    beam_fov_deg: tuple[float, float] = (-15.0, 15.0),
    azimuth_step_deg: float = 0.2,
    T_lidar_cam=None,
    max_angle_error_deg: float | None = None,
) -> torch.Tensor:
    """Sample a multi-beam LiDAR scan from a dense depth map.

    Args:
        depth: ``(H, W)`` depth in metres along the optical axis of ``camera``'s rectified
            image (numpy or torch); NaN, inf or <= 0 where unknown.
        camera: the camera of ``depth`` (its ``P`` intrinsics are used); size must match.
        n_beams, beam_fov_deg, azimuth_step_deg, max_angle_error_deg: the beam pattern,
            see :class:`SimulatedLidarConfig` and the module docstring.
        T_lidar_cam: ``(4, 4)`` transform from the camera optical frame to the LiDAR frame;
            default :func:`default_T_lidar_cam` (0.1 m up, REP-103 axes).

    Returns:
        ``(N, 3)`` float32 points in the LiDAR frame on ``depth``'s device, ordered by
        beam (bottom to top) then azimuth.
    """
    config = SimulatedLidarConfig(n_beams, tuple(beam_fov_deg), azimuth_step_deg, max_angle_error_deg)
    if not isinstance(depth, torch.Tensor):
        depth = torch.as_tensor(np.asarray(depth))
    if depth.shape != (camera.height, camera.width):
        raise ValueError(f"depth is {tuple(depth.shape)} but the camera is {camera.height}x{camera.width}")
    z = depth.to(torch.float64)
    device = z.device
    if T_lidar_cam is None:
        T_lidar_cam = default_T_lidar_cam()
    if not isinstance(T_lidar_cam, torch.Tensor):
        T_lidar_cam = torch.as_tensor(np.array(T_lidar_cam, dtype=np.float64))
    T = T_lidar_cam.to(device=device, dtype=torch.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T_lidar_cam must be (4, 4), got {tuple(T.shape)}")

    valid = torch.isfinite(z) & (z > 0)
    v, u = torch.nonzero(valid, as_tuple=True)
    zv = z[v, u]
    x = (u.to(torch.float64) - camera.cx) * zv / camera.fx
    y = (v.to(torch.float64) - camera.cy) * zv / camera.fy
    optical = torch.stack((x, y, zv), dim=1)
    lidar = optical @ T[:3, :3].T + T[:3, 3]

    horizontal = torch.hypot(lidar[:, 0], lidar[:, 1])
    elevation = torch.rad2deg(torch.atan2(lidar[:, 2], horizontal))
    azimuth = torch.rad2deg(torch.atan2(lidar[:, 1], lidar[:, 0]))
    low, high = config.beam_fov_deg
    beam_step = (high - low) / (config.n_beams - 1) if config.n_beams > 1 else 1.0
    beam = torch.round((elevation - low) / beam_step)
    az_bin = torch.round(azimuth / config.azimuth_step_deg)
    d_elev = elevation - (low + beam * beam_step)
    d_az = (azimuth - az_bin * config.azimuth_step_deg) * torch.cos(torch.deg2rad(elevation))
    error = torch.hypot(d_elev, d_az)
    tolerance = config.max_angle_error_deg
    if tolerance is None:
        tolerance = math.degrees(1.0 / min(camera.fx, camera.fy))
    candidate = (beam >= 0) & (beam < config.n_beams) & (error <= tolerance)

    # one point per ray: the pixel with the smallest angular error wins (ties: lower index)
    n_az = int(round(360.0 / config.azimuth_step_deg)) + 2
    cell = (beam * n_az + az_bin + n_az // 2).long()
    cell = cell[candidate]
    err_c = error[candidate]
    index = torch.arange(err_c.numel(), device=device)
    n_cells = config.n_beams * n_az
    best = torch.full((n_cells,), float("inf"), dtype=err_c.dtype, device=device)
    best.scatter_reduce_(0, cell, err_c, reduce="amin", include_self=True)
    is_best = err_c == best[cell]
    first = torch.full((n_cells,), err_c.numel(), dtype=torch.long, device=device)
    first.scatter_reduce_(0, cell[is_best], index[is_best], reduce="amin", include_self=True)
    winner = is_best & (index == first[cell])
    chosen_cells = cell[winner]
    points = lidar[candidate][winner]
    order = torch.argsort(chosen_cells)
    return points[order].to(torch.float32)
