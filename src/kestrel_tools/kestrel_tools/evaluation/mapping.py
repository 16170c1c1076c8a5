"""Mapping task: the core mapper run offline on a bag's scans and odometry, scored against the
bag's ground-truth world and drive (the sample's ``/mapping/*``, see
:mod:`kestrel_tools.sample.mapping`), plus the readers the recorded-output scoring shares.

Each method of :data:`kestrel_tools.mapping_eval.run.METHODS` (raw odometry, Kestrel
localization, and with loop closure) gets the same scans, put in the base frame with
``/tf_static``, and the same odometry; :func:`kestrel_tools.mapping_eval.run.evaluate_methods`
scores them: ATE and RPE after SE(3) alignment, and the map IoU of occupied cells against
``/mapping/ground_truth/map`` over the observed cells. The map is compared in its own frame:
the sample's odometry starts at the true first pose, so map and world frames coincide.

The mapping loop is thousands of small tensor ops, which torch's intra-op threads slow down
on a shared CPU; the methods run side by side instead, one thread each
(:func:`kestrel_core.parallel.run_parallel`), so their times overlap.
"""

from __future__ import annotations

import numpy as np

from kestrel_core.mapping.mapper import MapperConfig
from kestrel_core.parallel import run_parallel
from kestrel_ros.compat.approximate_time import time_ns
from kestrel_ros.conversions.occupancy_grid import occupancy_grid_to_numpy
from kestrel_ros.conversions.pointcloud2 import xyz_array
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.results import TaskResult
from kestrel_tools.evaluation.tf_static import StaticTransforms
from kestrel_tools.evaluation.trajectory import read_trajectory
from kestrel_tools.mapping_eval.run import METHODS, MethodResult, evaluate_methods
from kestrel_tools.mapping_eval.world import World
from kestrel_tools.sample import topics
from kestrel_tools.trajectory import Trajectory, associate, associate_times

REQUIRED = (topics.MAPPING_POINTS, topics.MAPPING_ODOM, topics.MAPPING_GT_POSE,
            topics.MAPPING_GT_MAP, topics.TF_STATIC)
OCCUPIED = 100
MAX_TIME_DIFF_S = 1e-3  # scans, odometry and truth share their stamps in the sample
RPE_DELTA_M = 10.0
METHOD_KEYS = dict(zip(METHODS, ("odometry", "localization", "loop_closure")))


def last_grid(bag: BagReader, topic: str) -> tuple[np.ndarray, tuple[float, float], float, int]:
    """(H, W) int8 values, origin (x0, y0), resolution and stamp (ns) of the last OccupancyGrid
    on ``topic``.

    Raises:
        ValueError: the topic has no message. BagError: the topic is not in the bag.
    """
    message = None
    for message in bag.messages(topic):
        pass
    if message is None:
        raise ValueError(f"{bag.path}: topic {topic} has no map")
    values, origin, resolution = occupancy_grid_to_numpy(message.msg)
    return values, origin, resolution, time_ns(message.msg.header.stamp)


def read_world(bag: BagReader, topic: str = topics.MAPPING_GT_MAP) -> World:
    """The ground-truth world of a bag: the occupied (100) cells of its last grid on ``topic``."""
    values, origin, resolution, _ = last_grid(bag, topic)
    return World(values == OCCUPIED, origin, resolution)


def at_stamps_of(trajectory: Trajectory, stamps_of: Trajectory) -> Trajectory:
    """The poses of ``trajectory`` at the times of ``stamps_of`` (those it has)."""
    pairs = associate(trajectory, stamps_of, MAX_TIME_DIFF_S)
    return trajectory.take(pairs[:, 0])


def planar_poses(trajectory: Trajectory) -> np.ndarray:
    """(K, 3) ``(x, y, yaw)`` of a trajectory on the ground plane."""
    rotation = trajectory.rotations.as_matrix()
    return np.column_stack([trajectory.positions[:, :2],
                            np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])])


def read_scans(bag: BagReader, topic: str = topics.MAPPING_POINTS,
               base_frame: str = topics.MAPPING_BASE_FRAME) -> tuple[np.ndarray, list[np.ndarray]]:
    """(K,) stamps (s) and K (N, 3) float32 clouds of ``topic``, moved into ``base_frame`` with
    the bag's static transforms."""
    transforms = StaticTransforms(bag)
    stamps, clouds = [], []
    for message in bag.messages(topic):
        base_t_sensor = transforms.lookup(base_frame, message.msg.header.frame_id)
        points = xyz_array(message.msg)
        clouds.append((points @ base_t_sensor[:3, :3].T + base_t_sensor[:3, 3]).astype(np.float32))
        stamps.append(time_ns(message.msg.header.stamp))
    return np.array(stamps, dtype=np.int64) / 1e9, clouds


def evaluate_mapping(bag: BagReader, options: EvalOptions) -> TaskResult:
    """Raw odometry vs Kestrel's mapper (localization, + loop closure) on the bag's scans.

    Returns:
        Task ``mapping``: ``ate_<method>`` and ``iou_<method>`` for ``odometry``,
        ``localization`` and ``loop_closure``, one row per method.
    """
    world = read_world(bag)
    stamps, clouds = read_scans(bag)
    truth = read_trajectory(bag, topics.MAPPING_GT_POSE)
    odometry = read_trajectory(bag, topics.MAPPING_ODOM)
    with_truth = associate_times(stamps, truth.times, MAX_TIME_DIFF_S)
    with_odometry = associate_times(stamps, odometry.times, MAX_TIME_DIFF_S)
    scans_kept, in_truth, in_odometry = np.intersect1d(
        with_truth[:, 0], with_odometry[:, 0], return_indices=True)
    scans = [(clouds[k], np.ones(len(clouds[k]), bool)) for k in scans_kept]
    times, true_poses = stamps[scans_kept], planar_poses(truth.take(with_truth[in_truth, 1]))
    odometry_poses = planar_poses(odometry.take(with_odometry[in_odometry, 1]))
    scored: dict[str, MethodResult] = {}

    def score(name: str):
        def run() -> None:
            scored[name] = evaluate_methods(world, times, true_poses, odometry_poses, scans,
                                            MapperConfig(), RPE_DELTA_M, (name,),
                                            options.device)[0]
        return run

    run_parallel([score(name) for name in METHODS])
    result = TaskResult("mapping")
    for method in (scored[name] for name in METHODS):
        key = METHOD_KEYS[method.name]
        result.summary[f"ate_{key}"] = method.ate
        result.summary[f"iou_{key}"] = float(method.iou)
        result.rows.append({"method": method.name, "ate": method.ate, "rpe": method.rpe,
                            "rpe_deg": method.rpe_deg, "map_iou": float(method.iou),
                            "loop_closures": method.loops, "seconds_concurrent": method.seconds})
    result.summary["scans"] = len(scans)
    result.notes.append(
        f"The core mapper (MapperConfig defaults, device {options.device}) on {len(scans)} scans "
        f"of {topics.MAPPING_POINTS} with the odometry {topics.MAPPING_ODOM}, against "
        f"{topics.MAPPING_GT_POSE} (ATE after SE(3) alignment, RPE over {RPE_DELTA_M:g} m) and "
        f"{topics.MAPPING_GT_MAP} (IoU of occupied cells over the observed cells). The world "
        f"and the scans are simulated along the real KITTI 00 drive.")
    return result
