"""The ``ssl_features`` node: an image stream in, dense self-supervised features out.

Subscribes ``image``. Runs a :class:`kestrel_core.features.FeatureModel` (a ViT or CNN
backbone loaded once at start-up) on each frame and publishes

* ``features`` (kestrel_interfaces/FeatureMap): the dense patch features ``(C, h, w)``,
  image-aligned: cell ``(i, j)`` covers pixels ``[i*stride, (i+1)*stride)`` of the input
  image along rows and columns, ``stride = model stride * downscale factor``;
* ``features/embedding`` (kestrel_interfaces/Embedding): the global embedding ``(D,)``
  (CLS token for ViTs);
* ``features/pca`` (rgb8 Image, ``h x w``, one pixel per cell): the first three principal
  components of the features as colours, with a basis fitted once on the first frames;
* ``/diagnostics``.

Outputs keep the input's header. Frames that arrive while one is being processed are
dropped and counted (``dropped.busy``), so the node always works on recent frames and
never builds a queue. This file only translates messages; the model is the core's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from kestrel_interfaces.msg import Embedding, FeatureMap
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image

from kestrel_core.features.model import FeatureModel
from kestrel_core.features.pca import PCAProjector
from kestrel_ros.conversions.feature_map import numpy_to_embedding, numpy_to_feature_map
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.feature_model_host import FeatureModelHost
from kestrel_ros.image_input import in_rgb_order, read_image
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParamSpec, accept_updates, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "ssl_features"
FEATURE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "16UC1", "32FC1")

PARAMS = (
    ParamSpec("model_path", "", "Kestrel feature checkpoint (.pt) to load at start-up; empty "
              "loads the best model this installation has (pretrained ViT-S/14, else the "
              "shipped ssl_small).", read_only=True),
    ParamSpec("input_size", 512, "Largest image side the model sees: a bigger image is shrunk "
              "by the smallest integer factor k that fits (INTER_AREA), so one cell covers "
              "k * model stride pixels; 0 keeps the full resolution.",
              minimum=0, maximum=8192),
    ParamSpec("stride", 0, "Output cell size in pixels; when > 0 it replaces input_size: the "
              "image is shrunk by k = max(1, stride // model stride), so a cell covers "
              "k * model stride pixels (stride rounded down to a multiple of the model's).",
              minimum=0, maximum=1024),
    ParamSpec("device", "auto", "Torch device: auto picks CUDA when available.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("pca_fit_cells", 1024, "Feature cells gathered from the first frames to fit the "
              "PCA colour basis of features/pca, which is fixed afterwards; features/pca "
              "starts once it is fitted.", minimum=3, maximum=1_000_000, read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + QOS_PARAMS


def cell_factor(height: int, width: int, input_size: int, stride: int, model_stride: int) -> int:
    """The shrink factor ``k`` of an image: from the ``stride`` parameter when it is set
    (``max(1, stride // model_stride)``), else from ``input_size`` (:func:`downscale_factor`)."""
    if stride > 0:
        return max(1, stride // model_stride)
    return downscale_factor(height, width, input_size)


def downscale_factor(height: int, width: int, input_size: int) -> int:
    """Smallest integer ``k >= 1`` with ``max(height, width) / k <= input_size`` (1 when
    ``input_size`` is 0)."""
    if input_size <= 0:
        return 1
    return max(1, math.ceil(max(height, width) / input_size))


def model_input(pixels: np.ndarray, cell: int, factor: int) -> torch.Tensor:
    """Prepare an image for a feature model whose cells cover ``cell`` input pixels.

    The image is cropped at the bottom/right to multiples of ``cell * factor`` and shrunk by
    exactly ``factor`` (INTER_AREA averages ``factor x factor`` blocks), so that model cell
    ``(i, j)`` covers original pixels ``[i*cell*factor, (i+1)*cell*factor)``.

    Args:
        pixels: ``(H, W)`` grey or ``(H, W, 3)`` RGB; uint8, uint16 (scaled by their maximum)
            or float32 taken as ``[0, 1]`` (clipped).
        cell: the model's stride in its input pixels.
        factor: integer downscale factor (:func:`downscale_factor`).

    Returns:
        ``(1, 3, H', W')`` float32 RGB in ``[0, 1]`` with ``H' = H // (cell*factor) * cell``.

    Raises:
        ValueError: the image is smaller than one cell of ``cell * factor`` pixels.
    """
    block = cell * factor
    height, width = (pixels.shape[0] // block) * block, (pixels.shape[1] // block) * block
    if height == 0 or width == 0:
        raise ValueError(f"image {pixels.shape[1]}x{pixels.shape[0]} is smaller than one "
                         f"{block}x{block} feature cell")
    cropped = pixels[:height, :width]
    if np.issubdtype(cropped.dtype, np.integer):
        scaled = cropped.astype(np.float32) * np.float32(1.0 / np.iinfo(cropped.dtype).max)
    else:
        scaled = np.clip(cropped, 0.0, 1.0, dtype=np.float32)
    if factor > 1:  # on floats, so the block means are not rounded to the input's integers
        scaled = cv2.resize(scaled, (width // factor, height // factor),
                            interpolation=cv2.INTER_AREA)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled))
    tensor = tensor.unsqueeze(-1).expand(-1, -1, 3) if tensor.ndim == 2 else tensor
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


@dataclass(frozen=True)
class Features:
    """One frame's model outputs on the CPU.

    Attributes:
        dense: ``(C, h, w)`` float32 patch features.
        embedding: ``(D,)`` float32 global embedding.
        stride: pixels of the input image per cell.
    """

    dense: np.ndarray
    embedding: np.ndarray
    stride: int


def run_model(model: FeatureModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense features ``(B, C, h, w)`` and embedding ``(B, D)`` from one backbone pass
    (``model.dense`` and ``model.embedding`` would each run the backbone)."""
    with torch.inference_mode():
        outputs = model.backbone.forward_features(model.normalize(images))
    return outputs["patches"], outputs["cls"]


class PcaColouring:
    """Gathers feature cells of the first frames, fits a :class:`PCAProjector` once when
    ``fit_cells`` are gathered, and colours every later frame with that fixed basis."""

    def __init__(self, fit_cells: int) -> None:
        self._fit_cells = fit_cells
        self._gathered: list[np.ndarray] = []
        self._count = 0
        self.projector: PCAProjector | None = None

    def colour(self, dense: np.ndarray) -> np.ndarray | None:
        """``(h, w, 3)`` uint8 colours of ``(C, h, w)`` features, or None before the fit."""
        if self.projector is None:
            cells = dense.reshape(dense.shape[0], -1).T  # (h*w, C)
            self._gathered.append(cells[: self._fit_cells - self._count])
            self._count += len(self._gathered[-1])
            if self._count < self._fit_cells:
                return None
            projector = PCAProjector()
            projector.fit(np.concatenate(self._gathered))
            self.projector, self._gathered = projector, []
        return self.projector.to_rgb(dense)


class SslFeaturesNode(Node):
    """Thin adapter from an image topic to :class:`kestrel_core.features.FeatureModel`."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._diagnostics = DiagnosticsReporter(self, "ssl features",
                                                self._values["diagnostics_period"])
        self._host = FeatureModelHost(self, self._values["model_path"], self._values["device"],
                                      self._diagnostics)
        self._pca = PcaColouring(self._values["pca_fit_cells"])
        self.add_on_set_parameters_callback(self._on_set_parameters)

        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        # Reentrant: a frame arriving during processing reaches _on_image and is dropped there.
        self.create_subscription(Image, "image", self._on_image, qos,
                                 callback_group=ReentrantCallbackGroup())
        out = output_qos()
        self._features_pub = self.create_publisher(FeatureMap, "features", out)
        self._embedding_pub = self.create_publisher(Embedding, "features/embedding", out)
        self._pca_pub = self.create_publisher(Image, "features/pca", out)
        model = self._host.model
        self.get_logger().info(
            f"ssl_features ready: model={model.model_id} stride={model.stride} "
            f"channels={model.embed_dim} device={self._host.device} "
            f"input_size={self._values['input_size']}")

    # ----------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        return accept_updates(PARAMS, self._values, params)

    # ----------------------------------------------------------------- input
    def _on_image(self, msg: Image) -> None:
        self._host.admit(msg, self._process)

    def _process(self, msg: Image) -> None:
        start = time.perf_counter()
        try:
            images, factor = self._prepare(msg)
        except BadInput as bad:
            self._diagnostics.bad_input(bad.cause, bad.detail)
            return
        features = self._host.run(lambda model: self._compute(model, images, factor))
        self._publish(msg.header, features)
        self._diagnostics.frame_processed(time.perf_counter() - start)

    def _prepare(self, msg: Image) -> tuple[torch.Tensor, int]:
        """Validate one image; return the model input and the downscale factor, or raise
        BadInput to skip it."""
        pixels = in_rgb_order(read_image(msg, FEATURE_ENCODINGS), msg.encoding)
        factor = cell_factor(pixels.shape[0], pixels.shape[1], self._values["input_size"],
                             self._values["stride"], self._host.model.stride)
        try:
            return model_input(pixels, self._host.model.stride, factor), factor
        except ValueError as err:
            raise BadInput("image_too_small", str(err)) from err

    # ----------------------------------------------------------------- processing
    def _compute(self, model: FeatureModel, images: torch.Tensor, factor: int) -> Features:
        dense, embedding = run_model(model, images)
        return Features(dense=dense[0].float().cpu().numpy(),
                        embedding=embedding[0].float().cpu().numpy(),
                        stride=model.stride * factor)

    def _publish(self, header, features: Features) -> None:
        model_id = self._host.model.model_id
        self._features_pub.publish(
            numpy_to_feature_map(features.dense, model_id, stride=features.stride, header=header))
        self._embedding_pub.publish(numpy_to_embedding(features.embedding, model_id, header=header))
        colours = self._pca.colour(features.dense)
        if colours is not None:
            self._pca_pub.publish(numpy_to_image(colours, "rgb8", header=header))


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(SslFeaturesNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
