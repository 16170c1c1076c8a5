"""Projection of 3D points (e.g. a LiDAR scan) into a calibrated camera image.

Which intrinsics are used:

* ``use_distortion=True`` and the camera has a non-zero ``D``: the *raw* image model, i.e.
  the point in the camera optical frame is normalised by ``z``, distorted with ``D``
  (``plumb_bob``, ``rational_polynomial`` or ``equidistant``) and mapped with ``K``.
  ``R`` and ``P`` are ignored.
* otherwise (``D`` all zero, or ``use_distortion=False``): the *rectified* image model of
  sensor_msgs/CameraInfo: ``[u w, v w, w] = P @ [R @ X; 1]``. For the left camera of a
  rectified pair this is ``K'`` of the rectified image; for a plain undistorted camera
  ``P = [K | 0]`` and ``R = I``.

Pixel convention: pixel centres at integer coordinates, ``u`` along columns, ``v`` along
rows; a point is inside the image when ``-0.5 <= u < W - 0.5`` and ``-0.5 <= v < H - 0.5``
(so ``round(uv)`` is a valid pixel index).

Everything is vectorised torch and runs on the device of ``points``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kestrel_core.geometry.camera import PinholeCamera

__all__ = ["Projection", "project_points", "camera_uses_distortion", "max_monotonic_radius", "to_tensor"]


@dataclass(frozen=True)
class Projection:
    """Result of :func:`project_points`.

    Attributes:
        uv: ``(N, 2)`` float pixel coordinates ``(u, v)``; meaningless where not visible.
        depth: ``(N,)`` metres along the optical axis (``z`` in the frame used to project:
            the camera optical frame, or the rectified frame ``R @ X`` for the rectified
            model).
        visible: ``(N,)`` bool: in front of the camera (``z > min_depth``) and inside the
            image.
        height, width: image size the projection was made for.
    """

    uv: torch.Tensor
    depth: torch.Tensor
    visible: torch.Tensor
    height: int
    width: int


def to_tensor(value, like: torch.Tensor) -> torch.Tensor:
    """``value`` (numpy array, list or tensor) as a tensor with ``like``'s dtype and device."""
    return torch.as_tensor(np.array(value) if not isinstance(value, torch.Tensor) else value).to(
        device=like.device, dtype=like.dtype
    )


def camera_uses_distortion(camera: PinholeCamera, use_distortion: bool = True) -> bool:
    """True when :func:`project_points` applies ``D`` and ``K`` (the raw image model)."""
    return bool(use_distortion and camera.distortion_model and camera.D.size and np.any(camera.D != 0))


def _check_points(points: torch.Tensor) -> torch.Tensor:
    if not isinstance(points, torch.Tensor):
        points = torch.as_tensor(np.asarray(points))
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
    if not points.is_floating_point():
        points = points.float()
    return points


def _check_transform(transform, points: torch.Tensor, name: str) -> torch.Tensor:
    T = to_tensor(transform, points)
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be (4, 4), got {tuple(T.shape)}")
    return T


def _coefficients(camera: PinholeCamera, count: int, like: torch.Tensor) -> list[torch.Tensor]:
    d = np.zeros(count)
    n = min(count, camera.D.size)
    d[:n] = camera.D[:n]
    t = to_tensor(d, like)
    return [t[i] for i in range(count)]


def _distort(x: torch.Tensor, y: torch.Tensor, camera: PinholeCamera) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the camera's distortion model to normalised coordinates ``x = X/Z, y = Y/Z``."""
    model = camera.distortion_model
    if model == "equidistant":
        k1, k2, k3, k4 = _coefficients(camera, 4, x)
        r = torch.sqrt(x * x + y * y)
        theta = torch.atan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        # theta_d / r -> 1 as r -> 0
        scale = torch.where(r > 1e-12, theta_d / r.clamp_min(1e-12), torch.ones_like(r))
        return x * scale, y * scale
    if model == "rational_polynomial":
        k1, k2, p1, p2, k3, k4, k5, k6 = _coefficients(camera, 8, x)
    else:  # plumb_bob
        k1, k2, p1, p2, k3 = _coefficients(camera, 5, x)
        k4 = k5 = k6 = torch.zeros((), dtype=x.dtype, device=x.device)
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy = x * y
    xd = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    return xd, yd


def _radial_map(camera: PinholeCamera, r: np.ndarray) -> np.ndarray:
    """Distorted radius as a function of the undistorted normalised radius (tangential
    terms left out), numpy float64."""
    d = np.zeros(8)
    d[: min(8, camera.D.size)] = camera.D[:8]
    if camera.distortion_model == "equidistant":
        theta = np.arctan(r)
        t2 = theta * theta
        return theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
    k1, k2, _, _, k3, k4, k5, k6 = d
    if camera.distortion_model != "rational_polynomial":
        k4 = k5 = k6 = 0.0
    r2 = r * r
    return r * (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))


def max_monotonic_radius(camera: PinholeCamera, limit: float = 20.0, samples: int = 20001) -> float:
    """Largest undistorted normalised radius ``sqrt(x^2 + y^2)`` up to which the radial
    distortion is increasing (``limit`` if it never folds back within it).

    Beyond it a polynomial model folds back and would place points from outside the
    field of view inside the image, so :func:`project_points` culls them.
    """
    r = np.linspace(0.0, limit, samples)
    rd = _radial_map(camera, r)
    bad = np.nonzero((np.diff(rd) <= 0) | ~np.isfinite(rd[1:]))[0]
    return float(r[bad[0]]) if bad.size else float(limit)


def project_points(
    points: torch.Tensor,
    T_cam_lidar,
    camera: PinholeCamera,
    use_distortion: bool = True,
    min_depth: float = 1e-3,
) -> Projection:
    """Project points given in the LiDAR (or any source) frame into the camera image.

    Args:
        points: ``(N, 3)`` float tensor (any device) in the source frame.
        T_cam_lidar: ``(4, 4)`` rigid transform taking source-frame coordinates to the
            camera optical frame (x right, y down, z forward), numpy or torch.
        camera: the calibrated camera; see the module docstring for which of ``K`` or
            ``P`` is used.
        use_distortion: apply ``D`` (with ``K``) when the camera has non-zero ``D``.
        min_depth: points with ``z <= min_depth`` (metres) are culled. With distortion,
            points beyond :func:`max_monotonic_radius` (where the model folds back) are
            culled too.

    Returns:
        :class:`Projection` with ``uv (N, 2)``, ``depth (N,)`` and ``visible (N,)``, on
        the device and in the floating dtype of ``points``.
    """
    if not min_depth >= 0:
        raise ValueError(f"min_depth must be >= 0, got {min_depth}")
    points = _check_points(points)
    T = _check_transform(T_cam_lidar, points, "T_cam_lidar")
    cam = points @ T[:3, :3].T + T[:3, 3]
    if camera_uses_distortion(camera, use_distortion):
        z = cam[:, 2]
        in_front = z > min_depth
        safe_z = torch.where(in_front, z, torch.ones_like(z))
        x, y = cam[:, 0] / safe_z, cam[:, 1] / safe_z
        in_front = in_front & (torch.hypot(x, y) < max_monotonic_radius(camera))
        xd, yd = _distort(x, y, camera)
        K = to_tensor(camera.K, points)
        u = K[0, 0] * xd + K[0, 1] * yd + K[0, 2]
        v = K[1, 1] * yd + K[1, 2]
        depth = z
    else:
        R = to_tensor(camera.R, points)
        P = to_tensor(camera.P, points)
        rect = cam @ R.T
        homog = rect @ P[:, :3].T + P[:, 3]
        depth = rect[:, 2]
        w = homog[:, 2]
        in_front = (depth > min_depth) & (w > 0)
        safe_w = torch.where(in_front, w, torch.ones_like(w))
        u = homog[:, 0] / safe_w
        v = homog[:, 1] / safe_w
    uv = torch.stack((u, v), dim=1)
    inside = (u >= -0.5) & (u < camera.width - 0.5) & (v >= -0.5) & (v < camera.height - 0.5)
    visible = in_front & inside & torch.isfinite(uv).all(dim=1)
    return Projection(uv=uv, depth=depth, visible=visible, height=camera.height, width=camera.width)
