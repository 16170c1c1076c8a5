"""The ``optical_flow`` node: an image stream in, dense flow between consecutive frames out.

Subscribes ``image``. Keeps the previous frame and computes the flow previous -> current
with :class:`kestrel_core.flow.FlowEstimator`: Kestrel's pyramidal Lucas-Kanade
(``method: lk``) or learned network (``method: learned``), both torch on CPU or CUDA, or
OpenCV DIS (``method: dis``). Publishes ``flow``
(32FC2, ``(u, v)`` in pixels), ``flow/color`` (rgb8, Middlebury colour wheel),
``flow/occlusion`` (mono8, 255 where the forward-backward check fails) and
``/diagnostics``. Outputs carry the *current* frame's header. This file only translates
messages; the flow itself is the core's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import Image

from kestrel_core.device import resolve_device
from kestrel_core.flow import DIS_PRESETS, FLOW_METHODS, FlowEstimator, LKConfig, flow_to_color
from kestrel_core.flow.resize import resize_flow, working_size
from kestrel_core.flow.consistency import occlusion_mask
from kestrel_ros.compat.approximate_time import stamp_ns
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.device_fallback import CpuFallback
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.image_input import in_rgb_order, read_image
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParamSpec, ParameterValueError, check_updates, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "optical_flow"
FLOW_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1")
_LK = LKConfig()

PARAMS = (
    ParamSpec("method", "dis", "Flow method: Kestrel pyramidal Lucas-Kanade (lk, fast), Kestrel "
              "coarse-to-fine block matching with smoothed Lucas-Kanade and occlusion filling "
              "(coarse_to_fine, most accurate, tens of times slower than lk on the CPU), "
              "Kestrel's learned network (learned; choose it at start-up, where its model is "
              "loaded) or OpenCV DIS (dis).",
              choices=FLOW_METHODS),
    ParamSpec("model_path", "", "Flow checkpoint for learned (from `kestrel train flow`); empty "
              "loads the model shipped with Kestrel.", read_only=True),
    ParamSpec("device", "auto", "Torch device for lk, coarse_to_fine and learned: auto picks CUDA "
              "when available.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("pyramid_levels", _LK.levels, "lk pyramid levels including full resolution; the "
              "largest motion handled is about window / 2 * 2^(levels - 1) pixels.",
              minimum=1, maximum=10),
    ParamSpec("window", _LK.window, "lk integration window side in pixels (odd).",
              minimum=3, maximum=63),
    ParamSpec("iterations", _LK.iterations, "lk warping iterations per coarse pyramid level "
              "(the full-resolution level gets one).",
              minimum=1, maximum=20),
    ParamSpec("dis_preset", "medium", "OpenCV DIS preset for dis.",
              choices=tuple(DIS_PRESETS)),
    ParamSpec("max_input_width", 0, "Images wider than this are downscaled (INTER_AREA) before "
              "the flow is computed, and the flow is scaled back; 0 means no limit.",
              minimum=0, maximum=16384),
    ParamSpec("occlusion_check", True, "Compute the backward flow too and publish flow/occlusion "
              "from the forward-backward check (doubles the cost)."),
    ParamSpec("occlusion_threshold_px", 1.0, "Largest forward-backward mismatch, the length of "
              "f_fw(x) + f_bw(x + f_fw(x)), of a non-occluded pixel, in pixels.",
              minimum=0.0, maximum=100.0),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + QOS_PARAMS


def estimator_from_params(values: dict, learned: FlowEstimator | None) -> FlowEstimator:
    """The flow estimator the parameters ask for.

    Args:
        learned: the learned estimator loaded at start-up, or None if the node did not
            start with ``method: learned``.

    Raises:
        ValueError: ``learned`` without a model loaded at start-up, or values LKConfig
            rejects (e.g. an even window).
    """
    if values["method"] == "learned":
        if learned is None:
            raise ParameterValueError(
                "method 'learned' loads its model at start-up: start the node with "
                "method:=learned (and model_path) instead of switching to it")
        return learned
    lk_config = LKConfig(levels=values["pyramid_levels"], window=values["window"],
                         iterations=values["iterations"])
    return FlowEstimator(values["method"], lk_config=lk_config, dis_preset=values["dis_preset"])


@dataclass(frozen=True)
class Frame:
    """A validated image of the stream.

    Attributes:
        pixels: (H, W) or (H, W, 3) array the core accepts (RGB for colour), owned.
        encoding: the message's encoding.
        stamp: header stamp in nanoseconds.
    """

    pixels: np.ndarray
    encoding: str
    stamp: int

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


class OpticalFlowNode(Node):
    """Thin adapter from an image topic to :mod:`kestrel_core.flow`."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._device = resolve_device(self._values["device"])
        self._learned = None
        if self._values["method"] == "learned":
            self._learned = FlowEstimator("learned", self._device,
                                          model_path=self._values["model_path"] or None)
        self._estimator = estimator_from_params(self._values, self._learned)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._previous: Frame | None = None

        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        self.create_subscription(Image, "image", self._on_image, qos,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        out = output_qos()
        self._flow_pub = self.create_publisher(Image, "flow", out)
        self._color_pub = self.create_publisher(Image, "flow/color", out)
        self._occlusion_pub = self.create_publisher(Image, "flow/occlusion", out)

        self._diagnostics = DiagnosticsReporter(self, "optical flow",
                                                self._values["diagnostics_period"])
        self._diagnostics.hardware_id = str(self._device)
        self._diagnostics.extra["method"] = self._values["method"]
        self._on_device = CpuFallback(self._device, self._diagnostics, self.get_logger())
        self.get_logger().info(
            f"optical_flow ready: method={self._values['method']} device={self._device} "
            f"occlusion_check={self._values['occlusion_check']}"
        )

    # ----------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        updates = {param.name: param.value for param in params}
        reason = check_updates(PARAMS, updates)
        if reason is None:
            try:
                estimator = estimator_from_params({**self._values, **updates}, self._learned)
            except ValueError as err:
                reason = str(err)
            else:
                self._estimator = estimator
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self._values.update(updates)
        self._diagnostics.extra["method"] = self._values["method"]
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------- input
    def _prepare(self, msg: Image) -> Frame:
        """Validate one image; raise BadInput to skip it."""
        pixels = read_image(msg, FLOW_ENCODINGS)
        if pixels.shape[0] < 2 or pixels.shape[1] < 2:
            raise BadInput("malformed_image", f"image is {msg.width}x{msg.height}")
        stamp = stamp_ns(msg)
        if self._previous is not None and stamp <= self._previous.stamp:
            raise BadInput("out_of_order_stamp",
                           f"stamp {stamp * 1e-9:.6f} s is not after the previous frame's "
                           f"{self._previous.stamp * 1e-9:.6f} s")
        pixels = in_rgb_order(pixels, msg.encoding)
        # Own the pixels: the message buffer is not ours to keep.
        return Frame(np.array(pixels, copy=True), msg.encoding, stamp)

    def _on_image(self, msg: Image) -> None:
        self._diagnostics.input_received()
        try:
            frame = self._prepare(msg)
        except BadInput as bad:
            self._diagnostics.bad_input(bad.cause, bad.detail)
            return
        previous, self._previous = self._previous, frame
        if previous is None:
            return  # the first frame of a stream has nothing to be compared with
        if (previous.size, previous.encoding) != (frame.size, frame.encoding):
            self._stream_reset(previous, frame)
            return
        start = time.perf_counter()
        forward, backward = self._compute(previous.pixels, frame.pixels)
        self._publish(msg.header, forward, backward)
        self._diagnostics.frame_processed(time.perf_counter() - start)

    def _stream_reset(self, previous: Frame, frame: Frame) -> None:
        """A new size or encoding starts a new stream: warn, count, and wait for a pair."""
        detail = (f"stream changed from {previous.size[0]}x{previous.size[1]} {previous.encoding} "
                  f"to {frame.size[0]}x{frame.size[1]} {frame.encoding}; flow restarts at the "
                  "next frame")
        self._diagnostics.skipped(BadInput("stream_reset", detail))

    # ----------------------------------------------------------------- processing
    def _flow(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(h, w, 2) float32 flow first -> second by the configured method."""
        estimator = self._estimator
        if estimator.method == "dis":
            return estimator(first, second)
        return self._on_device(lambda device: estimator(first, second, device))

    def _compute(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Forward flow and, with occlusion_check, backward flow, both (H, W, 2) float32 in
        pixels of the input size."""
        height, width = first.shape[:2]
        size = working_size(width, height, self._values["max_input_width"])
        if size != (width, height):
            first = cv2.resize(first, size, interpolation=cv2.INTER_AREA)
            second = cv2.resize(second, size, interpolation=cv2.INTER_AREA)
        forward = resize_flow(self._flow(first, second), width, height)
        backward = None
        if self._values["occlusion_check"]:
            backward = resize_flow(self._flow(second, first), width, height)
        return forward, backward

    def _publish(self, header, forward: np.ndarray, backward: np.ndarray | None) -> None:
        self._flow_pub.publish(numpy_to_image(forward, "32FC2", header=header))
        self._color_pub.publish(numpy_to_image(flow_to_color(forward), "rgb8", header=header))
        if backward is not None:
            occluded = occlusion_mask(forward, backward, self._values["occlusion_threshold_px"])
            self._occlusion_pub.publish(
                numpy_to_image(occluded.astype(np.uint8) * np.uint8(255), "mono8", header=header))


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(OpticalFlowNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
