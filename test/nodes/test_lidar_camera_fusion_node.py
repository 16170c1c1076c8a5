"""The lidar_camera_fusion node as a real process, fed a LiDAR simulated from real depth.

The scene is Middlebury Motorcycle: a 64-beam LiDAR is simulated from its ground-truth depth
(the points are exact back-projections of pixel centres), published with the real image, its
CameraInfo and the LiDAR <- camera extrinsic on /tf_static. Painted colours must be the
image's pixels at those points, the sparse depth the ground truth there, and the dense depth
close to the ground truth everywhere. Bad input must be counted on /diagnostics while the
node keeps answering good input.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from kestrel_interfaces.msg import FeatureMap
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from kestrel_core.fusion import complete_depth_guided, default_T_lidar_cam, simulate_lidar_from_depth
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.compat.tf import StaticTransformBroadcaster, matrix_to_transform
from kestrel_ros.conversions.camera_info import model_to_camera_info
from kestrel_ros.conversions.feature_map import feature_map_to_numpy
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_ros.conversions.pointcloud2 import (
    array_to_pointcloud2,
    make_xyz_intensity_cloud,
    pointcloud2_to_array,
    rgb_float_to_uint8,
)
from kestrel_tools.benchmarks.fusion import nearest_fill
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess, reliable_qos
from kestrel_tools.training.depth_completion import motorcycle_scene

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
CAMERA_FRAME, LIDAR_FRAME = "camera_optical", "lidar"
T_LIDAR_CAM = default_T_lidar_cam(0.1)
BEV = {"bev_x_min": 0.0, "bev_x_max": 8.0, "bev_y_min": -4.0, "bev_y_max": 4.0, "bev_resolution": 0.25}
OUTPUTS = {"points/painted": PointCloud2, "depth/sparse": Image, "depth/dense": Image,
           "bev": OccupancyGrid, "bev/features": FeatureMap}


@pytest.fixture(scope="module")
def scene():
    image, depth, camera = motorcycle_scene()
    points = simulate_lidar_from_depth(depth, camera, n_beams=64, T_lidar_cam=T_LIDAR_CAM).numpy()
    behind = np.column_stack((-np.linspace(1, 5, 100), np.zeros(100), np.zeros(100))).astype(np.float32)
    return image, depth, camera, points, behind


class FusionClient:
    """Publishes (cloud, image, camera_info) triples and collects the node's answers by stamp."""

    def __init__(self, probe: GraphProbe, camera) -> None:
        self.probe = probe
        self.camera = camera
        for topic, msg_type in (("points", PointCloud2), ("image", Image), ("camera_info", CameraInfo)):
            probe.publisher(msg_type, topic)
        for topic, msg_type in OUTPUTS.items():
            probe.subscribe(msg_type, topic)
        self._seconds = itertools.count(100)

    def send(self, cloud: PointCloud2, image: np.ndarray, camera=None) -> Time:
        stamp = Time(sec=next(self._seconds), nanosec=0)
        cloud.header = Header(stamp=stamp, frame_id=LIDAR_FRAME)
        camera_header = Header(stamp=stamp, frame_id=CAMERA_FRAME)
        self.probe.publisher(PointCloud2, "points").publish(cloud)
        self.probe.publisher(Image, "image").publish(numpy_to_image(image, "rgb8", header=camera_header))
        self.probe.publisher(CameraInfo, "camera_info").publish(
            model_to_camera_info(camera or self.camera, header=camera_header))
        return stamp

    def replies(self, stamp: Time) -> dict:
        key = time_ns(stamp)
        return {topic: msg for topic in OUTPUTS for msg in self.probe.received.get(topic, [])
                if stamp_ns(msg) == key}

    def request(self, make_cloud, image: np.ndarray, timeout: float = 90.0) -> dict:
        """Send a triple (again every 15 s) until every output for one of them arrived."""
        stamps: list[Time] = []
        answered = lambda: any(len(self.replies(s)) == len(OUTPUTS) for s in stamps)  # noqa: E731
        done = self.probe.wait_for(answered, timeout, lambda: stamps.append(self.send(make_cloud(), image)),
                                   period=15.0)
        assert done, "no complete answer from lidar_camera_fusion"
        return next(self.replies(s) for s in stamps if len(self.replies(s)) == len(OUTPUTS))

    def expect_drop(self, diagnostics: DiagnosticsProbe, cause: str, make_cloud, image: np.ndarray,
                    camera=None) -> None:
        before = diagnostics.dropped(cause)
        done = self.probe.wait_for(lambda: diagnostics.dropped(cause) > before, 60.0,
                                   lambda: self.send(make_cloud(), image, camera), period=5.0)
        assert done, f"dropped.{cause} did not increase"


def cloud_with_intensity(points: np.ndarray) -> PointCloud2:
    return make_xyz_intensity_cloud(points, np.arange(len(points), dtype=np.float32))


def broadcast_extrinsic(probe: GraphProbe) -> StaticTransformBroadcaster:
    """lidar <- camera_optical on /tf_static: the node must invert it."""
    broadcaster = StaticTransformBroadcaster(probe.node)
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = LIDAR_FRAME, CAMERA_FRAME
    msg.transform = matrix_to_transform(T_LIDAR_CAM)
    broadcaster.sendTransform(msg)
    return broadcaster


def check_content(replies: dict, scene, sent_points: np.ndarray) -> None:
    image, depth, camera, points, behind = scene
    painted = pointcloud2_to_array(replies["points/painted"])
    assert replies["points/painted"].header.frame_id == LIDAR_FRAME
    assert len(painted) == len(points)  # the points behind the camera are not painted
    xyz = np.column_stack([painted[n] for n in "xyz"])
    np.testing.assert_allclose(xyz, points, atol=1e-6)
    np.testing.assert_array_equal(painted["intensity"], np.arange(len(points), dtype=np.float32))
    # simulated points are back-projected pixel centres: their colour is that pixel's
    camera_points = (np.linalg.inv(T_LIDAR_CAM) @ np.column_stack((points, np.ones(len(points)))).T).T
    u = np.rint(camera.fx * camera_points[:, 0] / camera_points[:, 2] + camera.cx).astype(int)
    v = np.rint(camera.fy * camera_points[:, 1] / camera_points[:, 2] + camera.cy).astype(int)
    np.testing.assert_array_equal(rgb_float_to_uint8(painted["rgb"]), image[v, u])

    sparse = image_to_numpy(replies["depth/sparse"])
    assert replies["depth/sparse"].header.frame_id == CAMERA_FRAME
    np.testing.assert_allclose(sparse[v, u], depth[v, u], rtol=1e-4)
    assert np.isfinite(sparse).sum() == len(points)
    dense = image_to_numpy(replies["depth/dense"])
    # the core's image-guided completion (an iterative solve: summation order may differ)
    np.testing.assert_allclose(dense, complete_depth_guided(sparse, image)[0], rtol=1e-4, atol=1e-4)
    known = np.isfinite(depth)

    def rmse(values: np.ndarray) -> float:
        return float(np.sqrt(np.mean((values[known] - depth[known]) ** 2)))

    assert rmse(dense) < 0.2, f"dense depth RMSE {rmse(dense):.3f} m"  # scene depths 2-5 m
    assert rmse(dense) < rmse(nearest_fill(sparse))

    grid = replies["bev"]
    cells = np.asarray(grid.data, dtype=np.int8).reshape(grid.info.height, grid.info.width)
    col = np.floor((sent_points[:, 0] - BEV["bev_x_min"]) / BEV["bev_resolution"]).astype(int)
    row = np.floor((sent_points[:, 1] - BEV["bev_y_min"]) / BEV["bev_resolution"]).astype(int)
    inside = (col >= 0) & (col < grid.info.width) & (row >= 0) & (row < grid.info.height)
    expected = np.full(cells.shape, -1, np.int8)
    expected[row[inside], col[inside]] = 100
    np.testing.assert_array_equal(cells, expected)
    features = feature_map_to_numpy(replies["bev/features"])
    assert features.shape == (6, grid.info.height, grid.info.width)
    np.testing.assert_array_equal(features[1] > 0, cells == 100)


def test_fusion_node_paints_projects_completes_and_survives_bad_input(scene):
    image, depth, camera, points, behind = scene
    sent = np.concatenate((points, behind))
    params = ["qos_reliability:=reliable", "diagnostics_period:=0.2", "completion:=classical"]
    params += [f"{name}:={value}" for name, value in BEV.items()]
    ros_args = [arg for param in params for arg in ("-p", param)]
    with NodeProcess("lidar_camera_fusion", ros_args, domain_id=DOMAIN) as node, \
            GraphProbe("fusion_test_probe", domain_id=DOMAIN) as probe:
        client = FusionClient(probe, camera)
        diagnostics = DiagnosticsProbe(probe, "lidar camera fusion")
        try:
            # no extrinsic yet: the node waits, warns and counts
            client.expect_drop(diagnostics, "missing_transform", lambda: cloud_with_intensity(sent), image)
            broadcaster = broadcast_extrinsic(probe)  # noqa: F841 (keeps the latched publisher)
            replies = client.request(lambda: cloud_with_intensity(sent), image)
            check_content(replies, scene, sent)
            share = len(points) / len(sent)  # the points behind the camera miss the image
            assert probe.wait_for(
                lambda: abs(float(diagnostics.value("points_in_image", "nan")) - share) < 1e-4, 10.0), \
                f"points_in_image {diagnostics.value('points_in_image')} != {share:.4f}"

            client.expect_drop(diagnostics, "empty_cloud", lambda: cloud_with_intensity(np.zeros((0, 3))), image)
            no_xyz = np.zeros(10, dtype=[("a", np.float32), ("b", np.float32)])
            client.expect_drop(diagnostics, "cloud_without_xyz", lambda: array_to_pointcloud2(no_xyz), image)
            small = dataclasses.replace(camera, width=camera.width // 2)
            client.expect_drop(diagnostics, "image_camera_info_mismatch",
                               lambda: cloud_with_intensity(sent), image, camera=small)

            # NaN points are skipped and counted; the rest is fused as before
            with_nan = np.concatenate((sent, np.full((7, 3), np.nan, np.float32)))
            replies = client.request(lambda: make_xyz_intensity_cloud(
                with_nan, np.concatenate((np.arange(len(points)), np.zeros(107))).astype(np.float32)), image)
            check_content(replies, scene, sent)
            assert probe.wait_for(lambda: int(diagnostics.value("non_finite_points", "0")) >= 7, 10.0)
            assert node.alive()
        except AssertionError:
            print(node.log()[-4000:])
            raise
