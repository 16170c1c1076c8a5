"""The TF stand-in: buffer logic against closed-form transforms, and one exchange over DDS."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from rclpy.duration import Duration
from rclpy.time import Time
from scipy.spatial.transform import Rotation

from kestrel_ros.compat.tf import (
    Buffer,
    ConnectivityException,
    ExtrapolationException,
    LookupException,
    TransformListener,
    matrix_to_transform,
    transform_to_matrix,
)
from kestrel_tools.graph import GraphProbe, local_ros_env

SEC = 1_000_000_000


def rigid(rotvec, translation) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    matrix[:3, 3] = translation
    return matrix


def stamped(parent: str, child: str, matrix: np.ndarray, stamp_ns: int = 0) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, SEC)
    msg.transform = matrix_to_transform(matrix)
    return msg


def at(seconds: float) -> Time:
    return Time(nanoseconds=int(round(seconds * SEC)))


MAP_ODOM = rigid([0, 0, 0.3], [1.0, 2.0, 0.0])
ODOM_BASE = rigid([0.1, -0.2, 0.5], [0.5, -1.0, 0.2])
BASE_LIDAR = rigid([0, 0, np.pi / 2], [0.2, 0.0, 1.5])
BASE_CAMERA = rigid([-np.pi / 2, 0, -np.pi / 2], [0.3, 0.1, 1.2])


@pytest.fixture
def tree() -> Buffer:
    """map -> odom -> base -> {lidar, camera}, all static."""
    buffer = Buffer()
    for parent, child, matrix in [("map", "odom", MAP_ODOM), ("odom", "base", ODOM_BASE),
                                  ("base", "lidar", BASE_LIDAR), ("base", "camera", BASE_CAMERA)]:
        buffer.set_transform_static(stamped(parent, child, matrix), "test")
    return buffer


def test_matrix_helpers_round_trip():
    matrix = rigid([0.4, -1.1, 2.0], [3.0, -2.0, 0.5])
    np.testing.assert_allclose(transform_to_matrix(matrix_to_transform(matrix)), matrix, atol=1e-12)
    with pytest.raises(ValueError):
        matrix_to_transform(np.diag([1.0, 1.0, -1.0, 1.0]))


def test_chain_through_the_tree_is_the_matrix_product(tree):
    result = tree.lookup_transform("map", "lidar", Time())
    assert (result.header.frame_id, result.child_frame_id) == ("map", "lidar")
    np.testing.assert_allclose(transform_to_matrix(result), MAP_ODOM @ ODOM_BASE @ BASE_LIDAR, atol=1e-12)


def test_sibling_frames_go_through_the_common_parent(tree):
    camera_from_lidar = transform_to_matrix(tree.lookup_transform("camera", "lidar", Time()))
    np.testing.assert_allclose(camera_from_lidar, np.linalg.inv(BASE_CAMERA) @ BASE_LIDAR, atol=1e-12)
    point_lidar = np.array([4.0, -1.0, 0.5, 1.0])
    point_base = BASE_LIDAR @ point_lidar
    np.testing.assert_allclose(camera_from_lidar @ point_lidar, np.linalg.solve(BASE_CAMERA, point_base))


def test_inverse_lookup_is_the_inverse(tree):
    forward = transform_to_matrix(tree.lookup_transform("map", "camera", Time()))
    backward = transform_to_matrix(tree.lookup_transform("camera", "map", Time()))
    np.testing.assert_allclose(forward @ backward, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(transform_to_matrix(tree.lookup_transform("base", "base", Time())), np.eye(4))


def test_missing_and_disconnected_frames_raise(tree):
    with pytest.raises(LookupException):
        tree.lookup_transform("map", "nowhere", Time())
    tree.set_transform_static(stamped("world", "island", np.eye(4)), "test")
    with pytest.raises(ConnectivityException):
        tree.lookup_transform("map", "island", Time())
    assert not tree.can_transform("map", "nowhere", Time())
    ok, reason = tree.can_transform("map", "island", Time(), return_debug_tuple=True)
    assert not ok and "island" in reason


def test_dynamic_transform_is_interpolated_linearly_and_by_slerp():
    buffer = Buffer()
    first = rigid([0, 0, 0.0], [0.0, 0.0, 0.0])
    second = rigid([0, 0, 1.0], [2.0, -4.0, 1.0])  # 1 rad about z
    buffer.set_transform(stamped("odom", "base", first, 10 * SEC), "test")
    buffer.set_transform(stamped("odom", "base", second, 12 * SEC), "test")
    middle = transform_to_matrix(buffer.lookup_transform("odom", "base", at(10.5)))
    np.testing.assert_allclose(middle[:3, 3], [0.5, -1.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(middle[:3, :3], Rotation.from_rotvec([0, 0, 0.25]).as_matrix(), atol=1e-12)
    exact = buffer.lookup_transform("odom", "base", at(12.0))
    np.testing.assert_allclose(transform_to_matrix(exact), second, atol=1e-12)


def test_extrapolation_outside_the_stored_interval_raises():
    buffer = Buffer()
    buffer.set_transform(stamped("odom", "base", np.eye(4), 10 * SEC), "test")
    buffer.set_transform(stamped("odom", "base", np.eye(4), 11 * SEC), "test")
    for seconds in (9.0, 11.5):
        with pytest.raises(ExtrapolationException):
            buffer.lookup_transform("odom", "base", at(seconds))


def test_static_links_hold_at_every_time_and_latest_uses_dynamic_stamps():
    buffer = Buffer()
    buffer.set_transform_static(stamped("base", "lidar", BASE_LIDAR), "test")
    buffer.set_transform(stamped("odom", "base", rigid([0, 0, 0], [1.0, 0, 0]), 5 * SEC), "test")
    buffer.set_transform(stamped("odom", "base", rigid([0, 0, 0], [3.0, 0, 0]), 7 * SEC), "test")
    latest = buffer.lookup_transform("odom", "lidar", Time())
    assert latest.header.stamp.sec == 7
    np.testing.assert_allclose(transform_to_matrix(latest), rigid([0, 0, 0], [3.0, 0, 0]) @ BASE_LIDAR,
                               atol=1e-12)
    old = transform_to_matrix(buffer.lookup_transform("odom", "lidar", at(6.0)))
    np.testing.assert_allclose(old[:3, 3], BASE_LIDAR[:3, 3] + [2.0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(transform_to_matrix(buffer.lookup_transform("base", "lidar", at(1e6))),
                               BASE_LIDAR, atol=1e-12)


def test_cache_is_bounded_by_cache_time():
    buffer = Buffer(cache_time=Duration(seconds=2))
    for second in range(10):
        buffer.set_transform(stamped("odom", "base", rigid([0, 0, 0], [second, 0, 0]), second * SEC), "test")
    assert buffer.can_transform("odom", "base", at(7.5))
    with pytest.raises(ExtrapolationException):
        buffer.lookup_transform("odom", "base", at(6.5))


def test_lookup_with_timeout_waits_then_raises():
    buffer = Buffer()
    with pytest.raises(LookupException):
        buffer.lookup_transform("map", "base", Time(), timeout=Duration(seconds=0.05))


BROADCASTER = textwrap.dedent("""
    import numpy as np, rclpy
    from geometry_msgs.msg import TransformStamped
    from kestrel_ros.compat.tf import StaticTransformBroadcaster, TransformBroadcaster, matrix_to_transform

    def stamped(parent, child, x, stamp_ns):
        msg = TransformStamped()
        msg.header.frame_id, msg.child_frame_id = parent, child
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        matrix = np.eye(4); matrix[0, 3] = x
        msg.transform = matrix_to_transform(matrix)
        return msg

    rclpy.init()
    node = rclpy.create_node("tf_broadcaster_under_test")
    static = StaticTransformBroadcaster(node)
    static.sendTransform(stamped("base", "lidar", 0.5, 0))
    static.sendTransform(stamped("base", "camera", -0.25, 0))  # both must stay latched
    dynamic = TransformBroadcaster(node)
    steps = iter(range(100_000))
    def tick():  # odom <- base moves 1 m/s along x, sampled every 10 ms from t = 100 s
        step = next(steps)
        dynamic.sendTransform(stamped("odom", "base", step * 0.01, 100 * 10**9 + step * 10**7))
    node.create_timer(0.05, tick)
    rclpy.spin(node)
""")


def test_listener_receives_static_and_dynamic_transforms_over_dds():
    domain = int(os.environ["ROS_DOMAIN_ID"])
    process = subprocess.Popen([sys.executable, "-c", BROADCASTER], env=local_ros_env(domain),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with GraphProbe("tf_listener_under_test", domain_id=domain) as probe:
            buffer = Buffer()
            TransformListener(buffer, probe.node)

            def between_samples() -> Time | None:
                """15 ms before the newest sample: half-way between two received samples."""
                if not buffer.can_transform("odom", "camera", Time()):
                    return None
                newest = buffer.lookup_transform("odom", "camera", Time()).header.stamp
                query = Time(nanoseconds=newest.sec * SEC + newest.nanosec - 15_000_000)
                return query if buffer.can_transform("odom", "camera", query) else None

            def ready() -> bool:
                return between_samples() is not None and buffer.can_transform("lidar", "camera", Time())

            assert probe.wait_for(ready, timeout=30.0), "no transforms arrived over DDS"
            query = between_samples()
            odom_camera = transform_to_matrix(buffer.lookup_transform("odom", "camera", query))
            expected_x = (query.nanoseconds - 100 * SEC) * 1e-9 - 0.25  # 1 m/s since t = 100 s
            np.testing.assert_allclose(odom_camera[:3, 3], [expected_x, 0.0, 0.0], atol=1e-9)
            lidar_camera = transform_to_matrix(buffer.lookup_transform("lidar", "camera", Time()))
            np.testing.assert_allclose(lidar_camera[:3, 3], [-0.75, 0.0, 0.0], atol=1e-12)
    finally:
        process.terminate()
        process.wait(timeout=10)
