"""The object_discovery node's 3D path as a real process, fed clouds, an image and TF over DDS.

Clouds: a ground plane, two upright boxes (point grids on their faces, held 0.4 m above the
ground, behind the camera) and, for late fusion, the real Middlebury Motorcycle back-projected
from its ground-truth depth into a LiDAR frame 0.1 m above the camera. The node must publish
Detection3DArray boxes equal to the known boxes, keep box track ids over clouds while the boxes
move, draw a cube and a label per box and delete the markers of a box that disappears, confirm
the Motorcycle cluster with its MaskCut mask (score above 0.5) but not the boxes outside the
image, publish 3D-only objects when camera_info or the transform is missing, and count NaN
points, empty clouds and clouds without x/y/z on /diagnostics while it keeps running.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from kestrel_core.discovery import ConfirmedObject, OrientedBox3D, TrackedObject
from kestrel_core.discovery.boxes import yaw_rotation
from kestrel_core.discovery.evaluation import foreground_from_disparity
from kestrel_core.fusion import default_T_lidar_cam
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.compat.tf import StaticTransformBroadcaster, matrix_to_transform
from kestrel_ros.conversions.camera_info import model_to_camera_info
from kestrel_ros.conversions.detections3d import detection3d_to_box
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.conversions.markers import BOX_NAMESPACE, LABEL_NAMESPACE
from kestrel_ros.conversions.pointcloud2 import array_to_pointcloud2, make_xyz_intensity_cloud
from kestrel_ros.discovery3d import published_objects
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess
from kestrel_tools.training.depth_completion import motorcycle_scene

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
CAMERA_FRAME, LIDAR_FRAME = "camera_optical", "lidar"
T_LIDAR_CAM = default_T_lidar_cam(0.1)
BOX_A = (np.array([-6.0, 3.0, 0.0]), np.array([2.0, 1.0, 1.5]), 0.4)     # centre z set on the ground
BOX_B = (np.array([-5.0, -4.0, 0.0]), np.array([1.2, 0.6, 1.0]), -0.8)
HOVER_M = 0.4   # box bottoms above the ground, so ground removal leaves the whole box
STATUS_3D = "objects 3d"


def box_surface(center: np.ndarray, extents: np.ndarray, yaw: float, spacing: float = 0.1) -> np.ndarray:
    """(M, 3) points on a regular grid over the six faces of an upright box (corners included)."""
    half = extents / 2.0
    axes = [np.linspace(-h, h, int(round(2 * h / spacing)) + 1) for h in half]
    faces = []
    for normal in range(3):
        a, b = [axis for axis in range(3) if axis != normal]
        grid_a, grid_b = np.meshgrid(axes[a], axes[b], indexing="ij")
        for side in (-half[normal], half[normal]):
            face = np.empty((grid_a.size, 3))
            face[:, normal], face[:, a], face[:, b] = side, grid_a.ravel(), grid_b.ravel()
            faces.append(face)
    return np.concatenate(faces) @ yaw_rotation(yaw).T + center


@pytest.fixture(scope="module")
def scene() -> dict:
    image, depth, camera = motorcycle_scene()
    foreground = foreground_from_disparity(load_middlebury_motorcycle().ground_truth)
    v, u = np.mgrid[0:camera.height:6, 0:camera.width:6]
    d = depth[v, u]
    keep = foreground[v, u] & np.isfinite(d) & (d < 3.5)     # the bike, not the wall seen through it
    u, v, d = u[keep], v[keep], d[keep]
    in_camera = np.column_stack(((u - camera.cx) * d / camera.fx, (v - camera.cy) * d / camera.fy, d,
                                 np.ones_like(d)))
    motorcycle = (T_LIDAR_CAM @ in_camera.T).T[:, :3]
    ground_z = motorcycle[:, 2].min() - 0.6
    grid = np.mgrid[-12:12:0.4, -12:12:0.4].reshape(2, -1).T
    ground = np.column_stack((grid, np.full(len(grid), ground_z)))
    return {"image": image, "camera": camera, "motorcycle": motorcycle, "ground": ground,
            "ground_z": ground_z}


def placed(box: tuple, ground_z: float, shift_x: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    center, extents, yaw = box
    return np.array([center[0] + shift_x, center[1], ground_z + HOVER_M + extents[2] / 2]), extents, yaw


def cloud_of(*parts: np.ndarray) -> PointCloud2:
    points = np.concatenate(parts).astype(np.float32)
    return make_xyz_intensity_cloud(points, np.zeros(len(points), np.float32))


class Client:
    """Publishes clouds, images and camera_info; pairs each cloud's two 3D outputs by order."""

    def __init__(self, probe: GraphProbe, node: NodeProcess) -> None:
        self.probe, self.node = probe, node
        for topic, msg_type in (("points", PointCloud2), ("image", Image), ("camera_info", CameraInfo)):
            probe.publisher(msg_type, topic)
        for topic, msg_type in (("detections_3d", Detection3DArray), ("markers", MarkerArray),
                                ("detections", Detection2DArray)):
            probe.subscribe(msg_type, topic)
        self.diagnostics = DiagnosticsProbe(probe, STATUS_3D)
        self._stamps = itertools.count(1)

    def stamp(self) -> Time:
        return Time(sec=1_000 + 10 * next(self._stamps), nanosec=0)

    def cloud(self, cloud: PointCloud2, stamp: Time | None = None,
              frame_id: str = LIDAR_FRAME) -> tuple[Detection3DArray, MarkerArray]:
        """Publish one cloud and return its detections_3d and markers (each cloud gets one of
        each, published in that order, so the k-th of both belong together)."""
        stamp = stamp or self.stamp()
        cloud.header = Header(stamp=stamp, frame_id=frame_id)
        received = self.probe.received
        first = len(received["detections_3d"])             # clouds may share a stamp
        self.probe.publisher(PointCloud2, "points").publish(cloud)
        index = lambda: next((k for k in range(first, len(received["detections_3d"]))  # noqa: E731
                              if stamp_ns(received["detections_3d"][k]) == time_ns(stamp)), None)
        done = self.probe.wait_for(lambda: index() is not None and len(received["markers"]) > index(), 30.0)
        assert done, f"no 3D answer\n{self.node.log()}"
        return received["detections_3d"][index()], received["markers"][index()]

    def image(self, pixels: np.ndarray, camera=None) -> Time:
        """Publish an image (and camera_info) and wait for the node's 2D answer."""
        stamp = self.stamp()
        header = Header(stamp=stamp, frame_id=CAMERA_FRAME)
        if camera is not None:
            info = model_to_camera_info(camera, header=header)
            self.probe.publisher(CameraInfo, "camera_info").publish(info)
        self.probe.publisher(Image, "image").publish(numpy_to_image(pixels, "rgb8", header=header))
        done = self.probe.wait_for(lambda: any(stamp_ns(m) == time_ns(stamp)
                                               for m in self.probe.received["detections"]), 120.0)
        assert done, f"no 2D answer\n{self.node.log()}"
        return stamp

    def counter(self, key: str) -> int:
        return int(self.diagnostics.value(key, "0"))

    def wait_counter_above(self, key: str, before: int) -> None:
        assert self.probe.wait_for(lambda: self.counter(key) > before, 30.0), (key, self.node.log())


@pytest.fixture(scope="module")
def client(pretrained_path):
    ros_args = []
    for param in ("qos_reliability:=reliable", "diagnostics_period:=0.2", "device:=cpu",
                  "track_persistence:=1", f"model_path:={pretrained_path}", "box_persistence:=2",
                  "box_max_missed:=0"):
        ros_args += ["-p", param]
    with NodeProcess("object_discovery", ros_args, domain_id=DOMAIN) as node, \
            GraphProbe("discovery_3d_test_probe", domain_id=DOMAIN) as probe:
        client = Client(probe, node)
        assert probe.wait_for_subscribers(["points", "image", "camera_info"], timeout=120.0), node.log()
        yield client
        assert node.alive(), node.log()


def assert_box(detection, expected: tuple[np.ndarray, np.ndarray, float]) -> None:
    center, extents, yaw = expected
    box = detection3d_to_box(detection)
    np.testing.assert_allclose(box.center, center, atol=0.01)
    np.testing.assert_allclose(box.extents, extents, atol=0.01)
    assert abs(math.remainder(box.yaw - yaw, math.pi)) < 0.01


def markers_by_action(markers: MarkerArray) -> dict[int, set[tuple[str, int]]]:
    found: dict[int, set[tuple[str, int]]] = {Marker.ADD: set(), Marker.DELETE: set()}
    for marker in markers.markers:
        found[marker.action].add((marker.ns, marker.id))
    return found


def test_boxes_track_ids_and_markers_in_3d_only_mode(client, scene):
    ground_z = scene["ground_z"]

    def frame(step: int, with_b: bool = True):
        boxes = [placed(BOX_A, ground_z, 0.1 * step)]
        if with_b:
            boxes.append(placed(BOX_B, ground_z, -0.1 * step))
        return boxes, cloud_of(scene["ground"], *(box_surface(*b) for b in boxes))

    _, cloud = frame(0)
    first, first_markers = client.cloud(cloud)
    assert first.detections == [] and first_markers.markers == []     # box_persistence 2
    ids = None
    for step in (1, 2):
        boxes, cloud = frame(step)
        detections, markers = client.cloud(cloud)
        assert detections.header.frame_id == LIDAR_FRAME and len(detections.detections) == 2
        a, b = sorted(detections.detections, key=lambda d: d.bbox.center.position.y, reverse=True)
        assert_box(a, boxes[0])
        assert_box(b, boxes[1])
        for found in (a, b):
            assert found.results[0].hypothesis.class_id == "object"
            assert found.results[0].hypothesis.score == pytest.approx(0.5)   # no masks: 3D only
        assert ids is None or (a.id, b.id) == ids                          # stable while moving
        ids = (a.id, b.id)
        shown = markers_by_action(markers)
        assert shown[Marker.ADD] == {(ns, int(i)) for ns in (BOX_NAMESPACE, LABEL_NAMESPACE) for i in ids}
        assert shown[Marker.DELETE] == set()
    client.wait_counter_above("late_fusion_skipped.no_recent_masks", 2)   # one per cloud so far

    boxes, cloud = frame(3, with_b=False)                                 # box B is gone
    detections, markers = client.cloud(cloud)
    assert [d.id for d in detections.detections] == [ids[0]]
    assert_box(detections.detections[0], boxes[0])
    shown = markers_by_action(markers)
    assert shown[Marker.DELETE] == {(BOX_NAMESPACE, int(ids[1])), (LABEL_NAMESPACE, int(ids[1]))}
    assert shown[Marker.ADD] == {(BOX_NAMESPACE, int(ids[0])), (LABEL_NAMESPACE, int(ids[0]))}


def test_bad_clouds_are_counted_and_nan_points_skipped(client, scene):
    box = placed(BOX_A, scene["ground_z"], 1.0)
    points = np.concatenate([scene["ground"], box_surface(*box)]).astype(np.float32)
    mixed = np.full((2 * len(points), 3), np.nan, np.float32)   # every other row NaN or inf
    mixed[0::2] = points
    mixed[1::4, 2] = np.inf
    before = client.counter("non_finite_points")
    for _ in range(2):                                    # persistence 2: the second is published
        detections, _ = client.cloud(cloud_of(mixed))
    assert len(detections.detections) == 1
    assert_box(detections.detections[0], box)             # the finite points alone define it
    expected_count = before + 2 * len(points)
    assert client.probe.wait_for(lambda: client.counter("non_finite_points") == expected_count, 10.0)

    def expect_drop(cause: str, cloud: PointCloud2) -> None:
        before = client.diagnostics.dropped(cause)
        cloud.header = Header(stamp=client.stamp(), frame_id=LIDAR_FRAME)
        client.probe.publisher(PointCloud2, "points").publish(cloud)
        assert client.probe.wait_for(lambda: client.diagnostics.dropped(cause) > before, 30.0), \
            (cause, client.node.log())

    expect_drop("empty_cloud", PointCloud2())
    no_xyz = np.zeros(10, np.dtype([("range", np.float32), ("intensity", np.float32)]))
    expect_drop("cloud_without_xyz", array_to_pointcloud2(no_xyz))
    expect_drop("no_finite_points", cloud_of(np.full((20, 3), np.nan)))
    detections, _ = client.cloud(cloud_of(points))        # still answering
    assert len(detections.detections) == 1
    assert client.node.alive(), client.node.log()


def test_late_fusion_confirms_the_motorcycle_and_degrades_to_3d_only(client, scene):
    box = placed(BOX_A, scene["ground_z"])
    points = [scene["ground"], scene["motorcycle"], box_surface(*box)]
    centroid = scene["motorcycle"].mean(axis=0)

    def objects(detections: Detection3DArray) -> tuple:
        by_distance = sorted(detections.detections, key=lambda d: np.linalg.norm(
            detection3d_to_box(d).center - centroid))
        return by_distance[0], by_distance[-1]          # the motorcycle's box, box A

    # 1. masks but no camera_info yet: 3D only, warned and counted.
    stamp = client.image(scene["image"])
    before = client.counter("late_fusion_skipped.no_camera_info")
    client.cloud(cloud_of(*points), stamp)
    detections, _ = client.cloud(cloud_of(*points), stamp)
    assert len(detections.detections) == 2
    assert all(d.results[0].hypothesis.score == pytest.approx(0.5) for d in detections.detections)
    client.wait_counter_above("late_fusion_skipped.no_camera_info", before)

    # 2. camera_info but no transform to this LiDAR frame: 3D only again.
    stamp = client.image(scene["image"], scene["camera"])
    before = client.counter("late_fusion_skipped.missing_transform")
    detections, _ = client.cloud(cloud_of(*points), stamp, frame_id="lidar_unmounted")
    assert all(d.results[0].hypothesis.score == pytest.approx(0.5) for d in detections.detections)
    client.wait_counter_above("late_fusion_skipped.missing_transform", before)

    # 3. with the extrinsic on /tf_static: the Motorcycle is confirmed by its mask, box A is
    #    behind the camera and stays 3D only.
    transform = TransformStamped()
    transform.header.frame_id, transform.child_frame_id = LIDAR_FRAME, CAMERA_FRAME
    transform.transform = matrix_to_transform(T_LIDAR_CAM)
    broadcaster = StaticTransformBroadcaster(client.probe.node)  # noqa: F841 (kept alive: latched)
    broadcaster.sendTransform(transform)
    confirmed = lambda d: d.results[0].hypothesis.score > 0.5  # noqa: E731
    replies = []
    done = client.probe.wait_for(
        lambda: bool(replies) and any(confirmed(d) for d in replies[-1][0].detections), 60.0,
        while_waiting=lambda: replies.append(client.cloud(cloud_of(*points), stamp)), period=1.0)
    assert done, client.node.log()
    detections, markers = replies[-1]
    assert len(detections.detections) == 2
    motorcycle, box_a = objects(detections)
    # score 0.5 + 0.5 * overlap, overlap >= fusion_min_overlap (0.5)
    assert motorcycle.results[0].hypothesis.score >= 0.75 and not confirmed(box_a)
    assert box_a.results[0].hypothesis.score == pytest.approx(0.5)
    assert_box(box_a, box)
    fitted = detection3d_to_box(motorcycle)
    inside = np.abs((scene["motorcycle"] - fitted.center) @ fitted.rotation()) <= fitted.extents / 2 + 1e-3
    assert inside.all(axis=1).all()                        # the box encloses the bike's points
    assert client.probe.wait_for(lambda: client.counter("confirmed_objects") == 1, 10.0)
    labels = {m.id: m.text for m in markers.markers if m.ns == LABEL_NAMESPACE}
    assert "(2D " in labels[int(motorcycle.id)] and "(2D " not in labels[int(box_a.id)]


def test_an_invalid_cluster_size_range_stops_the_node_with_one_line():
    with NodeProcess("object_discovery", ["-p", "cluster_min_points:=50", "-p", "cluster_max_points:=10"],
                     domain_id=DOMAIN) as node:
        assert node.process.wait(timeout=60) == 2, node.log()
    lines = [line for line in node.log().splitlines() if "cannot start" in line]
    assert len(lines) == 1 and "min_points <= max_points" in lines[0], node.log()


def test_published_objects_and_scores():
    boxes = [OrientedBox3D(np.array([float(i), 0.0, 0.0]), np.ones(3), 0.0) for i in range(3)]
    tracked = [TrackedObject(0, 7, 3, True), TrackedObject(1, 8, 1, False), TrackedObject(2, 9, 2, True)]
    confirmed = {2: ConfirmedObject(cluster=2, instance=4, overlap=0.8, visible_points=40),
                 1: ConfirmedObject(cluster=1, instance=5, overlap=1.0, visible_points=40)}
    every = published_objects(boxes, tracked, confirmed, only_confirmed=False)
    assert [(o.track_id, o.box is boxes[i]) for o, i in zip(every, (0, 2))] == [(7, True), (9, True)]
    assert [o.score for o in every] == pytest.approx([0.5, 0.9])      # 0.5 + 0.5 * overlap
    assert [o.track_id for o in published_objects(boxes, tracked, confirmed, only_confirmed=True)] == [9]
    assert every[1].labelled_box().label == "9 (2D 4)" and every[0].labelled_box().label == "7"
