"""Trajectory errors: absolute trajectory error (ATE) and relative pose error (RPE).

Both take associated trajectories: pose k of the estimate corresponds to pose k of the
reference (see ``associate``); ``evaluate`` associates, aligns and scores in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from kestrel_tools.trajectory.align import align, apply_alignment
from kestrel_tools.trajectory.associate import associate
from kestrel_tools.trajectory.types import Trajectory

DELTA_UNITS = ("frames", "m", "s")


def ate_rmse(est_positions: np.ndarray, ref_positions: np.ndarray, mode: str = "se3") -> float:
    """Root mean square of the position errors after aligning the estimate to the reference.

    Args:
        est_positions: (N, 3) associated estimated positions, metres.
        ref_positions: (N, 3) reference positions, metres.
        mode: alignment, ``se3``, ``sim3`` or ``none`` (see ``align``).
    """
    rotation, translation, scale = align(est_positions, ref_positions, mode)
    residual = np.asarray(ref_positions) - apply_alignment(est_positions, rotation, translation,
                                                           scale)
    return float(np.sqrt((residual ** 2).sum(axis=1).mean()))


def delta_pairs(ref: Trajectory, delta: float,
                unit: str = "frames") -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of poses ``delta`` apart along the reference.

    Args:
        ref: (N poses) the reference.
        delta: > 0. ``frames``: j = i + delta (an integer). ``m``: j is the first pose at least
            delta metres further along the reference path. ``s``: j is the first pose at least
            delta seconds later.
        unit: ``frames``, ``m`` or ``s``.

    Returns:
        (P,) first and (P,) second indices; poses with no partner that far ahead are left out.
    """
    if unit not in DELTA_UNITS:
        raise ValueError(f"delta unit must be one of {', '.join(DELTA_UNITS)}, got {unit!r}")
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    n = len(ref)
    if unit == "frames":
        if delta != int(delta):
            raise ValueError(f"a delta in frames must be a whole number, got {delta}")
        first = np.arange(max(n - int(delta), 0))
        return first, first + int(delta)
    if unit == "m":
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ref.positions, axis=0),
                                                                axis=1))])
    else:
        along = ref.times
    second = np.searchsorted(along, along + delta, side="left")
    first = np.flatnonzero(second < n)
    return first, second[first]


@dataclass(frozen=True)
class RelativeError:
    """RPE summary.

    Attributes:
        trans_rmse: RMS translation error of the relative poses, metres.
        rot_rmse_deg: RMS rotation angle of the relative pose errors, degrees.
        pairs: number of relative poses compared.
    """

    trans_rmse: float
    rot_rmse_deg: float
    pairs: int


def _rigid_inverse(poses: np.ndarray) -> np.ndarray:
    """(P, 4, 4) inverses of (P, 4, 4) rigid transforms: [R^T | -R^T t]."""
    inverse = np.zeros_like(poses)
    rotation_t = np.transpose(poses[:, :3, :3], (0, 2, 1))
    inverse[:, :3, :3] = rotation_t
    inverse[:, :3, 3] = -np.einsum("pij,pj->pi", rotation_t, poses[:, :3, 3])
    inverse[:, 3, 3] = 1.0
    return inverse


def rpe_rmse(est: Trajectory, ref: Trajectory, delta: float = 1,
             unit: str = "frames") -> RelativeError:
    """Relative pose error between associated trajectories.

    For each pair (i, j) from ``delta_pairs(ref, delta, unit)`` the error is
    ``E = inv(inv(G_i) G_j) inv(P_i) P_j`` (G reference, P estimate, 4x4 poses): its
    translation norm and its rotation angle. RPE does not depend on where the estimate's
    world frame is, but it does on its scale: apply a sim3 alignment first for monocular
    estimates.

    Args:
        est: N estimated poses, pose k associated with pose k of ``ref``.
        ref: N reference poses.
        delta: separation of the compared poses, in ``unit``.
        unit: ``frames``, ``m`` (path length along the reference) or ``s``.
    """
    if len(est) != len(ref):
        raise ValueError(f"RPE needs associated trajectories, got {len(est)} and {len(ref)} poses")
    first, second = delta_pairs(ref, delta, unit)
    if first.size == 0:
        raise ValueError(f"no two poses are {delta} {unit} apart among the {len(ref)} pose pairs")
    est_poses, ref_poses = est.matrices(), ref.matrices()
    est_rel = _rigid_inverse(est_poses[first]) @ est_poses[second]
    ref_rel = _rigid_inverse(ref_poses[first]) @ ref_poses[second]
    error = _rigid_inverse(ref_rel) @ est_rel
    translation = np.linalg.norm(error[:, :3, 3], axis=1)
    angle = np.degrees(Rotation.from_matrix(error[:, :3, :3]).magnitude())
    return RelativeError(float(np.sqrt((translation ** 2).mean())),
                         float(np.sqrt((angle ** 2).mean())), int(first.size))


@dataclass(frozen=True)
class TrajectoryErrors:
    """What ``evaluate`` found.

    Attributes:
        ate_rmse: metres, after alignment.
        rpe_rmse: metres, relative translation error (on the aligned, i.e. scaled, estimate).
        rpe_rot_deg: degrees, relative rotation error.
        pairs: associated pose pairs.
        align: the alignment mode.
        scale, rotation (3, 3), translation (3,): the alignment applied to the estimate.
        delta, delta_unit: the RPE separation.
    """

    ate_rmse: float
    rpe_rmse: float
    rpe_rot_deg: float
    pairs: int
    align: str
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    delta: float
    delta_unit: str

    def summary(self) -> dict[str, float | int | str]:
        """The JSON-ready numbers."""
        return {"ate_rmse": self.ate_rmse, "rpe_rmse": self.rpe_rmse,
                "rpe_rot_deg": self.rpe_rot_deg, "pairs": self.pairs, "align": self.align,
                "scale": self.scale, "delta": self.delta, "delta_unit": self.delta_unit}


def evaluate(est: Trajectory, ref: Trajectory, align_mode: str = "se3", max_diff: float = 0.02,
             delta: float = 1, delta_unit: str = "frames") -> TrajectoryErrors:
    """Associate by time, align the estimate onto the reference, then ATE and RPE.

    Raises:
        ValueError: no pose pairs within ``max_diff``, too few for the alignment, or a delta
            longer than the trajectories.
    """
    pairs = associate(est, ref, max_diff)
    if len(pairs) == 0:
        raise ValueError(f"no pose pairs within {max_diff} s: the estimate spans "
                         f"[{est.times[0]:.6f}, {est.times[-1]:.6f}] s and the reference "
                         f"[{ref.times[0]:.6f}, {ref.times[-1]:.6f}] s")
    matched_est, matched_ref = est.take(pairs[:, 0]), ref.take(pairs[:, 1])
    rotation, translation, scale = align(matched_est.positions, matched_ref.positions, align_mode)
    aligned = matched_est.transformed(rotation, translation, scale)
    residual = matched_ref.positions - aligned.positions
    ate = float(np.sqrt((residual ** 2).sum(axis=1).mean()))
    relative = rpe_rmse(aligned, matched_ref, delta, delta_unit)
    return TrajectoryErrors(ate, relative.trans_rmse, relative.rot_rmse_deg, len(pairs),
                            align_mode, scale, rotation, translation, float(delta), delta_unit)
