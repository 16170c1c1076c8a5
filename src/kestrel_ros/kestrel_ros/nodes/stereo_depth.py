"""The ``stereo_depth`` node: rectified stereo pairs in, disparity, depth and points out.

Subscribes ``left/image_rect``, ``right/image_rect`` (matched by approximate time) and
``left/camera_info``, ``right/camera_info`` (latest kept, cached). Publishes
``disparity`` (stereo_msgs/DisparityImage), ``depth`` (32FC1 metres, NaN invalid),
``points`` (PointCloud2 xyz + rgb, organized) and ``/diagnostics``. The algorithm is
:func:`kestrel_core.stereo.compute_disparity`; this file only translates messages.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from stereo_msgs.msg import DisparityImage

from kestrel_core.device import resolve_device
from kestrel_core.geometry.camera import StereoRig
from kestrel_core.geometry.stereo import disparity_to_depth, disparity_to_points
from kestrel_core.stereo import (
    OpenCVSGBMConfig,
    SGMConfig,
    Workspace,
    compute_disparity,
    opencv_sgbm_disparity,
    warm_up,
)
from kestrel_ros.compat.approximate_time import stamp_ns
from kestrel_ros.compat.message_filters import ApproximateTimeSynchronizer, Subscriber
from kestrel_ros.conversions.camera_info import CameraModelCache
from kestrel_ros.conversions.disparity import make_disparity_image
from kestrel_ros.conversions.image import numpy_to_image, to_rgb8
from kestrel_ros.conversions.pointcloud2 import make_xyz_rgb_cloud
from kestrel_ros.device_fallback import CpuFallback
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.image_input import in_rgb_order, read_image
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParamSpec, check_updates, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "stereo_depth"
STEREO_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1")
_SGM = SGMConfig()

PARAMS = (
    ParamSpec("method", "sgm", "Matcher: Kestrel semi-global matching or OpenCV StereoSGBM.",
              choices=("sgm", "opencv")),
    ParamSpec("device", "auto", "Torch device for SGM: auto picks CUDA when available.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("max_disparity", 128, "Number of disparities searched, in pixels.",
              minimum=16, maximum=512),
    ParamSpec("min_disparity", 0, "Smallest disparity searched, in pixels.", minimum=0, maximum=512),
    ParamSpec("p1", float(_SGM.p1), "SGM penalty for a disparity change of one pixel.",
              minimum=0.0, maximum=1e4),
    ParamSpec("p2", float(_SGM.p2), "SGM penalty for a disparity change of more than one pixel.",
              minimum=0.0, maximum=1e4),
    ParamSpec("num_paths", _SGM.num_paths, "SGM aggregation paths: 4 or 8.", minimum=4, maximum=8),
    ParamSpec("lr_check", _SGM.lr_check, "Invalidate pixels failing the left-right consistency check."),
    ParamSpec("lr_max_diff", float(_SGM.lr_max_diff),
              "Largest left-right disparity difference kept, in pixels.", minimum=0.0, maximum=16.0),
    ParamSpec("uniqueness_ratio", float(_SGM.uniqueness_ratio),
              "Margin by which the best cost must beat the second best (0 disables).",
              minimum=0.0, maximum=1.0),
    ParamSpec("speckle_window_size", _SGM.speckle_window_size,
              "Largest blob of similar disparity, in pixels, removed as speckle (0 disables).",
              minimum=0, maximum=10000),
    ParamSpec("speckle_range", float(_SGM.speckle_range),
              "Disparity difference within one speckle blob, in pixels.", minimum=0.0, maximum=64.0),
    ParamSpec("sync_slop", 0.01, "Largest stamp difference of a matched left/right pair, seconds.",
              minimum=0.0, maximum=1.0),
    ParamSpec("sync_queue_size", 10, "Messages kept per input while matching pairs.",
              minimum=1, maximum=100),
    ParamSpec("publish_points", True, "Publish the organized xyz+rgb point cloud on `points`."),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + QOS_PARAMS

# Parameters that feed the matcher and may change while running.
_MATCHER_KEYS = ("method", "max_disparity", "min_disparity", "p1", "p2", "num_paths", "lr_check",
                 "lr_max_diff", "uniqueness_ratio", "speckle_window_size", "speckle_range")


def sgm_config_from_params(values: dict) -> SGMConfig:
    """Map the node's parameters onto the core's frozen config (raises ValueError)."""
    return SGMConfig(
        max_disparity=values["max_disparity"],
        min_disparity=values["min_disparity"],
        p1=values["p1"],
        p2=values["p2"],
        num_paths=values["num_paths"],
        lr_check=values["lr_check"],
        lr_max_diff=values["lr_max_diff"],
        uniqueness_ratio=values["uniqueness_ratio"],
        speckle_window_size=values["speckle_window_size"],
        speckle_range=values["speckle_range"],
    )


@dataclass(frozen=True)
class StereoFrame:
    """A validated stereo pair ready for matching.

    Attributes:
        left, right: (H, W) or (H, W, C) arrays of the same size and encoding.
        encoding: the images' encoding.
        rig: the calibrated rectified rig.
    """

    left: np.ndarray
    right: np.ndarray
    encoding: str
    rig: StereoRig


class StereoDepthNode(Node):
    """Thin adapter from stereo image topics to :mod:`kestrel_core.stereo`."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._sgm_config = sgm_config_from_params(self._values)
        self._device = resolve_device(self._values["device"])
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self._values["method"] == "sgm" and self._device.type == "cpu":
            # before subscribing: the first frame should not pay for compiling the CPU kernels
            warm_up(self._sgm_config, self._device)

        self._left_info = CameraModelCache()
        self._right_info = CameraModelCache()
        self._left_info_msg: CameraInfo | None = None
        self._right_info_msg: CameraInfo | None = None
        self._rig: StereoRig | None = None
        self._rig_key: tuple | None = None
        self._last_stamp: int | None = None

        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        work = MutuallyExclusiveCallbackGroup()
        self.create_subscription(CameraInfo, "left/camera_info", self._on_left_info, qos,
                                 callback_group=work)
        self.create_subscription(CameraInfo, "right/camera_info", self._on_right_info, qos,
                                 callback_group=work)
        left = Subscriber(self, Image, "left/image_rect", qos_profile=qos, callback_group=work)
        right = Subscriber(self, Image, "right/image_rect", qos_profile=qos, callback_group=work)
        self._sync = ApproximateTimeSynchronizer(
            [left, right], self._values["sync_queue_size"], self._values["sync_slop"]
        )
        self._sync.registerCallback(self._on_pair)
        left.registerCallback(lambda _msg: self._diagnostics.input_received())

        out = output_qos()
        self._disparity_pub = self.create_publisher(DisparityImage, "disparity", out)
        self._depth_pub = self.create_publisher(Image, "depth", out)
        self._points_pub = self.create_publisher(PointCloud2, "points", out)

        self._diagnostics = DiagnosticsReporter(self, "stereo depth",
                                                self._values["diagnostics_period"])
        self._diagnostics.hardware_id = str(self._device)
        self._diagnostics.extra["method"] = self._values["method"]
        self._on_device = CpuFallback(self._device, self._diagnostics, self.get_logger())
        # Scratch volumes reused across frames (allocating them costs ~100 ms per frame),
        # one set per device so a CPU fallback does not evict the GPU's.
        self._workspaces: dict[str, Workspace] = defaultdict(Workspace)
        self.get_logger().info(
            f"stereo_depth ready: method={self._values['method']} device={self._device} "
            f"max_disparity={self._sgm_config.max_disparity}"
        )

    # ----------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        updates = {param.name: param.value for param in params}
        reason = check_updates(PARAMS, updates)
        if reason is None and any(key in updates for key in _MATCHER_KEYS):
            try:
                config = sgm_config_from_params({**self._values, **updates})
            except ValueError as err:
                reason = str(err)
            else:
                self._sgm_config = config
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self._values.update(updates)
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------- inputs
    def _on_left_info(self, msg: CameraInfo) -> None:
        self._left_info_msg = msg

    def _on_right_info(self, msg: CameraInfo) -> None:
        self._right_info_msg = msg

    def _current_rig(self) -> StereoRig:
        if self._left_info_msg is None or self._right_info_msg is None:
            missing = [side for side, msg in (("left", self._left_info_msg),
                                              ("right", self._right_info_msg)) if msg is None]
            raise BadInput("missing_camera_info",
                           f"no CameraInfo received yet on {' and '.join(missing)}/camera_info")
        try:
            left = self._left_info.get(self._left_info_msg)
            right = self._right_info.get(self._right_info_msg)
        except ValueError as err:
            raise BadInput("invalid_calibration", str(err)) from err
        key = (id(left), id(right))
        if key != self._rig_key:
            try:
                self._rig = StereoRig(left, right)
            except ValueError as err:
                raise BadInput("invalid_calibration", str(err)) from err
            self._rig_key = key
        return self._rig

    def _prepare(self, left_msg: Image, right_msg: Image) -> StereoFrame:
        """Validate a pair and its calibration; raise BadInput to skip it."""
        stamp = stamp_ns(left_msg)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise BadInput("out_of_order_stamp",
                           f"stamp {stamp * 1e-9:.6f} s is not after the last processed "
                           f"{self._last_stamp * 1e-9:.6f} s")
        if left_msg.encoding != right_msg.encoding:
            raise BadInput("encoding_mismatch",
                           f"left is {left_msg.encoding!r} but right is {right_msg.encoding!r}")
        if (left_msg.width, left_msg.height) != (right_msg.width, right_msg.height):
            raise BadInput("size_mismatch",
                           f"left is {left_msg.width}x{left_msg.height} but right is "
                           f"{right_msg.width}x{right_msg.height}")
        left = read_image(left_msg, STEREO_ENCODINGS)
        right = read_image(right_msg, STEREO_ENCODINGS)
        rig = self._current_rig()
        if rig.left.size != left.shape[:2]:
            raise BadInput("camera_info_mismatch",
                           f"CameraInfo is {rig.left.width}x{rig.left.height} but the images are "
                           f"{left_msg.width}x{left_msg.height}")
        return StereoFrame(left, right, left_msg.encoding, rig)

    # ----------------------------------------------------------------- processing
    def _match(self, frame: StereoFrame) -> np.ndarray:
        """(H, W) float32 disparity in left pixels, NaN where invalid."""
        left = in_rgb_order(frame.left, frame.encoding)
        right = in_rgb_order(frame.right, frame.encoding)
        if self._values["method"] == "opencv":
            config = OpenCVSGBMConfig(max_disparity=self._sgm_config.max_disparity,
                                      min_disparity=self._sgm_config.min_disparity)
            return opencv_sgbm_disparity(left, right, config)
        result = self._on_device(lambda device: compute_disparity(
            left, right, self._sgm_config, device, workspace=self._workspaces[str(device)]))
        return result.disparity.cpu().numpy()

    def _on_pair(self, left_msg: Image, right_msg: Image) -> None:
        try:
            frame = self._prepare(left_msg, right_msg)
        except BadInput as bad:
            self._diagnostics.bad_input(bad.cause, bad.detail)
            return
        start = time.perf_counter()
        disparity = self._match(frame)
        self._publish(left_msg, frame, disparity)
        self._last_stamp = stamp_ns(left_msg)
        self._diagnostics.frame_processed(time.perf_counter() - start)

    def _publish(self, left_msg: Image, frame: StereoFrame, disparity: np.ndarray) -> None:
        rig, header = frame.rig, left_msg.header
        config = self._sgm_config
        # DisparityImage follows stereo_image_proc: values are shifted by doffs so that
        # Z = f * t / d holds for the published image even when the principal points differ.
        self._disparity_pub.publish(make_disparity_image(
            disparity + np.float32(rig.doffs), header, focal=rig.focal, baseline=rig.baseline,
            min_disparity=config.min_disparity + rig.doffs,
            max_disparity=config.min_disparity + config.max_disparity - 1 + rig.doffs,
        ))
        depth = disparity_to_depth(disparity, rig.focal, rig.baseline, rig.doffs)
        self._depth_pub.publish(numpy_to_image(depth.astype(np.float32), "32FC1", header=header))
        if self._values["publish_points"]:
            xyz = disparity_to_points(disparity, rig)
            rgb = to_rgb8(frame.left, frame.encoding)
            self._points_pub.publish(make_xyz_rgb_cloud(xyz, rgb, header))


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(StereoDepthNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
