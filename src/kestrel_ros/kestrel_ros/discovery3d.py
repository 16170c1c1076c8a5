"""The 3D half of the ``object_discovery`` node: LiDAR clusters as tracked, upright boxes.

Runs on the cloud's own clock: every ``points`` message is processed when it arrives,
whether or not images come. Per cloud: NaN/inf points are dropped (counted in
``non_finite_points``), the ground is removed and the rest clustered
(:func:`kestrel_core.discovery.cluster_objects`), one upright box is fitted per cluster
(:func:`~kestrel_core.discovery.fit_boxes`) and the boxes are tracked by centre distance
(:class:`~kestrel_core.discovery.BoxTracker`); tracks matched in fewer than
``box_persistence`` clouds are not published.

Late fusion. When the node's newest 2D result (the instance image of its published 2D
objects) is stamped within ``fusion_slop`` of the cloud, the clusters are projected into that
camera (``camera_info``, and the camera <- LiDAR transform from TF at the cloud's stamp) and
paired with the masks (:func:`~kestrel_core.discovery.confirm_objects`). A paired cluster
is *3D-confirmed*: its score is ``0.5 + 0.5 * overlap`` (above 0.5), an unconfirmed one
scores 0.5. With ``publish_3d: confirmed`` only confirmed objects are published. Without
camera_info or transform the cloud is published 3D-only, with a throttled warning and a
``late_fusion_skipped.<cause>`` counter on ``/diagnostics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from kestrel_core.discovery import (
    BoxTracker,
    ClusterConfig,
    ConfirmedObject,
    GroundConfig,
    LateFusionConfig,
    OrientedBox3D,
    TrackedObject,
    TrackerConfig,
    cluster_objects,
    confirm_objects,
    fit_boxes,
)
from kestrel_core.geometry.camera import PinholeCamera
from kestrel_ros.cloud_input import read_xyz, split_finite
from kestrel_ros.compat.approximate_time import time_ns
from kestrel_ros.compat.tf import Buffer, TransformException, TransformListener, transform_to_matrix
from kestrel_ros.conversions.camera_info import CameraInfoError, CameraModelCache
from kestrel_ros.conversions.detections3d import box_to_detection3d
from kestrel_ros.conversions.markers import BoxMarkers, LabelledBox
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.params import ParameterValueError, ParamSpec
from kestrel_ros.qos import output_qos, sensor_qos

CLASS_ID = "object"
UNCONFIRMED_SCORE = 0.5
# Tracks continue when the similarity 1 - distance / max_distance is at least this.
_BOX_MIN_SIMILARITY = 0.3
_CONFIRMED_RGBA = (0.1, 0.8, 0.2, 0.5)
_UNCONFIRMED_RGBA = (1.0, 0.6, 0.1, 0.5)

PARAMS_3D = (
    ParamSpec("ground_method", "ransac", "Ground removal of the points: ransac (plane fitted by "
              "RANSAC, normal within 15 deg of z), height (z <= ground_height) or none.",
              choices=("ransac", "height", "none")),
    ParamSpec("ground_distance", 0.15, "RANSAC: points within this distance (m) of the ground "
              "plane are ground.", minimum=0.01, maximum=5.0),
    ParamSpec("ground_height", 0.0, "Method height: points with z at or below this (m, cloud "
              "frame) are ground.", minimum=-100.0, maximum=100.0),
    ParamSpec("cluster_tolerance", 0.5, "Euclidean clustering link distance (m): points closer "
              "than this are in one cluster.", minimum=0.01, maximum=10.0),
    ParamSpec("cluster_min_points", 10, "Clusters with fewer points are dropped.",
              minimum=1, maximum=10_000_000),
    ParamSpec("cluster_max_points", 100_000, "Clusters with more points are dropped.",
              minimum=1, maximum=10_000_000),
    ParamSpec("cluster_voxel_size", 0.1, "Voxel edge (m): clustering links the centroids of the "
              "occupied voxels instead of the points (tens of times faster on dense clouds, exact "
              "within about a voxel diagonal); 0 links the points themselves.", minimum=0.0, maximum=5.0),
    ParamSpec("box_persistence", 3, "Clouds a 3D box track must be matched in before it is "
              "published.", minimum=1, maximum=1000),
    ParamSpec("box_max_missed", 2, "Clouds a 3D box track may go unmatched before it ends.",
              minimum=0, maximum=1000),
    ParamSpec("box_match_distance", 1.0, "Largest distance (m) between a box centre and a "
              "track's last centre for the box to continue the track.", minimum=0.01, maximum=100.0),
    ParamSpec("fusion_slop", 0.5, "Late fusion uses the newest 2D masks when their stamp is "
              "within this many seconds of the cloud's.", minimum=0.0, maximum=60.0),
    ParamSpec("fusion_min_overlap", 0.5, "Share of a cluster's points in the image that must "
              "fall on one mask for the cluster to be 3D-confirmed.", minimum=0.01, maximum=1.0),
    ParamSpec("publish_3d", "all", "Which 3D objects detections_3d and markers carry: all "
              "persistent clusters (confirmed ones score above 0.5) or only confirmed ones.",
              choices=("all", "confirmed")),
)

# Parameters whose change restarts the box tracks.
BOX_TRACKER_PARAMS = ("box_persistence", "box_max_missed", "box_match_distance")


@dataclass(frozen=True)
class Configs3D:
    """The core configurations of one cloud, from the node's parameter values."""

    ground: GroundConfig
    clusters: ClusterConfig
    fusion: LateFusionConfig


def configs_from_values(values: dict) -> Configs3D:
    """Core configs of the 3D parameters; raises ParameterValueError on an invalid mix."""
    try:
        return Configs3D(
            GroundConfig(method=values["ground_method"], distance=values["ground_distance"],
                         height=values["ground_height"]),
            ClusterConfig(radius=values["cluster_tolerance"], min_points=values["cluster_min_points"],
                          max_points=values["cluster_max_points"], voxel_size=values["cluster_voxel_size"]),
            LateFusionConfig(min_overlap=values["fusion_min_overlap"]))
    except ValueError as err:
        raise ParameterValueError(f"invalid 3D discovery parameters: {err}") from err


def box_tracker(values: dict) -> BoxTracker:
    """A fresh box tracker for the ``box_*`` parameters."""
    config = TrackerConfig(min_similarity=_BOX_MIN_SIMILARITY, persistence=values["box_persistence"],
                           max_missed=values["box_max_missed"])
    return BoxTracker(config, max_distance=values["box_match_distance"] / (1.0 - _BOX_MIN_SIMILARITY))


@dataclass(frozen=True)
class MaskFrame:
    """The node's newest 2D result.

    Attributes:
        ids: ``(H, W)`` uint16 track ids of the published 2D objects, 0 = background.
        header: the image's header (stamp and camera frame).
    """

    ids: np.ndarray
    header: Header


@dataclass(frozen=True)
class Object3D:
    """A published 3D object.

    Attributes:
        track_id: box track id, stable over clouds.
        box: its upright box in the cloud's frame.
        confirmation: the mask that confirms it, or None (3D only).
    """

    track_id: int
    box: OrientedBox3D
    confirmation: ConfirmedObject | None

    @property
    def score(self) -> float:
        """0.5 for a 3D-only object, ``0.5 + 0.5 * overlap`` for a confirmed one."""
        if self.confirmation is None:
            return UNCONFIRMED_SCORE
        return UNCONFIRMED_SCORE + (1.0 - UNCONFIRMED_SCORE) * self.confirmation.overlap

    def labelled_box(self) -> LabelledBox:
        if self.confirmation is None:
            return LabelledBox(self.track_id, self.box, f"{self.track_id}", _UNCONFIRMED_RGBA)
        return LabelledBox(self.track_id, self.box, f"{self.track_id} (2D {self.confirmation.instance})",
                           _CONFIRMED_RGBA)


def published_objects(boxes: list[OrientedBox3D], tracked: list[TrackedObject],
                      confirmed: dict[int, ConfirmedObject], only_confirmed: bool) -> list[Object3D]:
    """The objects to publish: persistent tracks (and, with ``only_confirmed``, confirmed
    ones), where ``tracked[i]`` and ``confirmed[i]`` belong to cluster ``i`` / ``boxes[i]``."""
    objects = [Object3D(t.track_id, boxes[t.index], confirmed.get(t.index)) for t in tracked if t.published]
    return [o for o in objects if o.confirmation is not None or not only_confirmed]


class Discovery3D:
    """Subscribes ``points`` and ``camera_info``, publishes ``detections_3d`` and ``markers``.

    Args:
        node: the node that owns the subscriptions and publishers.
        values: the node's parameter values (read at every cloud; updated by the node).
        latest_masks: returns the node's newest 2D result, or None before the first one.
    """

    def __init__(self, node: Node, values: dict, latest_masks: Callable[[], MaskFrame | None]) -> None:
        self._node = node
        self._values = values
        self._latest_masks = latest_masks
        self.configs = configs_from_values(values)
        self.tracker = box_tracker(values)
        self._markers = BoxMarkers()
        self._cameras = CameraModelCache()
        self._camera_info: CameraInfo | None = None
        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, node)

        qos = sensor_qos(values["qos_reliability"], values["qos_depth"])
        group = MutuallyExclusiveCallbackGroup()
        node.create_subscription(PointCloud2, "points", self._on_points, qos, callback_group=group)
        node.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos, callback_group=group)
        self._detections_pub = node.create_publisher(Detection3DArray, "detections_3d", output_qos())
        self._markers_pub = node.create_publisher(MarkerArray, "markers", output_qos())

        self.diagnostics = DiagnosticsReporter(node, "objects 3d", values["diagnostics_period"])
        self.diagnostics.extra.update({"non_finite_points": "0", "confirmed_objects": "0"})
        self._non_finite_points = 0
        self._fusion_skipped: dict[str, int] = {}

    def reset_tracker(self) -> None:
        """Restart the box tracks (after a change of the ``box_*`` parameters)."""
        self.tracker = box_tracker(self._values)

    # ----------------------------------------------------------------- input
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_points(self, msg: PointCloud2) -> None:
        self.diagnostics.input_received()
        start = time.perf_counter()
        try:
            xyz, dropped = split_finite(read_xyz(msg))
        except BadInput as bad:
            self.diagnostics.bad_input(bad.cause, bad.detail)
            return
        if dropped:
            self._non_finite_points += dropped
            self.diagnostics.extra["non_finite_points"] = str(self._non_finite_points)
            self._node.get_logger().warning(f"skipping {dropped} NaN/inf points of {len(xyz) + dropped}",
                                            throttle_duration_sec=5.0)
        self._publish(msg.header, self._discover(msg.header, xyz))
        self.diagnostics.frame_processed(time.perf_counter() - start)

    # ----------------------------------------------------------------- processing
    def _discover(self, header: Header, xyz: np.ndarray) -> list[Object3D]:
        labels = cluster_objects(xyz, self.configs.ground, self.configs.clusters)
        boxes = fit_boxes(xyz, labels)
        tracked = self.tracker.update(boxes)
        confirmed = self._confirm(header, xyz, labels) if boxes else {}
        objects = published_objects(boxes, tracked, confirmed, self._values["publish_3d"] == "confirmed")
        self.diagnostics.extra["confirmed_objects"] = str(sum(o.confirmation is not None for o in objects))
        return objects

    def _confirm(self, header: Header, xyz: np.ndarray, labels: np.ndarray) -> dict[int, ConfirmedObject]:
        """Cluster id -> its confirming mask, or {} when late fusion cannot run."""
        masks = self._latest_masks()
        slop_ns = self._values["fusion_slop"] * 1e9
        if masks is None or abs(time_ns(masks.header.stamp) - time_ns(header.stamp)) > slop_ns:
            self._skip_fusion("no_recent_masks", "no 2D masks within fusion_slop of the cloud", warn=False)
            return {}
        try:
            camera = self._camera(masks)
            T_camera_lidar = self._extrinsic(masks.header.frame_id, header)
        except BadInput as bad:
            self._skip_fusion(bad.cause, bad.detail, warn=True)
            return {}
        found = confirm_objects(xyz, labels, masks.ids, T_camera_lidar, camera, self.configs.fusion)
        return {c.cluster: c for c in found}

    def _camera(self, masks: MaskFrame) -> PinholeCamera:
        info = self._camera_info
        if info is None:
            raise BadInput("no_camera_info", "no camera_info received yet")
        try:
            camera = self._cameras.get(info)
        except CameraInfoError as err:
            raise BadInput("bad_camera_info", str(err)) from err
        if masks.ids.shape != (camera.height, camera.width):
            raise BadInput("camera_info_mismatch", f"image is {masks.ids.shape[1]}x{masks.ids.shape[0]} but "
                                                   f"camera_info says {camera.width}x{camera.height}")
        return camera

    def _extrinsic(self, camera_frame: str, cloud_header: Header) -> np.ndarray:
        """``(4, 4)`` camera <- LiDAR at the cloud's stamp, without waiting."""
        try:
            transform = self._tf_buffer.lookup_transform(
                camera_frame, cloud_header.frame_id, Time.from_msg(cloud_header.stamp), timeout=Duration())
        except TransformException as err:
            raise BadInput("missing_transform", f"no transform {camera_frame} <- {cloud_header.frame_id}: "
                                                f"{err}") from err
        return transform_to_matrix(transform)

    def _skip_fusion(self, cause: str, detail: str, warn: bool) -> None:
        self._fusion_skipped[cause] = self._fusion_skipped.get(cause, 0) + 1
        self.diagnostics.extra[f"late_fusion_skipped.{cause}"] = str(self._fusion_skipped[cause])
        if warn:
            self._node.get_logger().warning(f"late fusion skipped, objects are 3D only: {cause} ({detail})",
                                            throttle_duration_sec=5.0)

    def _publish(self, header: Header, objects: list[Object3D]) -> None:
        detections = Detection3DArray(header=header)
        detections.detections = [box_to_detection3d(o.box, header, str(o.track_id), CLASS_ID, o.score)
                                 for o in objects]
        self._detections_pub.publish(detections)
        self._markers_pub.publish(self._markers.frame(header, [o.labelled_box() for o in objects]))
