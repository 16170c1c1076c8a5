"""Scoring recorded mapping outputs on a synthetic case with a closed-form answer.

The truth drives once round a circle of radius ``RADIUS`` about the origin, one pose a
second; the recorded poses are exact but only every other one was recorded; the odometry
stretches the circle by ``SCALE`` about its centre. The recorded stamps are evenly spread over
the circle, so SE(3) alignment is the identity (both centroids at the centre, a scaled circle
needs no turn) and the odometry's ATE is ``(SCALE - 1) * RADIUS``. The world is one wall row;
the recorded map, shifted by two cells of origin, misses two wall cells, adds one false cell
and has observed only five of its fourteen rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_tools.bags import BagWriter, open_bag
from kestrel_tools.evaluation.mapping_predictions import evaluate_mapping_predictions
from kestrel_tools.sample import messages, topics

T0 = 1_000_000_000_000
POSES = 24
RADIUS = 10.0
SCALE = 1.05
RESOLUTION = 0.5
MAP_TOPIC, POSE_TOPIC = "/mapping/map", "/mapping/pose"


def pose_matrix(k: int, radius: float) -> np.ndarray:
    """(4, 4) pose ``k`` on the circle, heading along it."""
    angle = 2.0 * np.pi * k / POSES
    matrix = np.eye(4)
    matrix[:2, :2] = [[-np.sin(angle), -np.cos(angle)], [np.cos(angle), -np.sin(angle)]]
    matrix[:2, 3] = radius * np.cos(angle), radius * np.sin(angle)
    return matrix


def pose_with_covariance(store, stamp_ns: int, pose: np.ndarray) -> object:
    stamped = messages.pose_stamped(store, stamp_ns, topics.MAPPING_MAP_FRAME, pose)
    types = store.types
    return types["geometry_msgs/msg/PoseWithCovarianceStamped"](
        header=stamped.header, pose=types["geometry_msgs/msg/PoseWithCovariance"](
            pose=stamped.pose, covariance=np.zeros(36)))


def world_and_map() -> tuple[np.ndarray, np.ndarray]:
    """World (10, 10) with wall row 5; map (14, 14) at origin (-1, -1): world cell (r, c) is
    map cell (r + 2, c + 2). Known map rows 5..9 (world rows 3..7)."""
    world = np.zeros((10, 10), np.int8)
    world[5, :] = 100
    grid = np.full((14, 14), -1, np.int8)
    grid[5:10, :] = 0
    grid[7, 2:10] = 100  # world row 5, columns 0..7: two wall cells missed
    grid[5, 2] = 100  # world row 3, column 0: a false wall
    return world, grid


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mapping")
    world, grid = world_and_map()
    stamps = [T0 + k * 1_000_000_000 for k in range(POSES)]
    with BagWriter(folder / "truth", "mcap") as bag:
        store = bag.types.store
        bag.add_topic(topics.MAPPING_GT_MAP, "nav_msgs/msg/OccupancyGrid")
        bag.add_topic(topics.MAPPING_GT_POSE, "geometry_msgs/msg/PoseStamped")
        bag.add_topic(topics.MAPPING_ODOM, "nav_msgs/msg/Odometry")
        bag.write(topics.MAPPING_GT_MAP, T0, messages.occupancy_grid(
            store, T0, topics.MAPPING_WORLD_FRAME, world, (0.0, 0.0), RESOLUTION))
        for k, stamp in enumerate(stamps):
            bag.write(topics.MAPPING_GT_POSE, stamp, messages.pose_stamped(
                store, stamp, topics.MAPPING_WORLD_FRAME, pose_matrix(k, RADIUS)))
            bag.write(topics.MAPPING_ODOM, stamp, messages.odometry(
                store, stamp, topics.MAPPING_ODOM_FRAME, topics.MAPPING_BASE_FRAME,
                pose_matrix(k, SCALE * RADIUS), np.zeros(6)))
    with BagWriter(folder / "recorded", "mcap") as bag:
        store = bag.types.store
        bag.add_topic(MAP_TOPIC, "nav_msgs/msg/OccupancyGrid")
        bag.add_topic(POSE_TOPIC, "geometry_msgs/msg/PoseWithCovarianceStamped")
        blank = np.full_like(grid, -1)
        for stamp, values in ((stamps[1], blank), (stamps[-1], grid)):  # the last map counts
            bag.write(MAP_TOPIC, stamp, messages.occupancy_grid(
                store, stamp, topics.MAPPING_MAP_FRAME, values, (-1.0, -1.0), RESOLUTION))
        for k in range(0, POSES, 2):
            bag.write(POSE_TOPIC, stamps[k], pose_with_covariance(store, stamps[k],
                                                                  pose_matrix(k, RADIUS)))
    return folder / "truth", folder / "recorded"


def test_closed_form_iou_and_ate(bags):
    truth, recorded = bags
    with open_bag(truth) as bag, open_bag(recorded) as rec:
        result = evaluate_mapping_predictions(bag, rec, MAP_TOPIC, POSE_TOPIC)
    kept = POSES // 2  # poses recorded
    # known cells hold world rows 3..7: wall row 5 has 10 cells, 8 found, plus 1 false
    assert result.summary["map_iou"] == pytest.approx(8 / 11)
    assert result.summary["ate_pose"] == pytest.approx(0.0, abs=1e-9)
    assert result.summary["ate_odometry"] == pytest.approx((SCALE - 1) * RADIUS)
    assert result.summary["ate_change"] == pytest.approx(-1.0)
    # the alignment is the identity here, so the unaligned errors are the same
    assert result.summary["ate_unaligned_pose"] == pytest.approx(0.0, abs=1e-9)
    assert result.summary["ate_unaligned_odometry"] == pytest.approx((SCALE - 1) * RADIUS)
    assert result.summary["poses"] == kept
    assert [row["pairs"] for row in result.rows] == [kept] * 2
    assert [figure.data.shape for figure in result.figures] == [(2, kept, 3)] * 2


def test_a_topic_without_a_map_is_refused(bags, tmp_path):
    truth, _ = bags
    with BagWriter(tmp_path / "empty", "mcap") as bag:
        bag.add_topic(MAP_TOPIC, "nav_msgs/msg/OccupancyGrid")
        bag.add_topic(POSE_TOPIC, "geometry_msgs/msg/PoseWithCovarianceStamped")
    with open_bag(truth) as bag, open_bag(tmp_path / "empty") as rec:
        with pytest.raises(ValueError, match="has no map"):
            evaluate_mapping_predictions(bag, rec, MAP_TOPIC, POSE_TOPIC)
