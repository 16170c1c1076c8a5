"""Planar poses to and from geometry_msgs: round trips and the closed-form quaternion of a yaw."""

import numpy as np
import pytest

from kestrel_ros.conversions.planar import (planar_covariance, planar_from_matrix, planar_from_pose,
                                            planar_to_pose, planar_to_transform)


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (1.5, -2.0, 0.7), (-3.0, 4.0, -3.1), (2.0, 1.0, np.pi / 2)])
def test_pose_and_transform_round_trip(pose):
    pose = np.array(pose)
    message = planar_to_pose(pose)
    assert message.position.z == 0.0 and message.orientation.x == message.orientation.y == 0.0
    # a rotation by yaw about z is the quaternion (0, 0, sin(yaw / 2), cos(yaw / 2))
    assert np.isclose(message.orientation.z, np.sin(pose[2] / 2)) and np.isclose(message.orientation.w, np.cos(pose[2] / 2))
    np.testing.assert_allclose(planar_from_pose(message.position, message.orientation), pose, atol=1e-12)
    transform = planar_to_transform(pose)
    np.testing.assert_allclose(planar_from_pose(transform.translation, transform.rotation), pose, atol=1e-12)


def test_a_matrix_gives_its_planar_part():
    yaw = 0.4
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    matrix[:3, 3] = (1.0, 2.0, 3.0)
    np.testing.assert_allclose(planar_from_matrix(matrix), [1.0, 2.0, yaw])


def test_covariance_goes_to_the_x_y_yaw_rows():
    covariance = np.array([[1.0, 0.1, 0.2], [0.1, 2.0, 0.3], [0.2, 0.3, 3.0]])
    full = np.array(planar_covariance(covariance)).reshape(6, 6)
    np.testing.assert_array_equal(full[np.ix_([0, 1, 5], [0, 1, 5])], covariance)
    assert full[2:5].sum() == 0 and full[:, 2:5].sum() == 0
