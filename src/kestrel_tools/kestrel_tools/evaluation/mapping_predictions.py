"""Mapping predictions: a map and poses recorded from the ``neural_mapping`` node, scored against
the sample bag's simulated world and real drive (see :mod:`kestrel_tools.sample.mapping`).

- Map IoU: the last recorded OccupancyGrid against ``/mapping/ground_truth/map``, occupied
  cells over the cells the map observed (:func:`kestrel_tools.mapping_eval.world.map_iou`).
  The map is compared in its own frame: the sample's odometry starts at the true first pose,
  so ``car/map`` and ``car/world`` coincide (a map shifted by a wrong first pose scores low).
- ATE and RPE (SE(3) alignment, as the mapping benchmark) of the recorded poses, and of the
  raw odometry at the same stamps, against ``/mapping/ground_truth/pose``; and the ATE without
  alignment, the error the map IoU sees (a map that drifted as a whole keeps a good aligned
  ATE but no longer lies on the world).
"""

from __future__ import annotations

import numpy as np

from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.mapping import (MAX_TIME_DIFF_S, RPE_DELTA_M, at_stamps_of,
                                              last_grid, read_world)
from kestrel_tools.evaluation.results import Figure, TaskResult
from kestrel_tools.evaluation.trajectory import aligned_positions, read_trajectory
from kestrel_tools.mapping_eval.world import map_iou
from kestrel_tools.sample import topics
from kestrel_tools.trajectory import evaluate


def evaluate_mapping_predictions(bag: BagReader, recorded: BagReader, map_topic: str,
                                 pose_topic: str, odom_topic: str = topics.MAPPING_ODOM,
                                 rpe_delta_m: float = RPE_DELTA_M) -> TaskResult:
    """Score a recorded map and pose stream against the bag's world and ground-truth poses.

    Args:
        bag: the sample bag (``/mapping/ground_truth/*`` and the odometry ``odom_topic``).
        recorded: the bag recorded from the node (``map_topic``: OccupancyGrid; ``pose_topic``:
            PoseWithCovarianceStamped, PoseStamped or Odometry).
        rpe_delta_m: RPE separation along the true path, metres.

    Returns:
        Task ``mapping_predictions``: ``map_iou``, ``ate_pose`` and ``ate_odometry`` (m, SE(3)
        aligned) and their relative change ``ate_change``, ``rpe_*``, ``ate_unaligned_*``, one
        row per estimate, and the aligned trajectories as figures.

    Raises:
        ValueError: a topic without messages. BagError: a missing topic or damage.
    """
    world = read_world(bag)
    values, origin, resolution, map_stamp = last_grid(recorded, map_topic)
    iou = float(map_iou(world, values, origin, resolution))
    truth = read_trajectory(bag, topics.MAPPING_GT_POSE)
    pose = read_trajectory(recorded, pose_topic)
    odometry = at_stamps_of(read_trajectory(bag, odom_topic), pose)
    result = TaskResult("mapping_predictions")
    for name, topic, estimate in (("pose", pose_topic, pose), ("odometry", odom_topic, odometry)):
        errors = evaluate(estimate, truth, "se3", MAX_TIME_DIFF_S, rpe_delta_m, "m")
        result.rows.append({"estimate": topic, **errors.summary()})
        result.summary[f"ate_{name}"] = errors.ate_rmse
        result.summary[f"ate_unaligned_{name}"] = evaluate(estimate, truth, "none",
                                                           MAX_TIME_DIFF_S).ate_rmse
        result.summary[f"rpe_{name}"] = errors.rpe_rmse
        result.figures.append(Figure(f"mapping_predictions_{name}", "trajectory",
                                     aligned_positions(estimate, truth, errors, MAX_TIME_DIFF_S),
                                     f"{topic} aligned (se3) vs "
                                     f"{topics.MAPPING_GT_POSE}, x-y (m)"))
    result.summary["ate_change"] = result.summary["ate_pose"] / result.summary["ate_odometry"] - 1
    result.summary["map_iou"] = iou
    result.summary["poses"] = len(pose)
    observed = int(np.count_nonzero(values >= 0))
    result.notes.append(
        f"Last map on {map_topic}: {values.shape[1]}x{values.shape[0]} cells at {resolution:g} m "
        f"({observed} observed), stamped {(map_stamp - round(truth.times[0] * 1e9)) / 1e9:.2f} s "
        f"after the first true pose; IoU of its occupied cells against {topics.MAPPING_GT_MAP} "
        f"over the observed cells. {len(pose)} poses on {pose_topic} of {len(truth)} true "
        f"poses; the raw odometry {odom_topic} is scored at the same stamps. ATE after SE(3) "
        f"alignment (ate_unaligned: none, the error the map IoU sees), RPE over "
        f"{rpe_delta_m:g} m. The world and the scans are simulated along the real KITTI 00 "
        f"drive.")
    return result
