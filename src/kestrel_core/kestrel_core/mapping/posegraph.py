"""Least-squares SE(2) pose-graph optimisation (Gauss-Newton on a sparse system).

Each edge ``(i, j)`` measures the pose of node j seen from node i, ``z = x_i^-1 x_j``, with
a (3, 3) information matrix. The error is ``e = (R_z^T (R_i^T (t_j - t_i) - t_z),
theta_j - theta_i - theta_z)`` (angle wrapped); node 0 is held fixed.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from kestrel_core.mapping.se2 import wrap_angle


def _errors_and_jacobians(poses: np.ndarray, first: np.ndarray, second: np.ndarray,
                          measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E, 3) errors and (E, 3, 3) Jacobians with respect to node i and to node j."""
    xi, xj = poses[first], poses[second]
    ci, si = np.cos(xi[:, 2]), np.sin(xi[:, 2])
    cz, sz = np.cos(measurements[:, 2]), np.sin(measurements[:, 2])
    delta = xj[:, :2] - xi[:, :2]
    local = np.stack([ci * delta[:, 0] + si * delta[:, 1], -si * delta[:, 0] + ci * delta[:, 1]], 1)
    d_local = np.stack([-si * delta[:, 0] + ci * delta[:, 1], -ci * delta[:, 0] - si * delta[:, 1]], 1)
    rz_t = np.stack([np.stack([cz, sz], 1), np.stack([-sz, cz], 1)], 1)  # (E, 2, 2) = R_z^T
    ri_t = np.stack([np.stack([ci, si], 1), np.stack([-si, ci], 1)], 1)  # R_i^T
    error = np.empty((len(first), 3))
    error[:, :2] = np.einsum("eab,eb->ea", rz_t, local - measurements[:, :2])
    error[:, 2] = wrap_angle(xj[:, 2] - xi[:, 2] - measurements[:, 2])
    jac_i = np.zeros((len(first), 3, 3))
    jac_j = np.zeros((len(first), 3, 3))
    rotation = rz_t @ ri_t
    jac_i[:, :2, :2] = -rotation
    jac_i[:, :2, 2] = np.einsum("eab,eb->ea", rz_t, d_local)
    jac_i[:, 2, 2] = -1.0
    jac_j[:, :2, :2] = rotation
    jac_j[:, 2, 2] = 1.0
    return error, jac_i, jac_j


def optimize_pose_graph(poses: np.ndarray, first: np.ndarray, second: np.ndarray,
                        measurements: np.ndarray, information: np.ndarray,
                        iterations: int = 20, tolerance: float = 1e-6) -> np.ndarray:
    """Poses that best agree with all edge measurements.

    Args:
        poses: (N, 3) initial ``(x, y, theta)``; node 0 is fixed.
        first, second: (E,) node indices i and j of each edge.
        measurements: (E, 3) ``x_i^-1 x_j``.
        information: (E, 3, 3) inverse covariances.
        iterations: at most this many Gauss-Newton steps.
        tolerance: stop when the largest update is below this.

    Returns:
        (N, 3) optimised poses (angles wrapped).
    """
    poses = np.array(poses, dtype=np.float64)
    count = len(poses)
    if count < 2 or len(first) == 0:
        return poses
    first, second = np.asarray(first), np.asarray(second)
    blocks_rows = np.stack([first, first, second, second], 1)  # (E, 4): ii, ij, ji, jj
    blocks_cols = np.stack([first, second, first, second], 1)
    offsets = np.arange(3)
    for _ in range(iterations):
        error, jac_i, jac_j = _errors_and_jacobians(poses, first, second, measurements)
        jacobians = (jac_i, jac_j)
        blocks = np.stack([jacobians[a].transpose(0, 2, 1) @ information @ jacobians[b]
                           for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))], 1)  # (E, 4, 3, 3)
        rows = (blocks_rows[:, :, None, None] * 3 + offsets[None, None, :, None]).repeat(3, 3)
        cols = (blocks_cols[:, :, None, None] * 3 + offsets[None, None, None, :]).repeat(3, 2)
        hessian = coo_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())),
                             shape=(3 * count, 3 * count)).tocsr()
        weighted = np.einsum("eab,eb->ea", information, error)
        gradient = np.zeros(3 * count)
        np.add.at(gradient, (first[:, None] * 3 + offsets).ravel(),
                  np.einsum("eba,eb->ea", jac_i, weighted).ravel())
        np.add.at(gradient, (second[:, None] * 3 + offsets).ravel(),
                  np.einsum("eba,eb->ea", jac_j, weighted).ravel())
        free = slice(3, None)  # node 0 is the gauge
        step = spsolve(hessian[free, free].tocsc(), -gradient[free])
        poses[1:] += step.reshape(-1, 3)
        poses[:, 2] = wrap_angle(poses[:, 2])
        if np.abs(step).max() < tolerance:
            break
    return poses
