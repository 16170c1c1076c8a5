"""The ``lidar_camera_fusion`` node: a LiDAR cloud and a camera image in, fused products out.

Subscribes ``points`` (PointCloud2 with x, y, z and optionally intensity), ``image`` and
``camera_info``, matched by stamp (approximate time, ``sync_slop``). The camera <- LiDAR
extrinsic comes from TF (``/tf``, ``/tf_static``; tf2_ros or Kestrel's stand-in) or from
the ``extrinsic_xyz_rpy`` parameter. Publishes

* ``points/painted``: the points that project into the image, LiDAR frame, with x, y, z,
  rgb (bilinear image colour) and intensity (0 when the input has none);
* ``depth/sparse`` and ``depth/dense``: 32FC1 depth in metres along the optical axis, NaN
  where unknown, camera frame (the image's header);
* ``bev``: nav_msgs/OccupancyGrid in the LiDAR frame, 100 where a cell holds a point and
  -1 (unknown) elsewhere;
* ``bev/features``: kestrel_interfaces/FeatureMap on the same grid with the channels
  max height, occupancy, point count, mean painted R, G, B (0-1; NaN where empty);
* ``/diagnostics`` with ``points_in_image``, the share of finite points that land in the
  image, and counters of every bad input.

This file only translates messages; the fusion itself is :mod:`kestrel_core.fusion`'s.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from geometry_msgs.msg import Pose
from kestrel_interfaces.msg import FeatureMap
from nav_msgs.msg import OccupancyGrid
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from kestrel_core.device import resolve_device
from kestrel_core.fusion import complete_depth_classical, complete_depth_guided, paint_points, project_points, sparse_depth_image
from kestrel_core.fusion.continuous import BevGridConfig, bev_height_occupancy, bev_mean_features
from kestrel_core.fusion.learned_completion import complete_depth_learned, load_completion_model
from kestrel_core.geometry.camera import PinholeCamera
from kestrel_ros.compat.message_filters import ApproximateTimeSynchronizer, Subscriber
from kestrel_ros.compat.tf import Buffer, TransformException, TransformListener, transform_to_matrix
from kestrel_ros.conversions.camera_info import CameraInfoError, CameraModelCache
from kestrel_ros.conversions.feature_map import numpy_to_feature_map
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.cloud_input import finite_rows, read_cloud
from kestrel_ros.conversions.pointcloud2 import array_to_pointcloud2, rgb_uint8_to_float
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.image_input import in_rgb_order, read_image
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParamSpec, ParameterValueError, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "lidar_camera_fusion"
IMAGE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
BEV_CHANNELS = ("max_height", "occupancy", "count", "mean_r", "mean_g", "mean_b")
PAINTED_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb", "intensity"], "formats": [np.float32] * 5,
                          "offsets": [0, 4, 8, 12, 16]})

PARAMS = (
    ParamSpec("extrinsic_source", "tf", "Where the camera <- LiDAR transform comes from: tf "
              "(looked up at the cloud's stamp) or parameter (extrinsic_xyz_rpy).",
              choices=("tf", "parameter"), read_only=True),
    ParamSpec("extrinsic_xyz_rpy", "0 0 0 1.5707963 -1.5707963 0", "With extrinsic_source "
              "parameter: the LiDAR frame in the camera optical frame as 'x y z roll pitch yaw' "
              "(m, rad, fixed axes x-y-z); the default is REP-103 body axes to optical axes.",
              read_only=True),
    ParamSpec("tf_timeout", 0.0, "Seconds to wait for a transform in the callback before the "
              "frame is skipped as missing_transform (the listener keeps filling the buffer).",
              minimum=0.0, maximum=5.0),
    ParamSpec("completion", "classical", "Dense depth method: classical (image-guided, "
              "training-free), morphological (faster, ignores the image), learned (small U-Net "
              "refining the classical result, model_path) or none (no depth/dense).",
              choices=("classical", "morphological", "learned", "none"), read_only=True),
    ParamSpec("model_path", "", "Learned completion checkpoint; empty uses the shipped "
              "depth_completion_small.pt.", read_only=True),
    ParamSpec("device", "cpu", "Torch device for projection and the learned completion.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("min_depth", 0.1, "Points closer than this along the optical axis (m) are not "
              "projected.", minimum=0.0, maximum=100.0),
    ParamSpec("sync_slop", 0.05, "Largest stamp difference (s) between the matched cloud, image "
              "and camera_info.", minimum=0.0, maximum=5.0, read_only=True),
    ParamSpec("sync_queue_size", 10, "Messages kept per input while matching stamps.",
              minimum=1, maximum=100, read_only=True),
    ParamSpec("bev_x_min", 0.0, "BEV grid start along x (m, LiDAR frame).", minimum=-500.0, maximum=500.0,
              read_only=True),
    ParamSpec("bev_x_max", 40.0, "BEV grid end along x (m).", minimum=-500.0, maximum=500.0, read_only=True),
    ParamSpec("bev_y_min", -20.0, "BEV grid start along y (m).", minimum=-500.0, maximum=500.0,
              read_only=True),
    ParamSpec("bev_y_max", 20.0, "BEV grid end along y (m).", minimum=-500.0, maximum=500.0, read_only=True),
    ParamSpec("bev_resolution", 0.2, "BEV cell size (m).", minimum=0.01, maximum=10.0, read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + QOS_PARAMS


def extrinsic_from_text(text: str) -> np.ndarray:
    """``(4, 4)`` camera <- LiDAR matrix from ``'x y z roll pitch yaw'``."""
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) != 6 or not np.isfinite(values).all():
        raise ParameterValueError(f"extrinsic_xyz_rpy must be six numbers 'x y z roll pitch yaw', got {text!r}")
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", values[3:]).as_matrix()
    matrix[:3, 3] = values[:3]
    return matrix


def bev_grid_from_params(values: dict) -> BevGridConfig:
    try:
        return BevGridConfig((values["bev_x_min"], values["bev_x_max"]),
                             (values["bev_y_min"], values["bev_y_max"]), values["bev_resolution"])
    except ValueError as err:
        raise ParameterValueError(f"invalid BEV grid: {err}") from err


def grid_origin(grid: BevGridConfig) -> Pose:
    """Pose of the corner of cell ``(0, 0)`` in the grid's frame."""
    origin = Pose()
    origin.position.x, origin.position.y = float(grid.x_range[0]), float(grid.y_range[0])
    origin.orientation.w = 1.0
    return origin


def occupancy_grid(occupied: np.ndarray, grid: BevGridConfig, header: Header) -> OccupancyGrid:
    """OccupancyGrid of a ``(H, W)`` bool map (rows along y): 100 occupied, -1 unknown."""
    msg = OccupancyGrid(header=header)
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width, msg.info.height = grid.width, grid.height
    msg.info.origin = grid_origin(grid)
    msg.data = np.where(occupied, 100, -1).astype(np.int8).ravel().tolist()
    return msg


class LidarCameraFusionNode(Node):
    """Thin adapter from (cloud, image, camera_info) triples to :mod:`kestrel_core.fusion`."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._grid = bev_grid_from_params(self._values)
        self._device = resolve_device(self._values["device"])
        self._fixed_extrinsic = (extrinsic_from_text(self._values["extrinsic_xyz_rpy"])
                                 if self._values["extrinsic_source"] == "parameter" else None)
        self._model = (load_completion_model(self._values["model_path"] or None, self._device)
                       if self._values["completion"] == "learned" else None)
        self._cameras = CameraModelCache()
        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, self) if self._fixed_extrinsic is None else None

        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        group = MutuallyExclusiveCallbackGroup()
        inputs = [Subscriber(self, PointCloud2, "points", qos, callback_group=group),
                  Subscriber(self, Image, "image", qos, callback_group=group),
                  Subscriber(self, CameraInfo, "camera_info", qos, callback_group=group)]
        self._sync = ApproximateTimeSynchronizer(inputs, self._values["sync_queue_size"],
                                                 self._values["sync_slop"])
        self._sync.registerCallback(self._on_inputs)
        out = output_qos()
        self._painted_pub = self.create_publisher(PointCloud2, "points/painted", out)
        self._sparse_pub = self.create_publisher(Image, "depth/sparse", out)
        self._dense_pub = self.create_publisher(Image, "depth/dense", out)
        self._bev_pub = self.create_publisher(OccupancyGrid, "bev", out)
        self._features_pub = self.create_publisher(FeatureMap, "bev/features", out)

        self._diagnostics = DiagnosticsReporter(self, "lidar camera fusion", self._values["diagnostics_period"])
        self._diagnostics.hardware_id = str(self._device)
        self._diagnostics.extra.update({"completion": self._values["completion"],
                                        "points_in_image": "nan", "non_finite_points": "0"})
        self._non_finite_points = 0
        self.get_logger().info(
            f"lidar_camera_fusion ready: extrinsic from {self._values['extrinsic_source']}, "
            f"completion={self._values['completion']} device={self._device}")

    # ----------------------------------------------------------------- input
    def _camera(self, info: CameraInfo, image: Image) -> PinholeCamera:
        try:
            camera = self._cameras.get(info)
        except CameraInfoError as err:
            raise BadInput("bad_camera_info", str(err)) from err
        if (image.width, image.height) != (camera.width, camera.height):
            raise BadInput("image_camera_info_mismatch",
                           f"image is {image.width}x{image.height} but camera_info says "
                           f"{camera.width}x{camera.height}")
        return camera

    def _points(self, cloud: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
        """Finite ``(N, 3)`` xyz and ``(N,)`` intensity of ``cloud``."""
        array, xyz = read_cloud(cloud)
        names = array.dtype.names or ()
        intensity = (array["intensity"].astype(np.float32) if "intensity" in names
                     else np.zeros(len(xyz), np.float32))
        finite = finite_rows(xyz)
        if not finite.all():
            self._non_finite_points += int((~finite).sum())
            self._diagnostics.extra["non_finite_points"] = str(self._non_finite_points)
            self.get_logger().warning(f"skipping {(~finite).sum()} non-finite points of {len(xyz)}",
                                      throttle_duration_sec=5.0)
        return xyz[finite], intensity[finite]

    def _extrinsic(self, camera_frame: str, cloud: PointCloud2) -> np.ndarray:
        """``(4, 4)`` camera <- LiDAR; raises BadInput when TF cannot give it yet."""
        if self._fixed_extrinsic is not None:
            return self._fixed_extrinsic
        lidar_frame = cloud.header.frame_id
        try:
            transform = self._tf_buffer.lookup_transform(
                camera_frame, lidar_frame, Time.from_msg(cloud.header.stamp),
                timeout=Duration(seconds=self._values["tf_timeout"]))
        except TransformException as err:
            raise BadInput("missing_transform", f"waiting for the transform {camera_frame} <- "
                                                f"{lidar_frame}: {err}") from err
        return transform_to_matrix(transform)

    def _on_inputs(self, cloud: PointCloud2, image_msg: Image, info: CameraInfo) -> None:
        self._diagnostics.input_received()
        start = time.perf_counter()
        try:
            camera = self._camera(info, image_msg)
            image = in_rgb_order(read_image(image_msg, IMAGE_ENCODINGS), image_msg.encoding)
            xyz, intensity = self._points(cloud)
            T_camera_lidar = self._extrinsic(image_msg.header.frame_id or info.header.frame_id, cloud)
        except BadInput as bad:  # a missing transform is expected at start-up: warn and wait
            self._diagnostics.skipped(bad)
            return
        self._fuse(cloud.header, image_msg.header, camera, image, xyz, intensity, T_camera_lidar)
        self._diagnostics.frame_processed(time.perf_counter() - start)

    # ----------------------------------------------------------------- processing
    def _fuse(self, cloud_header: Header, image_header: Header, camera: PinholeCamera, image: np.ndarray,
              xyz: np.ndarray, intensity: np.ndarray, T_camera_lidar: np.ndarray) -> None:
        points = torch.from_numpy(xyz).to(self._device)
        projection = project_points(points, T_camera_lidar, camera, min_depth=self._values["min_depth"])
        visible = projection.visible.cpu().numpy()
        self._diagnostics.extra["points_in_image"] = f"{visible.mean():.4f}"
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        colours, _ = paint_points(projection, torch.from_numpy(rgb.copy()).permute(2, 0, 1))  # (3, H, W)
        colours = colours.cpu().numpy()
        sparse = sparse_depth_image(projection, camera.height, camera.width).cpu().numpy().astype(np.float32)

        painted = np.empty(int(visible.sum()), PAINTED_DTYPE)
        for axis, name in enumerate("xyz"):
            painted[name] = xyz[visible, axis]
        painted["rgb"] = rgb_uint8_to_float(np.clip(np.rint(colours[visible]), 0, 255).astype(np.uint8))
        painted["intensity"] = intensity[visible]
        self._painted_pub.publish(array_to_pointcloud2(painted, cloud_header))
        self._sparse_pub.publish(numpy_to_image(sparse, "32FC1", header=image_header))
        dense = self._complete(rgb, sparse)
        if dense is not None:
            self._dense_pub.publish(numpy_to_image(dense.astype(np.float32), "32FC1", header=image_header))

        plain = bev_height_occupancy(points, self._grid).cpu().numpy()
        in_image = torch.from_numpy(visible).to(self._device)
        mean_rgb = bev_mean_features(points[in_image], torch.from_numpy(colours[visible] / 255.0).to(self._device),
                                     self._grid).cpu().numpy()
        self._bev_pub.publish(occupancy_grid(plain[1] > 0, self._grid, cloud_header))
        self._features_pub.publish(numpy_to_feature_map(
            np.concatenate((plain, mean_rgb)), "kestrel_bev_plain:" + ",".join(BEV_CHANNELS),
            resolution=self._grid.resolution, origin=grid_origin(self._grid), header=cloud_header))

    def _complete(self, rgb: np.ndarray, sparse: np.ndarray) -> np.ndarray | None:
        if self._values["completion"] == "none" or not np.isfinite(sparse).any():
            return None
        if self._model is not None:
            return complete_depth_learned(rgb, sparse, self._model, self._device)[0]
        if self._values["completion"] == "morphological":
            return complete_depth_classical(sparse)[0]
        return complete_depth_guided(sparse, rgb)[0]


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(LidarCameraFusionNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
