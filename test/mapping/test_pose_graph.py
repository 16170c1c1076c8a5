"""The SE(2) pose graph: exact recovery from consistent edges, and a planted loop."""

from __future__ import annotations

import numpy as np

from kestrel_core.mapping import se2
from kestrel_core.mapping.posegraph import optimize_pose_graph


def _square(count: int = 24, side: float = 10.0) -> np.ndarray:
    """(count, 3) poses driving a square loop counter-clockwise, back to the start."""
    per_side = count // 4
    poses = []
    for side_index in range(4):
        heading = side_index * np.pi / 2
        start = np.array([[0.0, 0.0], [side, 0.0], [side, side], [0.0, side]])[side_index]
        direction = np.array([np.cos(heading), np.sin(heading)])
        for k in range(per_side):
            poses.append(np.array([*(start + direction * side * k / per_side), heading]))
    return np.array(poses)


def _chain_edges(count: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(count - 1), np.arange(1, count)


def test_consistent_edges_recover_the_truth_from_a_perturbed_start():
    truth = _square()
    first, second = _chain_edges(len(truth))
    first, second = np.append(first, len(truth) - 1), np.append(second, 0)  # the loop
    measurements = se2.between(truth[first], truth[second])
    information = np.tile(np.eye(3), (len(first), 1, 1))
    rng = np.random.default_rng(0)
    start = truth + np.column_stack([rng.normal(0, 0.5, (len(truth), 2)),
                                     rng.normal(0, 0.1, len(truth))])
    start[0] = truth[0]
    optimised = optimize_pose_graph(start, first, second, measurements, information)
    assert np.allclose(optimised[:, :2], truth[:, :2], atol=1e-6)
    assert np.allclose(se2.wrap_angle(optimised[:, 2] - truth[:, 2]), 0.0, atol=1e-6)


def test_planted_loop_closure_removes_heading_drift():
    truth = _square()
    first, second = _chain_edges(len(truth))
    odometry = se2.between(truth[first], truth[second])
    odometry[:, 2] += 0.03  # a gyro bias: 0.03 rad per step
    drifted = [truth[0]]
    for motion in odometry:
        drifted.append(se2.compose(drifted[-1], motion))
    drifted = np.array(drifted)
    loop = se2.between(truth[-1], truth[0])[None]  # the revisit: last pose sees the first
    edges_first, edges_second = np.append(first, len(truth) - 1), np.append(second, 0)
    measurements = np.vstack([odometry, loop])
    information = np.tile(np.diag([10.0, 10.0, 100.0]), (len(edges_first), 1, 1))
    information[-1] = np.diag([1e4, 1e4, 1e5])
    optimised = optimize_pose_graph(drifted, edges_first, edges_second, measurements, information)

    before = np.linalg.norm(drifted[:, :2] - truth[:, :2], axis=1).max()
    after = np.linalg.norm(optimised[:, :2] - truth[:, :2], axis=1).max()
    assert before > 3.0
    assert after < 0.2 * before
    # The loop edge holds after optimisation.
    closing = se2.between(optimised[-1], optimised[0])
    assert np.allclose(closing[:2], loop[0, :2], atol=0.05)
    # With the bias spread evenly the per-step heading error is the bias minus its mean share.
    heading_steps = se2.wrap_angle(np.diff(optimised[:, 2]) - np.diff(truth[:, 2]))
    assert np.all(np.abs(heading_steps) < 0.03)
