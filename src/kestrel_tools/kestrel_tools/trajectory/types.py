"""``Trajectory``: timestamped 6-DoF poses as arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class Trajectory:
    """Poses of a body frame in a world frame, one per timestamp.

    A pose maps body coordinates to world coordinates: ``x_world = R(q) x_body + p``.

    Attributes:
        times: (N,) float64 seconds, non-decreasing.
        positions: (N, 3) float64 metres.
        quaternions: (N, 4) float64 unit quaternions, scalar last (x, y, z, w) as in TUM files,
            ROS messages and scipy.
    """

    times: np.ndarray
    positions: np.ndarray
    quaternions: np.ndarray

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        positions = np.asarray(self.positions, dtype=np.float64)
        quaternions = np.asarray(self.quaternions, dtype=np.float64)
        n = len(times)
        if times.ndim != 1 or positions.shape != (n, 3) or quaternions.shape != (n, 4):
            raise ValueError(f"a trajectory needs times (N,), positions (N, 3) and quaternions "
                             f"(N, 4); got {times.shape}, {positions.shape}, {quaternions.shape}")
        if not (np.isfinite(times).all() and np.isfinite(positions).all()
                and np.isfinite(quaternions).all()):
            raise ValueError("a trajectory holds a NaN or infinite value")
        if n > 1 and (np.diff(times) < 0).any():
            first = int(np.argmax(np.diff(times) < 0)) + 1
            raise ValueError(f"trajectory times decrease at pose {first}")
        norms = np.linalg.norm(quaternions, axis=1)
        if (norms < 1e-6).any():
            raise ValueError(f"quaternion {int(np.argmax(norms < 1e-6))} has zero norm")
        for name, value in (("times", times), ("positions", positions),
                            ("quaternions", quaternions / norms[:, None])):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_matrices(cls, times: np.ndarray, poses: np.ndarray) -> Trajectory:
        """From (N,) times and (N, 3, 4) or (N, 4, 4) pose matrices ``[R | p]``."""
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] not in ((3, 4), (4, 4)):
            raise ValueError(f"pose matrices must be (N, 3, 4) or (N, 4, 4), got {poses.shape}")
        quaternions = Rotation.from_matrix(poses[:, :3, :3]).as_quat()
        return cls(times, poses[:, :3, 3], quaternions)

    @property
    def rotations(self) -> Rotation:
        """The N orientations as one scipy ``Rotation``."""
        return Rotation.from_quat(self.quaternions)

    def matrices(self) -> np.ndarray:
        """(N, 4, 4) homogeneous pose matrices."""
        out = np.tile(np.eye(4), (len(self), 1, 1))
        out[:, :3, :3] = self.rotations.as_matrix()
        out[:, :3, 3] = self.positions
        return out

    def take(self, indices: np.ndarray) -> Trajectory:
        """The poses at ``indices`` (K,), in that order (which must keep times non-decreasing)."""
        return Trajectory(self.times[indices], self.positions[indices], self.quaternions[indices])

    def transformed(self, rotation: np.ndarray, translation: np.ndarray,
                    scale: float = 1.0) -> Trajectory:
        """The trajectory seen from another world frame: ``p' = s R p + t``, ``R' = R R_i``.

        Args:
            rotation: (3, 3) rotation matrix.
            translation: (3,) metres.
            scale: positive scale on positions.
        """
        rotation = np.asarray(rotation, dtype=np.float64)
        positions = scale * self.positions @ rotation.T + np.asarray(translation, dtype=np.float64)
        quaternions = (Rotation.from_matrix(rotation) * self.rotations).as_quat()
        return Trajectory(self.times, positions, quaternions)
