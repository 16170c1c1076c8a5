"""The neural_mapping node as a real process, driven through a known synthetic street.

The world and the LiDAR are ``kestrel_tools.mapping_eval``'s (walls and boxes around an
L-shaped street; a 360-beam scanner with noise and dropouts). The test publishes each scan
as a PointCloud2 in a ``lidar`` frame mounted on ``base_link`` (extrinsic on /tf_static) and
the odometry as nav_msgs/Odometry, and checks what the node makes of them: the map against
the world (IoU), the pose against the truth, ``map -> odom`` on /tf (identity while odometry
is perfect, the inverse of an injected odometry jump afterwards), the place graph, the saved
PGM/YAML against the published grid, and a reload that localizes without mapping. A second
process takes depth images with odometry from TF: a camera square in front of a wall (every
pixel at the same depth, a closed-form scene) must map that wall. Bad input (missing TF, stamps
going backwards, empty or broken clouds, wrong depth encodings, sizes or all-NaN depth) must be
counted on /diagnostics while the node keeps answering.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseWithCovarianceStamped, TransformStamped
from kestrel_interfaces.srv import SaveMap
from nav_msgs.msg import OccupancyGrid, Odometry
from nav_msgs.srv import LoadMap
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_core.mapping import se2
from kestrel_core.mapping.io import load_map_yaml
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.compat.tf import StaticTransformBroadcaster, TransformBroadcaster, matrix_to_transform
from kestrel_ros.conversions.camera_info import model_to_camera_info
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_ros.conversions.occupancy_grid import occupancy_grid_to_numpy
from kestrel_ros.conversions.planar import planar_from_pose, planar_to_pose
from kestrel_ros.conversions.pointcloud2 import array_to_pointcloud2, make_xyz_intensity_cloud
from kestrel_ros.nodes.neural_mapping import PARAMS as NODE_PARAMS
from kestrel_ros.nodes.neural_mapping import mapper_config, relocalization_config
from kestrel_ros.params import ParameterValueError
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess, reliable_qos
from kestrel_tools.mapping_eval.world import (ScannerConfig, StreetWorldConfig, World, map_iou,
                                              render_scan, street_world)

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
SCANNER = ScannerConfig(max_range=25.0)
LIDAR_HEIGHT = 0.5
# base_link <- lidar: 0.3 m ahead, LIDAR_HEIGHT up, turned 90 degrees (x of the lidar points left)
T_BASE_LIDAR = np.eye(4)
T_BASE_LIDAR[:3, :3] = Rotation.from_euler("z", np.pi / 2).as_matrix()
T_BASE_LIDAR[:3, 3] = (0.3, 0.0, LIDAR_HEIGHT)
JUMP_AT, JUMP = 14, np.array([3.0, -2.0, 0.1])  # odometry frame shift injected from step 14 on
PARAMS = {"qos_reliability": "reliable", "diagnostics_period": 0.2, "map_publish_period": 0.3,
          "grid_radius_cells": 50, "max_range": 25.0, "tf_timeout": 1.0, "odom_jump_distance": 2.5,
          "odom_jump_angle_deg": 60.0}
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def street_path(step: float = 1.5) -> np.ndarray:
    """(K, 3) poses along an L: 18 m east, then 12 m north, heading along the street."""
    east = np.arange(0.0, 18.0, step)
    north = np.arange(0.0, 12.0 + 1e-9, step)
    xy = np.concatenate([np.column_stack([east, np.zeros_like(east)]),
                         np.column_stack([np.full_like(north, 18.0), north])])
    ahead = np.diff(xy, axis=0, append=xy[-1:] + [0.0, step])
    behind = np.diff(xy, axis=0, prepend=xy[:1] - [step, 0.0])
    direction = ahead + behind  # central differences: 45 degrees at the corner
    return np.column_stack([xy, np.arctan2(direction[:, 1], direction[:, 0])])


@pytest.fixture(scope="module")
def street():
    truth = street_path()
    world = street_world(truth[:, :2], StreetWorldConfig(seed=5))
    rng = np.random.default_rng(0)
    scans = []
    for pose in truth:
        points, returned = render_scan(world, pose, SCANNER, rng)
        base = np.column_stack([points[returned], np.full(returned.sum(), LIDAR_HEIGHT)])
        lidar = (base - T_BASE_LIDAR[:3, 3]) @ T_BASE_LIDAR[:3, :3]  # base -> lidar frame
        scans.append(lidar.astype(np.float32))
    odometry = truth.copy()
    odometry[JUMP_AT:] = se2.compose(JUMP, truth[JUMP_AT:])
    return world, truth, odometry, scans


class MappingClient:
    """Publishes odometry and scans, collects the node's outputs, calls its services."""

    def __init__(self, probe: GraphProbe) -> None:
        self.probe = probe
        probe.publisher(PointCloud2, "points")
        probe.publisher(Odometry, "odom")
        probe.subscribe(PoseWithCovarianceStamped, "pose")
        probe.subscribe(TFMessage, "/tf", reliable_qos(100))
        for topic, msg_type in (("map", OccupancyGrid), ("map/features", Image), ("graph", MarkerArray)):
            probe.subscribe(msg_type, topic, LATCHED)
        self.save = probe.node.create_client(SaveMap, "save_map")
        self.load = probe.node.create_client(LoadMap, "load_map")
        self.seconds = 100

    def send(self, odom_pose: np.ndarray, cloud: PointCloud2, stamp: Time) -> None:
        odom = Odometry(header=Header(stamp=stamp, frame_id="odom"), child_frame_id="base_link")
        odom.pose.pose = planar_to_pose(odom_pose)
        cloud.header = Header(stamp=stamp, frame_id="lidar")
        self.probe.publisher(Odometry, "odom").publish(odom)
        self.probe.publisher(PointCloud2, "points").publish(cloud)

    def next_stamp(self) -> Time:
        self.seconds += 1
        return Time(sec=self.seconds)

    def pose_at(self, stamp: Time) -> PoseWithCovarianceStamped | None:
        return next((m for m in self.probe.received.get("pose", []) if stamp_ns(m) == time_ns(stamp)), None)

    def observe(self, odom_pose: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Send one observation (again every 5 s) until its pose comes back; return it (3,)."""
        stamp = self.next_stamp()
        answered = self.probe.wait_for(lambda: self.pose_at(stamp) is not None, 30.0,
                                       lambda: self.send(odom_pose, make_xyz_intensity_cloud(
                                           points, np.zeros(len(points), np.float32)), stamp), period=5.0)
        assert answered, f"no pose for the observation stamped {stamp.sec} s"
        pose = self.pose_at(stamp)
        assert pose.header.frame_id == "map"
        return planar_from_pose(pose.pose.pose.position, pose.pose.pose.orientation)

    def map_to_odom(self) -> np.ndarray | None:
        """The newest ``map -> odom`` on /tf sent for the last observation (None before it came)."""
        last = self.seconds * 10**9
        for message in reversed(self.probe.received.get("/tf", [])):
            for transform in message.transforms:
                if ((transform.header.frame_id, transform.child_frame_id) == ("map", "odom")
                        and time_ns(transform.header.stamp) >= last):
                    return planar_from_pose(transform.transform.translation, transform.transform.rotation)
        return None

    def latest(self, topic: str):
        messages = self.probe.received.get(topic, [])
        return messages[-1] if messages else None

    def wait_for_maps_after_last_observation(self, timeout: float = 10.0) -> bool:
        """Wait until map, map/features and graph were published after the last observation."""
        last = self.seconds * 10**9
        topics = ("map", "map/features", "graph")
        return self.probe.wait_for(lambda: all(self.latest(t) is not None and self._stamp(t) >= last
                                               for t in topics), timeout)

    def _stamp(self, topic: str) -> int:
        message = self.latest(topic)
        header = message.markers[0].header if isinstance(message, MarkerArray) else message.header
        return time_ns(header.stamp)

    def call(self, client, request, timeout: float = 20.0):
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} missing"
        future = client.call_async(request)
        assert self.probe.wait_for(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()


def broadcast_extrinsic(probe: GraphProbe) -> StaticTransformBroadcaster:
    broadcaster = StaticTransformBroadcaster(probe.node)
    msg = TransformStamped(child_frame_id="lidar")
    msg.header.frame_id = "base_link"
    msg.transform = matrix_to_transform(T_BASE_LIDAR)
    broadcaster.sendTransform(msg)
    return broadcaster


def expect_drop(client: MappingClient, diagnostics: DiagnosticsProbe, cause: str, send) -> None:
    before = diagnostics.dropped(cause)
    assert client.probe.wait_for(lambda: diagnostics.dropped(cause) > before, 30.0, send, period=3.0), \
        f"dropped.{cause} did not increase"


def check_map(world: World, message: OccupancyGrid, driven: np.ndarray) -> None:
    """The map matches the world, and the cells the robot drove through are free."""
    values, origin, resolution = occupancy_grid_to_numpy(message)
    assert message.header.frame_id == "map" and resolution == 0.5
    iou = map_iou(world, values, origin, resolution)
    assert iou > 0.6, f"map IoU {iou:.3f} against the world"
    cells = np.floor((driven[:, :2] - origin) / resolution).astype(int)
    np.testing.assert_array_equal(values[cells[:, 1], cells[:, 0]], 0)


def test_parameters_map_to_the_core_config_and_bad_combinations_are_rejected():
    values = {spec.name: spec.default for spec in NODE_PARAMS} | {"resolution": 0.25, "rotation_step_deg": 2.0}
    config = mapper_config(values)
    assert config.ego.resolution == config.memory.resolution == 0.25
    assert config.localization.rotation_step == pytest.approx(np.radians(2.0))
    wide = relocalization_config(values, config.localization)
    assert (wide.search_radius_cells, wide.rotation_bins) == (24, 31)
    assert wide.min_score == config.localization.min_score
    # the motion prior: degrees in, radians out, per metre too; a zero sigma turns it off
    prior = mapper_config(values | {"motion_sigma_xy": 0.2, "motion_sigma_yaw_deg": 0.5,
                                    "motion_sigma_xy_per_metre": 0.1, "motion_sigma_yaw_deg_per_metre": 2.0})
    np.testing.assert_allclose(prior.motion_sigma, (0.2, 0.2, np.radians(0.5)))
    np.testing.assert_allclose(prior.motion_sigma_per_metre, (0.1, 0.1, np.radians(2.0)))
    assert mapper_config(values | {"motion_sigma_xy": 0.0}).motion_sigma is None
    for bad, message in (({"rotation_bins": 8}, "odd"), ({"relocalization_rotation_bins": 30}, "odd"),
                         ({"min_obstacle_height": 2.0, "max_obstacle_height": 1.0}, "below")):
        with pytest.raises(ParameterValueError, match=message):
            relocalization_config(values | bad, mapper_config(values | bad).localization)


def test_mapping_node_maps_localizes_saves_reloads_and_survives_bad_input(street, tmp_path):
    world, truth, odometry, scans = street
    ros_args = [arg for name, value in PARAMS.items() for arg in ("-p", f"{name}:={value}")]
    with NodeProcess("neural_mapping", ros_args, domain_id=DOMAIN) as node, \
            GraphProbe("mapping_test_probe", domain_id=DOMAIN) as probe:
        client = MappingClient(probe)
        diagnostics = DiagnosticsProbe(probe, "neural mapping")
        try:
            # no extrinsic yet: the node waits, warns and counts
            expect_drop(client, diagnostics, "missing_transform", lambda: client.send(
                odometry[0], make_xyz_intensity_cloud(scans[0], np.zeros(len(scans[0]), np.float32)),
                client.next_stamp()))
            broadcaster = broadcast_extrinsic(probe)  # noqa: F841 (keeps the latched publisher)

            poses = np.array([client.observe(odometry[k], scans[k]) for k in range(JUMP_AT)])
            error = np.abs(poses - truth[:JUMP_AT])
            assert error[:, :2].max() < 0.25 and error[:, 2].max() < np.radians(1.0), error.max(axis=0)
            assert probe.wait_for(lambda: client.map_to_odom() is not None, 10.0)
            correction = client.map_to_odom()
            np.testing.assert_allclose(correction, np.zeros(3), atol=0.5)  # perfect odometry
            assert client.wait_for_maps_after_last_observation()
            check_map(world, client.latest("map"), truth[:JUMP_AT])
            values, origin, _ = occupancy_grid_to_numpy(client.latest("map"))
            features = image_to_numpy(client.latest("map/features"))
            assert features.shape == values.shape + (3,)
            coloured = features.any(axis=2)  # observed cells are coloured, the others black
            assert coloured[values >= 0].mean() > 0.95 and (values[~coloured] == -1).all()
            places = client.latest("graph").markers[0]
            assert places.ns == "places" and len(places.points) >= 2
            place_xy = np.array([[p.x, p.y] for p in places.points])
            assert np.linalg.norm(place_xy[:, None] - truth[None, :, :2], axis=2).min(axis=1).max() < 0.6

            # a stamp older than the last observation is dropped and counted
            expect_drop(client, diagnostics, "stamp_backwards", lambda: client.send(
                odometry[JUMP_AT - 1], make_xyz_intensity_cloud(scans[0], np.zeros(len(scans[0]), np.float32)),
                Time(sec=100)))

            # the odometry jumps: the pose stays on the truth and map -> odom absorbs the jump
            poses = np.array([client.observe(odometry[k], scans[k]) for k in range(JUMP_AT, len(truth))])
            error = np.abs(poses - truth[JUMP_AT:])
            assert error[:, :2].max() < 0.6 and error[:, 2].max() < np.radians(3.0), error.max(axis=0)
            assert probe.wait_for(lambda: int(diagnostics.value("odometry_jumps", "0")) == 1, 10.0)
            assert probe.wait_for(lambda: client.map_to_odom() is not None, 10.0)
            np.testing.assert_allclose(client.map_to_odom(), se2.inverse(JUMP), atol=0.6)
            # REP-105: map -> odom composed with the odometry is the published pose
            np.testing.assert_allclose(se2.compose(client.map_to_odom(), odometry[-1]), poses[-1], atol=1e-6)

            # save: the PGM/YAML pair holds the published grid, and reloading gives it back
            assert client.wait_for_maps_after_last_observation()
            published = client.latest("map")
            saved = client.call(client.save, SaveMap.Request(path_prefix=str(tmp_path / "street")))
            assert saved.success, saved.message
            assert saved.files == [str(tmp_path / f"street.{s}") for s in ("yaml", "pgm", "npz")]
            values, origin, resolution = occupancy_grid_to_numpy(published)
            from_file, file_origin, file_resolution = load_map_yaml(tmp_path / "street.yaml")
            np.testing.assert_array_equal(from_file, values)
            assert np.allclose(file_origin, origin) and file_resolution == resolution
            loaded = client.call(client.load, LoadMap.Request(map_url=str(tmp_path / "street.yaml")))
            assert loaded.result == LoadMap.Response.RESULT_SUCCESS
            np.testing.assert_array_equal(occupancy_grid_to_numpy(loaded.map)[0], values)
            missing = client.call(client.load, LoadMap.Request(map_url=str(tmp_path / "nothing.yaml")))
            assert missing.result == LoadMap.Response.RESULT_MAP_DOES_NOT_EXIST

            # localization only: the reloaded map localizes the robot and is not changed by it
            revisit = len(truth) - 1
            pose = client.observe(odometry[revisit], scans[revisit])
            assert np.abs(pose[:2] - truth[revisit, :2]).max() < 0.6
            assert probe.wait_for(lambda: diagnostics.value("mode") == "localization_only", 5.0)
            assert client.wait_for_maps_after_last_observation()
            np.testing.assert_array_equal(occupancy_grid_to_numpy(client.latest("map"))[0], values)

            # broken clouds are counted and skipped
            expect_drop(client, diagnostics, "empty_cloud", lambda: client.send(
                odometry[revisit], make_xyz_intensity_cloud(np.zeros((0, 3)), np.zeros(0)), client.next_stamp()))
            no_xyz = np.zeros(10, dtype=[("a", np.float32), ("b", np.float32)])
            expect_drop(client, diagnostics, "cloud_without_xyz", lambda: client.send(
                odometry[revisit], array_to_pointcloud2(no_xyz), client.next_stamp()))
            expect_drop(client, diagnostics, "no_finite_points", lambda: client.send(
                odometry[revisit], make_xyz_intensity_cloud(np.full((5, 3), np.nan, np.float32), np.zeros(5)),
                client.next_stamp()))
            assert node.alive()
        except AssertionError:
            print(node.log()[-4000:])
            raise


# ---------------------------------------------------------------------------------------------
# Depth input with odometry from TF: a camera 6 m in front of a wall seen square on, so every
# depth pixel is 6 m (a closed-form scene, no renderer needed).
WALL_DISTANCE = 6.0
DEPTH_CAMERA = PinholeCamera(64, 48, np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 23.5], [0.0, 0.0, 1.0]]))
# base_link <- camera_optical: optical z forward (base x), optical x right (-base y), y down
T_BASE_CAMERA = np.eye(4)
T_BASE_CAMERA[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
T_BASE_CAMERA[:3, 3] = (0.0, 0.0, 0.5)


def stamped(parent: str, child: str, matrix: np.ndarray, stamp: Time | None = None) -> TransformStamped:
    msg = TransformStamped(child_frame_id=child)
    msg.header.frame_id = parent
    if stamp is not None:
        msg.header.stamp = stamp
    msg.transform = matrix_to_transform(matrix)
    return msg


def test_mapping_node_maps_a_wall_from_depth_with_odometry_from_tf_and_rejects_bad_depth():
    params = {**PARAMS, "input": "depth", "odom_source": "tf"}
    ros_args = [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]
    with NodeProcess("neural_mapping", ros_args, domain_id=DOMAIN) as node, \
            GraphProbe("mapping_depth_probe", domain_id=DOMAIN) as probe:
        probe.publisher(Image, "depth")
        probe.publisher(CameraInfo, "camera_info")
        probe.subscribe(PoseWithCovarianceStamped, "pose")
        probe.subscribe(OccupancyGrid, "map", LATCHED)
        diagnostics = DiagnosticsProbe(probe, "neural mapping")
        static = StaticTransformBroadcaster(probe.node)
        static.sendTransform(stamped("base_link", "camera_optical", T_BASE_CAMERA))
        odometry = TransformBroadcaster(probe.node)
        seconds = iter(range(200, 300))

        def send(depth: np.ndarray, encoding: str, camera: PinholeCamera = DEPTH_CAMERA) -> Time:
            stamp = Time(sec=next(seconds))
            header = Header(stamp=stamp, frame_id="camera_optical")
            odometry.sendTransform(stamped("odom", "base_link", np.eye(4), stamp))
            probe.publisher(Image, "depth").publish(numpy_to_image(depth, encoding, header=header))
            probe.publisher(CameraInfo, "camera_info").publish(model_to_camera_info(camera, header=header))
            return stamp

        def answered(stamps: list[Time]) -> bool:
            wanted = {time_ns(s) for s in stamps}
            return any(stamp_ns(m) in wanted for m in probe.received.get("pose", []))

        wall = np.full((48, 64), WALL_DISTANCE, np.float32)
        try:
            # five views (one in millimetres) make the free space in front certain enough to be free
            millimetres = (wall * 1000).astype(np.uint16)
            for depth, encoding in [(wall, "32FC1"), (millimetres, "16UC1")] + [(wall, "32FC1")] * 3:
                stamps: list[Time] = []
                assert probe.wait_for(lambda: answered(stamps), 30.0,
                                      lambda: stamps.append(send(depth, encoding)), period=5.0)
            last = max(stamp_ns(m) for m in probe.received["pose"])
            assert probe.wait_for(lambda: probe.received.get("map") and stamp_ns(probe.received["map"][-1]) >= last,
                                  10.0)
            values, origin, resolution = occupancy_grid_to_numpy(probe.received["map"][-1])
            rows, cols = np.nonzero(values == 100)
            x = origin[0] + (cols + 0.5) * resolution
            y = origin[1] + (rows + 0.5) * resolution
            half_width = WALL_DISTANCE * 32 / 40.0  # the wall's extent seen through the image
            assert np.abs(x - WALL_DISTANCE).max() <= 0.75
            assert y.min() < -half_width + 1.0 and y.max() > half_width - 1.0
            assert np.abs(y).max() <= half_width + 0.75

            def value_at(px: float, py: float) -> int:
                return values[int((py - origin[1]) // resolution), int((px - origin[0]) // resolution)]

            assert value_at(3.0, 0.0) == 0 and value_at(WALL_DISTANCE + 2.0, 0.0) == -1  # free before, unknown behind

            for cause, depth, encoding, camera in (
                    ("unsupported_encoding", np.zeros((48, 64, 3), np.uint8), "rgb8", DEPTH_CAMERA),
                    ("image_camera_info_mismatch", wall, "32FC1", dataclasses.replace(DEPTH_CAMERA, width=32)),
                    ("no_valid_depth", np.full_like(wall, np.nan), "32FC1", DEPTH_CAMERA)):
                before = diagnostics.dropped(cause)
                assert probe.wait_for(lambda: diagnostics.dropped(cause) > before, 30.0,
                                      lambda: send(depth, encoding, camera), period=3.0), cause
            assert node.alive()
        except AssertionError:
            print(node.log()[-4000:])
            raise
