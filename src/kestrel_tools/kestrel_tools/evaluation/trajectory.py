"""Trajectory task: ATE (SE3 and Sim3 alignment) and RPE of a pose topic vs ``/ground_truth/pose``.

The estimate is read from a ``tf2_msgs/TFMessage`` topic (the ``odom -> base_link``
transforms, by default from ``/tf``), a ``geometry_msgs/PoseStamped``,
``geometry_msgs/PoseWithCovarianceStamped`` or ``nav_msgs/Odometry`` topic; poses are timed by
their header stamps.
"""

from __future__ import annotations

import numpy as np

from kestrel_ros.compat.approximate_time import time_ns
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.results import Figure, TaskResult
from kestrel_tools.sample import topics
from kestrel_tools.trajectory import Trajectory, associate, evaluate

POSE_TYPES = ("tf2_msgs/msg/TFMessage", "geometry_msgs/msg/PoseStamped", "nav_msgs/msg/Odometry",
              "geometry_msgs/msg/PoseWithCovarianceStamped")
WITH_COVARIANCE = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseWithCovarianceStamped")


def _pose_fields(msg: object, msgtype: str, parent: str,
                 child: str) -> list[tuple[int, object, object]]:
    """(stamp ns, position-like, orientation-like) of the poses one message carries."""
    if msgtype == "tf2_msgs/msg/TFMessage":
        return [(time_ns(t.header.stamp), t.transform.translation, t.transform.rotation)
                for t in msg.transforms
                if t.header.frame_id == parent and t.child_frame_id == child]
    pose = msg.pose.pose if msgtype in WITH_COVARIANCE else msg.pose
    return [(time_ns(msg.header.stamp), pose.position, pose.orientation)]


def read_trajectory(bag: BagReader, topic: str, parent: str = "odom",
                    child: str = "base_link") -> Trajectory:
    """The poses on ``topic`` as a :class:`Trajectory` (times in seconds), sorted by time.

    Raises:
        ValueError: an unsupported message type, or no pose on the topic.
        BagError: a topic not in the bag, or damage.
    """
    msgtype = bag.topics.get(topic)
    if msgtype is not None and msgtype not in POSE_TYPES:
        raise ValueError(f"{bag.path}: topic {topic} is {msgtype}; a trajectory needs one of "
                         f"{', '.join(POSE_TYPES)}")
    poses = [fields for message in bag.messages(topic)
             for fields in _pose_fields(message.msg, msgtype, parent, child)]
    if not poses:
        what = f" {parent} -> {child}" if msgtype == POSE_TYPES[0] else ""
        raise ValueError(f"{bag.path}: topic {topic} has no{what} pose")
    poses.sort(key=lambda pose: pose[0])
    stamps = np.array([pose[0] for pose in poses], dtype=np.int64)
    positions = np.array([(p.x, p.y, p.z) for _, p, _ in poses], dtype=np.float64)
    quaternions = np.array([(q.x, q.y, q.z, q.w) for _, _, q in poses], dtype=np.float64)
    return Trajectory(stamps / 1e9, positions, quaternions)


def aligned_positions(est: Trajectory, ref: Trajectory, errors, max_diff: float) -> np.ndarray:
    """``(2, N, 3)``: associated estimate positions after the alignment in ``errors``, and the
    reference positions they are compared with."""
    pairs = associate(est, ref, max_diff)
    matched = est.take(pairs[:, 0]).transformed(errors.rotation, errors.translation,
                                                errors.scale)
    return np.stack([matched.positions, ref.positions[pairs[:, 1]]])


def evaluate_trajectory(bag: BagReader, options: EvalOptions) -> TaskResult:
    """ATE after SE3 and after Sim3 alignment, and RPE over ``options.rpe_delta_s``."""
    est = read_trajectory(bag, options.trajectory_topic, options.odom_frame, options.base_frame)
    ref = read_trajectory(bag, topics.GT_POSE)
    result = TaskResult("trajectory")
    for mode in ("se3", "sim3"):
        errors = evaluate(est, ref, mode, options.max_time_diff_s, options.rpe_delta_s, "s")
        result.rows.append({"align": mode, **errors.summary()})
        result.summary.update({f"ate_{mode}": errors.ate_rmse, f"rpe_{mode}": errors.rpe_rmse,
                               f"rpe_rot_deg_{mode}": errors.rpe_rot_deg,
                               f"scale_{mode}": errors.scale})
        result.figures.append(Figure(f"trajectory_{mode}", "trajectory",
                                     aligned_positions(est, ref, errors, options.max_time_diff_s),
                                     f"{options.trajectory_topic} aligned ({mode}) vs "
                                     f"{topics.GT_POSE}, x-y (m)"))
    result.summary["pairs"] = result.rows[0]["pairs"]
    result.notes.append(f"estimate {options.trajectory_topic}"
                        + (f" ({options.odom_frame} -> {options.base_frame})"
                           if bag.topics[options.trajectory_topic] == POSE_TYPES[0] else "")
                        + f", {len(est)} poses; reference {topics.GT_POSE}, {len(ref)} poses; "
                        f"pairs within {options.max_time_diff_s} s; RPE over "
                        f"{options.rpe_delta_s:g} s.")
    return result
