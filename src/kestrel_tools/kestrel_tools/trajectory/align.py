"""Closed-form least-squares alignment of two point sets (Umeyama, PAMI 1991).

Finds the similarity ``y ~ s R x + t`` minimising ``sum_i |y_i - (s R x_i + t)|^2``:

    mu_x, mu_y       = means of x and y
    Sigma            = (1/N) sum_i (y_i - mu_y)(x_i - mu_x)^T        (3x3 cross-covariance)
    U D V^T          = svd(Sigma)
    S                = diag(1, 1, sign(det U det V))                 (no reflection)
    R                = U S V^T
    s                = trace(D S) / sigma_x^2,  sigma_x^2 = (1/N) sum_i |x_i - mu_x|^2
    t                = mu_y - s R mu_x

With ``se3`` the scale is fixed at 1 (R and t stay the least-squares optimum for s = 1).
"""

from __future__ import annotations

import numpy as np

ALIGN_MODES = ("se3", "sim3", "none")


def align(est_positions: np.ndarray, ref_positions: np.ndarray,
          mode: str = "se3") -> tuple[np.ndarray, np.ndarray, float]:
    """The transform that best maps estimated positions onto reference positions.

    Args:
        est_positions: (N, 3) estimated positions, associated one to one with...
        ref_positions: (N, 3) reference positions.
        mode: ``se3`` (rotation and translation), ``sim3`` (and scale) or ``none``.

    Returns:
        R (3, 3), t (3,), s: apply as ``s * est_positions @ R.T + t``.

    Raises:
        ValueError: unknown mode, mismatched shapes, fewer than 3 points, or points that lie on
            a line (the rotation about it is then undetermined).
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"align mode must be one of {', '.join(ALIGN_MODES)}, got {mode!r}")
    x = np.asarray(est_positions, dtype=np.float64)
    y = np.asarray(ref_positions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape != y.shape:
        raise ValueError(f"positions must both be (N, 3), got {x.shape} and {y.shape}")
    if mode == "none":
        return np.eye(3), np.zeros(3), 1.0
    if len(x) < 3:
        raise ValueError(f"{mode} alignment needs at least 3 pose pairs, got {len(x)}")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    sigma = yc.T @ xc / len(x)
    u, d, vt = np.linalg.svd(sigma)
    if d[1] <= 1e-12 * max(d[0], 1e-300):
        raise ValueError(f"cannot {mode}-align: the positions lie on a line or a point")
    signs = np.array([1.0, 1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = (u * signs) @ vt
    scale = 1.0
    if mode == "sim3":
        variance = (xc ** 2).sum(axis=1).mean()
        scale = float((d * signs).sum() / variance)
    translation = mu_y - scale * rotation @ mu_x
    return rotation, translation, scale


def apply_alignment(positions: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                    scale: float) -> np.ndarray:
    """(N, 3) ``s R p + t`` for each row p of ``positions``."""
    return scale * np.asarray(positions, dtype=np.float64) @ rotation.T + translation
