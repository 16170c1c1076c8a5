"""Mapping stream of the sample bag: a planar LiDAR and a drifting odometry along a real drive.

Only the path is real: the first ``mapping_seconds`` of the KITTI odometry ground truth,
sequence 00 (a car in Karlsruhe, about 10 Hz, with its recorded times), projected to the
ground plane by :func:`kestrel_tools.mapping_eval.odometry.planar_kitti`. The world, the scans
and the odometry error are simulated, as the mapping evaluation protocol prescribes (see
:mod:`kestrel_tools.mapping_eval`), with that package's code and default configs:

- the world: :func:`~kestrel_tools.mapping_eval.world.street_world` around the path (walls
  9 m either side with gaps, boxes, 0.25 m cells, seeded);
- the scans: one :func:`~kestrel_tools.mapping_eval.world.render_scan` per ground-truth pose
  (360 beams to 30 m, 3 cm noise, 2 % dropouts, seed ``SCAN_SEED``), from a scanner straight
  above the base origin (``SCAN_ON_BASE``, on ``/tf_static``). Beams without a return are
  left out of the cloud, as LiDAR drivers do;
- the odometry: :func:`~kestrel_tools.mapping_eval.odometry.drifting_odometry` (the standard
  drift, seeded). It starts at the true first pose, so ``car/odom`` and ``car/world`` coincide
  at the start and a map built in ``car/map`` can be compared with the world cell by cell.

The car has frames of its own (``car/world``, ``car/odom``, ``car/base_link``, ``car/scan``):
the bag's ``/tf`` moves ``base_link`` along a different (TUM) trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.typesys.store import Typestore

from kestrel_core.mapping import se2
from kestrel_tools.mapping_eval.odometry import (DriftConfig, as_trajectory, drifting_odometry,
                                                 planar_kitti)
from kestrel_tools.mapping_eval.run import render_scans
from kestrel_tools.mapping_eval.world import (ScannerConfig, StreetWorldConfig, World,
                                              street_world)
from kestrel_tools.sample import messages, topics
from kestrel_tools.sample.motion import translation
from kestrel_tools.sample.records import SampleMessage

KITTI_POSES = Path("trajectories") / "KITTI_00_gt.txt"
KITTI_TIMES = Path("trajectories") / "KITTI_00_gt_times.txt"
SCAN_ON_BASE = (0.0, 0.0, 1.5)  # metres: the scanner's plane is 1.5 m above the base
SCANNER = ScannerConfig()
WORLD = StreetWorldConfig()
DRIFT = DriftConfig()
SCAN_SEED = 0
OCCUPIED, FREE = 100, 0


@dataclass(frozen=True)
class MappingStream:
    """The simulated drive, before it becomes messages.

    Attributes:
        times: (K,) seconds since the first pose (KITTI's recorded times).
        truth: (K, 3) true base poses ``(x, y, theta)`` in ``car/world``.
        odometry: (K, 3) drifting odometry poses in ``car/odom``.
        world: the street world around the path.
        scans: K pairs of (B, 2) end points in the scanner frame and (B,) bool returns.
    """

    times: np.ndarray
    truth: np.ndarray
    odometry: np.ndarray
    world: World
    scans: list[tuple[np.ndarray, np.ndarray]]


def mapping_stream(root: Path, seconds: float) -> MappingStream:
    """The first ``seconds`` of KITTI 00 with its world, scans and odometry (deterministic)."""
    times, truth = planar_kitti(root / KITTI_POSES, times_path=root / KITTI_TIMES)
    keep = times - times[0] <= seconds
    times, truth = times[keep] - times[0], truth[keep]
    world = street_world(truth[:, :2], WORLD)
    return MappingStream(times, truth, drifting_odometry(truth, DRIFT), world,
                         render_scans(world, truth, SCANNER, SCAN_SEED))


def scan_points(points: np.ndarray, returned: np.ndarray) -> np.ndarray:
    """(R, 3) float32 points of the R returned beams of one scan, in the scanner frame (z 0)."""
    hits = points[returned]
    return np.column_stack([hits, np.zeros(len(hits))]).astype(np.float32)


def planar_twists(times: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """(K, 6) body-frame twists ``(vx, vy, 0, 0, 0, wz)`` of (K, 3) poses: the motion to the
    next pose over its time (the last pose repeats the previous twist)."""
    motion = se2.between(poses[:-1], poses[1:]) / np.diff(times)[:, None]  # (K-1, 3)
    motion = np.concatenate([motion, motion[-1:]])
    zeros = np.zeros(len(motion))
    return np.column_stack([motion[:, 0], motion[:, 1], zeros, zeros, zeros, motion[:, 2]])


def world_values(world: World) -> np.ndarray:
    """(H, W) int8 OccupancyGrid values of the world: 100 walls and boxes, 0 elsewhere."""
    return np.where(world.occupied, OCCUPIED, FREE).astype(np.int8)


def scan_mount(store: Typestore, stamp_ns: int) -> object:
    """The ``car/base_link -> car/scan`` TransformStamped for ``/tf_static``."""
    return messages.transform_stamped(store, stamp_ns, topics.MAPPING_BASE_FRAME,
                                      topics.MAPPING_SCAN_FRAME, translation(SCAN_ON_BASE))


def mapping_messages(store: Typestore, stream: MappingStream,
                     start_ns: int) -> list[SampleMessage]:
    """``/mapping/points``, ``/mapping/odom`` and ``/mapping/ground_truth/pose`` at every pose
    (the first at ``start_ns``) and ``/mapping/ground_truth/map`` once, at ``start_ns``."""
    stamps = (start_ns + np.round(stream.times * 1e9).astype(np.int64)).tolist()
    truth = as_trajectory(stream.times, stream.truth).matrices()
    odometry = as_trajectory(stream.times, stream.odometry).matrices()
    twists = planar_twists(stream.times, stream.odometry)
    world = stream.world
    out = [SampleMessage(topics.MAPPING_GT_MAP, start_ns, messages.occupancy_grid(
        store, start_ns, topics.MAPPING_WORLD_FRAME, world_values(world), world.origin,
        world.resolution))]
    for stamp, (points, returned), true_pose, odom_pose, twist in zip(
            stamps, stream.scans, truth, odometry, twists):
        out += [
            SampleMessage(topics.MAPPING_POINTS, stamp, messages.xyz_cloud(
                store, stamp, topics.MAPPING_SCAN_FRAME, scan_points(points, returned))),
            SampleMessage(topics.MAPPING_ODOM, stamp, messages.odometry(
                store, stamp, topics.MAPPING_ODOM_FRAME, topics.MAPPING_BASE_FRAME, odom_pose,
                twist)),
            SampleMessage(topics.MAPPING_GT_POSE, stamp, messages.pose_stamped(
                store, stamp, topics.MAPPING_WORLD_FRAME, true_pose)),
        ]
    return out
