"""The ``neural_mapping`` node: range data and odometry in, a map, a corrected pose and
``map -> odom`` out.

Subscribes ``points`` (PointCloud2 with x, y, z; ``input: points``) or ``depth`` with
``camera_info`` (rectified 32FC1 metres or 16UC1 millimetres, matched by stamp; ``input:
depth``), and odometry as ``odom`` (nav_msgs/Odometry, ``odom_source: topic``) or as TF
``odom_frame -> base_frame`` (``odom_source: tf``). The sensor's extrinsic comes from TF. Each
observation goes through :class:`kestrel_core.mapping.mapper.Mapper` (egocentric grid,
MapNet localization near the odometry prior, map update, place graph). Publishes

* ``map``: nav_msgs/OccupancyGrid (trinary 100 / 0 / -1), transient local, every
  ``map_publish_period`` seconds;
* ``map/features``: rgb8 Image, the first three principal components of the map's channels,
  one pixel per map cell in the OccupancyGrid layout (row 0 at the map origin);
* ``pose``: geometry_msgs/PoseWithCovarianceStamped of ``base_frame`` in ``map_frame``;
* ``map_frame -> odom_frame`` on ``/tf`` (REP-105: the localization correction, so that
  ``map -> odom -> base_link`` is the corrected pose);
* ``graph``: visualization_msgs/MarkerArray of the place nodes and edges;
* ``/diagnostics``.

Services ``save_map`` (kestrel_interfaces/SaveMap) and ``load_map`` (nav_msgs/LoadMap); a
loaded map is only localized against (localization-only mode). An odometry jump larger than
``odom_jump_distance`` / ``odom_jump_angle_deg`` between two observations is ignored: the pose is
re-localized with a wide search around the last estimate and ``map -> odom`` absorbs the jump.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import time

import numpy as np
import torch
from geometry_msgs.msg import PoseWithCovarianceStamped, TransformStamped
from kestrel_interfaces.srv import SaveMap
from nav_msgs.msg import OccupancyGrid, Odometry
from nav_msgs.srv import LoadMap
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from kestrel_core.device import resolve_device
from kestrel_core.mapping import se2
from kestrel_core.mapping.egocentric import EgoGridConfig
from kestrel_core.mapping.io import occupancy_values
from kestrel_core.mapping.localization import LocalizationConfig
from kestrel_core.mapping.colouring import feature_colours
from kestrel_core.mapping.mapper import Mapper, MapperConfig
from kestrel_core.mapping.memory import MapMemory, MemoryConfig
from kestrel_core.mapping.topological import REVISIT
from kestrel_ros.cloud_input import read_xyz, split_finite
from kestrel_ros.compat.approximate_time import time_ns
from kestrel_ros.compat.message_filters import ApproximateTimeSynchronizer, Subscriber
from kestrel_ros.compat.tf import (Buffer, TransformBroadcaster, TransformException,
                                   TransformListener, transform_to_matrix)
from kestrel_ros.conversions.camera_info import CameraModelCache
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.conversions.occupancy_grid import make_occupancy_grid
from kestrel_ros.conversions.place_graph import place_graph_markers
from kestrel_ros.conversions.planar import (planar_covariance, planar_from_matrix, planar_to_pose,
                                            planar_to_transform)
from kestrel_ros.depth_input import read_depth_points
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.mapping_files import MapFileError, read_map_file, save_map_files
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParamSpec, ParameterValueError, accept_updates, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "neural_mapping"

PARAMS = (
    ParamSpec("map_frame", "map", "Frame of the map, the pose and the parent of map -> odom.",
              read_only=True),
    ParamSpec("odom_frame", "odom", "Odometry frame (child of map -> odom).", read_only=True),
    ParamSpec("base_frame", "base_link", "Robot body frame the map is built around.", read_only=True),
    ParamSpec("input", "points", "Range input: points (PointCloud2) or depth (depth + camera_info).",
              choices=("points", "depth"), read_only=True),
    ParamSpec("odom_source", "topic", "Odometry from the odom topic (nav_msgs/Odometry) or from TF "
              "odom_frame -> base_frame.", choices=("topic", "tf"), read_only=True),
    ParamSpec("tf_timeout", 0.1, "Seconds an observation waits for its transforms (odometry "
              "usually arrives just after it) before it is skipped as missing_transform.",
              minimum=0.0, maximum=5.0),
    ParamSpec("sync_slop", 0.02, "Largest stamp difference (s) between a depth image and its "
              "camera_info.", minimum=0.0, maximum=5.0, read_only=True),
    ParamSpec("resolution", 0.5, "Map cell size (m).", minimum=0.01, maximum=10.0, read_only=True),
    ParamSpec("grid_radius_cells", 60, "Half size in cells of the egocentric grid of one "
              "observation.", minimum=4, maximum=1000, read_only=True),
    ParamSpec("max_range", 30.0, "Returns farther than this (m, in the plane) are cut to free "
              "space.", minimum=0.1, maximum=1000.0, read_only=True),
    ParamSpec("min_obstacle_height", 0.1, "Points below this height (m, base frame; the floor) "
              "add free space only.", minimum=-1000.0, maximum=1000.0, read_only=True),
    ParamSpec("max_obstacle_height", 2.0, "Points above this height (m, base frame; overhangs the "
              "robot passes under) add free space only.", minimum=-1000.0, maximum=1000.0,
              read_only=True),
    ParamSpec("localize", True, "Correct odometry by localizing each observation against the map.",
              read_only=True),
    ParamSpec("loop_closure", True, "Keep a place graph, detect revisits and correct the "
              "trajectory with a pose graph.", read_only=True),
    ParamSpec("search_radius_cells", 6, "Localization window: translations within this many "
              "cells of the odometry prior.", minimum=1, maximum=200, read_only=True),
    ParamSpec("rotation_bins", 9, "Localization headings tried around the prior (odd).",
              minimum=1, maximum=181, read_only=True),
    ParamSpec("rotation_step_deg", 1.0, "Degrees between localization headings.", minimum=0.01,
              maximum=30.0, read_only=True),
    ParamSpec("min_score", 0.2, "Normalised correlation a localization needs to be accepted.",
              minimum=-1.0, maximum=1.0, read_only=True),
    ParamSpec("motion_sigma_xy", 0.1, "Odometry motion prior weighed into localization: "
              "standard deviation (m) of x and y before the robot moves; 0 turns the prior off "
              "(flat prior over the window).", minimum=0.0, maximum=10.0, read_only=True),
    ParamSpec("motion_sigma_yaw_deg", 0.02, "Motion prior: heading standard deviation (deg) "
              "before the robot moves.", minimum=0.0, maximum=90.0, read_only=True),
    ParamSpec("motion_sigma_xy_per_metre", 0.05, "Motion prior: x and y standard deviation "
              "added per metre of odometry since the last observation.", minimum=0.0,
              maximum=10.0, read_only=True),
    ParamSpec("motion_sigma_yaw_deg_per_metre", 0.45, "Motion prior: heading standard "
              "deviation (deg) added per metre of odometry. Raise it for odometry whose heading "
              "drifts faster than a car's wheel odometry.", minimum=0.0, maximum=90.0,
              read_only=True),
    ParamSpec("odom_jump_distance", 1.0, "Odometry moving more than this (m) between two "
              "observations is a jump: re-localize with the wide window.", minimum=0.01,
              maximum=1000.0, read_only=True),
    ParamSpec("odom_jump_angle_deg", 30.0, "Odometry turning more than this (deg) between two "
              "observations is a jump.", minimum=0.1, maximum=180.0, read_only=True),
    ParamSpec("relocalization_radius_cells", 24, "Wide window (cells) used after a jump and after "
              "load_map.", minimum=1, maximum=500, read_only=True),
    ParamSpec("relocalization_rotation_bins", 31, "Headings of the wide window (odd).", minimum=1,
              maximum=361, read_only=True),
    ParamSpec("relocalization_rotation_step_deg", 1.5, "Degrees between headings of the wide "
              "window.", minimum=0.01, maximum=30.0, read_only=True),
    ParamSpec("map_publish_period", 1.0, "Seconds between publications of map, map/features and "
              "graph.", minimum=0.05, maximum=3600.0, read_only=True),
    ParamSpec("transform_tolerance", 0.1, "Seconds map -> odom is post-dated, so lookups up to "
              "the next observation succeed.", minimum=0.0, maximum=10.0),
    ParamSpec("device", "cpu", "Torch device of the mapper.", choices=("auto", "cpu", "cuda"),
              read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + QOS_PARAMS


def _odd(values: dict, name: str) -> int:
    if values[name] % 2 == 0:
        raise ParameterValueError(f"{name} must be odd, got {values[name]}")
    return values[name]


def motion_sigma(values: dict) -> tuple[float, float, float] | None:
    """The motion prior's ``(x, y, yaw)`` standard deviations at rest, or None (no prior)
    when ``motion_sigma_xy`` or ``motion_sigma_yaw_deg`` is 0."""
    xy, yaw_deg = values["motion_sigma_xy"], values["motion_sigma_yaw_deg"]
    return None if xy == 0 or yaw_deg == 0 else (xy, xy, float(np.radians(yaw_deg)))


def mapper_config(values: dict) -> MapperConfig:
    """The core's config from the node's parameter values."""
    if values["min_obstacle_height"] >= values["max_obstacle_height"]:
        raise ParameterValueError(f"min_obstacle_height {values['min_obstacle_height']} must be below "
                                  f"max_obstacle_height {values['max_obstacle_height']}")
    try:
        return MapperConfig(
            ego=EgoGridConfig(resolution=values["resolution"], radius_cells=values["grid_radius_cells"],
                              max_range=values["max_range"],
                              min_obstacle_height=values["min_obstacle_height"],
                              max_obstacle_height=values["max_obstacle_height"]),
            memory=MemoryConfig(resolution=values["resolution"]),
            localization=LocalizationConfig(
                search_radius_cells=values["search_radius_cells"],
                rotation_bins=_odd(values, "rotation_bins"),
                rotation_step=float(np.radians(values["rotation_step_deg"])),
                min_score=values["min_score"]),
            localize=values["localize"], loop_closure=values["loop_closure"],
            motion_sigma=motion_sigma(values), motion_sigma_per_metre=(
                values["motion_sigma_xy_per_metre"], values["motion_sigma_xy_per_metre"],
                float(np.radians(values["motion_sigma_yaw_deg_per_metre"]))))
    except ValueError as err:
        raise ParameterValueError(f"invalid mapping parameters: {err}") from err


def relocalization_config(values: dict, base: LocalizationConfig) -> LocalizationConfig:
    """The wide search window used after an odometry jump or a map load."""
    return replace(base, search_radius_cells=values["relocalization_radius_cells"],
                   rotation_bins=_odd(values, "relocalization_rotation_bins"),
                   rotation_step=float(np.radians(values["relocalization_rotation_step_deg"])))


class NeuralMappingNode(Node):
    """Thin adapter from range data, odometry and TF to :class:`Mapper`."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._config = mapper_config(self._values)
        self._wide = relocalization_config(self._values, self._config.localization)
        self._device = resolve_device(self._values["device"])
        self._mapper = Mapper(self._config, self._device)
        self._localization_only = False
        self._relocalize_next = False
        self._last_stamp_ns: int | None = None
        self._last_odom: np.ndarray | None = None
        self._last_header = Header(frame_id=self._values["map_frame"])
        self._jumps = self._localized = self._non_finite_points = 0
        self._cameras = CameraModelCache()

        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, self)
        self._tf_broadcaster = TransformBroadcaster(self)
        group = MutuallyExclusiveCallbackGroup()  # everything that touches the mapper
        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        if self._values["input"] == "points":
            self.create_subscription(PointCloud2, "points", self._on_points, qos, callback_group=group)
        else:
            inputs = [Subscriber(self, Image, "depth", qos, callback_group=group),
                      Subscriber(self, CameraInfo, "camera_info", qos, callback_group=group)]
            self._sync = ApproximateTimeSynchronizer(inputs, 10, self._values["sync_slop"])
            self._sync.registerCallback(self._on_depth)
        if self._values["odom_source"] == "topic":  # own group: fills the buffer while a lookup waits
            self.create_subscription(Odometry, "odom", self._on_odometry, qos,
                                     callback_group=MutuallyExclusiveCallbackGroup())

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._map_pub = self.create_publisher(OccupancyGrid, "map", latched)
        self._features_pub = self.create_publisher(Image, "map/features", latched)
        self._graph_pub = self.create_publisher(MarkerArray, "graph", latched)
        self._pose_pub = self.create_publisher(PoseWithCovarianceStamped, "pose", output_qos())
        self.create_service(SaveMap, "save_map", self._on_save, callback_group=group)
        self.create_service(LoadMap, "load_map", self._on_load, callback_group=group)
        self.create_timer(self._values["map_publish_period"], self._publish_map, callback_group=group)

        self._diagnostics = DiagnosticsReporter(self, "neural mapping", self._values["diagnostics_period"])
        self._diagnostics.hardware_id = str(self._device)
        self._diagnostics.extra.update({"mode": "mapping", "odometry_jumps": "0", "localized": "0",
                                        "localization_score": "nan", "non_finite_points": "0"})
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"neural_mapping ready: input={self._values['input']} odometry from "
            f"{self._values['odom_source']} device={self._device}")

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Runtime changes of the parameters that are not read-only (tf_timeout and
        transform_tolerance take effect with the next observation)."""
        return accept_updates(PARAMS, self._values, params)

    # ----------------------------------------------------------------- inputs
    def _on_odometry(self, msg: Odometry) -> None:
        """Odometry messages become ``odom -> base`` samples of the TF buffer, so both odometry
        sources are looked up (and interpolated) the same way."""
        transform = TransformStamped(child_frame_id=msg.child_frame_id or self._values["base_frame"])
        transform.header = Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id or self._values["odom_frame"])
        position = msg.pose.pose.position
        transform.transform.translation.x, transform.transform.translation.y = position.x, position.y
        transform.transform.translation.z = position.z
        transform.transform.rotation = msg.pose.pose.orientation
        try:
            self._tf_buffer.set_transform(transform, "odom topic")
        except TransformException as err:
            self._diagnostics.bad_input("bad_odometry", str(err))

    def _on_points(self, cloud: PointCloud2) -> None:
        self._observe(cloud.header, lambda: self._cloud_points(cloud))

    def _on_depth(self, image: Image, info: CameraInfo) -> None:
        self._observe(image.header, lambda: read_depth_points(image, info, self._cameras))

    def _cloud_points(self, cloud: PointCloud2) -> np.ndarray:
        """Finite (N, 3) xyz of ``cloud`` in its own frame."""
        xyz, dropped = split_finite(read_xyz(cloud))
        if dropped:
            self._non_finite_points += dropped
            self._diagnostics.extra["non_finite_points"] = str(self._non_finite_points)
            self.get_logger().warning(f"skipping {dropped} non-finite points of {len(xyz) + dropped}",
                                      throttle_duration_sec=5.0)
        return xyz

    def _transform(self, target: str, source: str, header: Header) -> np.ndarray:
        """(4, 4) ``target <- source`` at the header's stamp; BadInput while TF lacks it."""
        try:
            transform = self._tf_buffer.lookup_transform(
                target, source, Time.from_msg(header.stamp),
                timeout=Duration(seconds=self._values["tf_timeout"]))
        except TransformException as err:
            raise BadInput("missing_transform", f"waiting for {target} <- {source}: {err}") from err
        return transform_to_matrix(transform)

    def _observe(self, header: Header, read_points) -> None:
        self._diagnostics.input_received()
        start = time.perf_counter()
        stamp = time_ns(header.stamp)
        try:
            if self._last_stamp_ns is not None and stamp < self._last_stamp_ns:
                raise BadInput("stamp_backwards", f"stamp {stamp * 1e-9:.3f} s is older than the last "
                                                  f"observation's {self._last_stamp_ns * 1e-9:.3f} s")
            points = read_points()
            base_from_sensor = self._transform(self._values["base_frame"], header.frame_id, header)
            odom_pose = planar_from_matrix(
                self._transform(self._values["odom_frame"], self._values["base_frame"], header))
        except BadInput as bad:  # a missing transform is expected at start-up: warn and wait
            self._diagnostics.skipped(bad)
            return
        base_points = points @ base_from_sensor[:3, :3].T + base_from_sensor[:3, 3]
        self._step(torch.from_numpy(base_points.astype(np.float32)), odom_pose, header)
        self._last_stamp_ns = stamp
        self._diagnostics.frame_processed(time.perf_counter() - start)

    # ----------------------------------------------------------------- mapping
    def _is_jump(self, odom_pose: np.ndarray) -> bool:
        if self._last_odom is None:
            return False
        motion = se2.between(self._last_odom, odom_pose)
        return bool(np.hypot(motion[0], motion[1]) > self._values["odom_jump_distance"]
                    or abs(motion[2]) > np.radians(self._values["odom_jump_angle_deg"]))

    def _step(self, points: torch.Tensor, odom_pose: np.ndarray, header: Header) -> None:
        options: dict = {"update_map": not self._localization_only}
        if self._is_jump(odom_pose):
            self._jumps += 1
            self._diagnostics.extra["odometry_jumps"] = str(self._jumps)
            motion = se2.between(self._last_odom, odom_pose)
            self.get_logger().warning(
                f"odometry jumped by ({motion[0]:.2f} m, {motion[1]:.2f} m, {np.degrees(motion[2]):.1f} deg) "
                "between two observations; re-localizing with the wide window", throttle_duration_sec=5.0)
            if len(self._mapper.poses):
                options["prior"] = self._mapper.poses[-1]
            options["localization"] = self._wide
        elif self._relocalize_next:
            options["localization"] = self._wide
        with torch.inference_mode():
            result = self._mapper.step(points, odom_pose, **options)
        # a failed wide search is tried again on the next observation
        self._relocalize_next = "localization" in options and not result.localized
        self._last_odom = odom_pose
        self._diagnostics.extra["localization_score"] = f"{result.score:.3f}"
        self._localized += int(result.localized)
        self._diagnostics.extra["localized"] = str(self._localized)
        self._last_header = Header(stamp=header.stamp, frame_id=self._values["map_frame"])
        self._publish_pose(result.pose, result.covariance)
        self._publish_map_to_odom(header)
        if result.loop_closed or len(self._mapper.poses) == 1:
            self._publish_map()

    # ----------------------------------------------------------------- outputs
    def _publish_pose(self, pose: np.ndarray, covariance: np.ndarray) -> None:
        msg = PoseWithCovarianceStamped(header=self._last_header)
        msg.pose.pose = planar_to_pose(pose)
        msg.pose.covariance = planar_covariance(covariance)
        self._pose_pub.publish(msg)

    def _publish_map_to_odom(self, header: Header) -> None:
        stamp = Time.from_msg(header.stamp) + Duration(seconds=self._values["transform_tolerance"])
        msg = TransformStamped(child_frame_id=self._values["odom_frame"],
                               transform=planar_to_transform(self._mapper.map_from_odom))
        msg.header = Header(stamp=stamp.to_msg(), frame_id=self._values["map_frame"])
        self._tf_broadcaster.sendTransform(msg)

    def _grid_message(self, memory: MapMemory) -> OccupancyGrid:
        values = occupancy_values(memory.log_odds.detach().cpu().numpy())
        return make_occupancy_grid(values, memory.origin, memory.config.resolution, header=self._last_header)

    def _publish_map(self) -> None:
        memory = self._mapper.memory
        if memory is None:
            return
        self._map_pub.publish(self._grid_message(memory))
        self._features_pub.publish(numpy_to_image(feature_colours(memory), "rgb8", header=self._last_header))
        graph = self._mapper.graph
        self._graph_pub.publish(place_graph_markers(graph.poses, graph.edges, graph.kinds == REVISIT,
                                                    self._last_header))

    # ----------------------------------------------------------------- services
    def _on_save(self, request: SaveMap.Request, response: SaveMap.Response) -> SaveMap.Response:
        memory = self._mapper.memory
        if memory is None or not request.path_prefix.strip():
            response.success = False
            response.message = "path_prefix is empty" if memory else "no map yet: nothing was observed"
            return response
        prefix = Path(request.path_prefix).expanduser().resolve()
        try:
            paths = save_map_files(prefix, memory, self._mapper.graph)
        except OSError as err:
            response.success, response.message = False, f"cannot save the map: {err}"
            self.get_logger().error(response.message)
            return response
        response.success, response.files = True, [str(p) for p in paths]
        response.message = f"saved a {memory.shape[1]}x{memory.shape[0]} map to {prefix}.{{yaml,pgm,npz}}"
        self.get_logger().info(response.message)
        return response

    def _on_load(self, request: LoadMap.Request, response: LoadMap.Response) -> LoadMap.Response:
        path = Path(request.map_url.removeprefix("file://")).expanduser()
        results = {"metadata": LoadMap.Response.RESULT_INVALID_MAP_METADATA,
                   "unreadable": LoadMap.Response.RESULT_INVALID_MAP_DATA}
        try:
            memory, graph = read_map_file(path, self._config, self._device)
        except FileNotFoundError as err:
            response.result = LoadMap.Response.RESULT_MAP_DOES_NOT_EXIST
            self.get_logger().error(f"load_map: {err}")
            return response
        except MapFileError as err:
            response.result = results[err.kind]
            self.get_logger().error(f"load_map: {err}")
            return response
        correction = self._mapper.map_from_odom
        self._mapper = Mapper(replace(self._config, loop_closure=False), self._device)
        self._mapper.memory, self._mapper.graph, self._mapper.map_from_odom = memory, graph, correction
        self._localization_only = self._relocalize_next = True
        self._diagnostics.extra["mode"] = "localization_only"
        response.map = self._grid_message(memory)
        response.result = LoadMap.Response.RESULT_SUCCESS
        self._publish_map()
        self.get_logger().info(f"loaded {path}; localizing only from now on")
        return response


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(NeuralMappingNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
