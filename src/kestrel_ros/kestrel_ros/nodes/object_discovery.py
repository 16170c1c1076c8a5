"""The ``object_discovery`` node: class-agnostic objects in images and LiDAR clouds, no labels.

Subscribes ``image`` and, for 3D, ``points``, ``camera_info`` and TF. Runs
:func:`kestrel_core.discovery.discover_objects` (MaskCut on the last-layer keys of a
self-supervised ViT loaded once at start-up, refined to pixels with a guided filter) on each
image, links the masks over frames with
:class:`kestrel_core.discovery.MaskTracker` and publishes, for the tracks seen in at least
``track_persistence`` frames:

* ``detections`` (vision_msgs/Detection2DArray): one Detection2D per object, ``id`` = the
  track id, one hypothesis ``class_id="object"`` with the MaskCut score, and the axis-aligned
  box of the object's pixels (centre and size in pixels);
* ``masks`` (mono16): the instance image, pixel value = track id, 0 = background;
* ``overlay`` (rgb8): the image with the published objects tinted, for RViz;
* ``/diagnostics``.

Outputs keep the input's header. A frame without a cut (e.g. a constant image) publishes
nothing and is counted as ``no_cut``; an image smaller than one patch as
``image_too_small``. Frames arriving while one is processed are dropped (``busy``).

Each ``points`` cloud is processed on arrival by :class:`kestrel_ros.discovery3d.Discovery3D`
(ground removal, clustering, upright boxes, box tracks, late fusion with the newest published
masks) and publishes

* ``detections_3d`` (vision_msgs/Detection3DArray): one Detection3D per persistent box
  track, ``id`` = the box track id, one hypothesis ``class_id="object"`` whose score is above
  0.5 for 3D-confirmed objects (0.5 otherwise), the upright box in the cloud's frame;
* ``markers`` (visualization_msgs/MarkerArray): a cube and a label per published box, and
  DELETE markers for the boxes gone since the previous cloud;
* a second ``/diagnostics`` status, ``objects 3d``.
"""

from __future__ import annotations

import time

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kestrel_core.discovery import (
    Discovery,
    DiscoveryConfig,
    MaskCutConfig,
    MaskObservation,
    MaskTracker,
    TrackedObject,
    TrackerConfig,
    discover_objects,
)
from kestrel_core.discovery.pipeline import as_rgb
from kestrel_core.discovery.visualize import instance_overlay
from kestrel_core.features.model import FeatureModel
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.diagnostics import BadInput, DiagnosticsReporter
from kestrel_ros.discovery3d import BOX_TRACKER_PARAMS, PARAMS_3D, Discovery3D, MaskFrame, configs_from_values
from kestrel_ros.feature_model_host import FeatureModelHost
from kestrel_ros.image_input import in_rgb_order, read_image
from kestrel_ros.node_main import run_node
from kestrel_ros.params import ParameterValueError, ParamSpec, check_updates, declare_parameters
from kestrel_ros.qos import QOS_PARAMS, output_qos, sensor_qos

NODE_NAME = "object_discovery"
ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
CLASS_ID = "object"

PARAMS = (
    ParamSpec("model_path", "", "Kestrel feature checkpoint (.pt) loaded at start-up; empty loads "
              "the best model this installation has (pretrained ViT-S/14, else the shipped "
              "ssl_small).", read_only=True),
    ParamSpec("max_objects", 3, "Most objects MaskCut extracts per frame.", minimum=1, maximum=16),
    ParamSpec("affinity_threshold", 0.15, "tau: cosine similarity of centred keys above which two "
              "patches are linked in the normalized-cut graph.", minimum=-1.0, maximum=0.99),
    ParamSpec("input_size", 480, "Longer side in pixels of the image the model sees (rounded to "
              "whole patches).", minimum=14, maximum=4096),
    ParamSpec("device", "auto", "Torch device: auto picks CUDA when available.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("track_persistence", 3, "Frames a track must be matched in before it is published.",
              minimum=1, maximum=1000),
    ParamSpec("track_min_similarity", 0.3, "Smallest blend of mask IoU and key cosine that links "
              "a mask to a track.", minimum=0.0, maximum=1.0),
    ParamSpec("track_max_missed", 2, "Frames a track may go unmatched before it ends.",
              minimum=0, maximum=1000),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              minimum=0.1, maximum=60.0),
) + PARAMS_3D + QOS_PARAMS

# Parameters that only take effect at the next frame's configuration rebuild.
_TRACKER_PARAMS = ("track_persistence", "track_min_similarity", "track_max_missed")


def published_instances(found: Discovery, tracked: list[TrackedObject]) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """Instance image relabelled with track ids, keeping only published tracks.

    Args:
        found: one frame's discovery (object ``k`` = ``found.instances == k + 1``).
        tracked: the tracker's answer for the frame's masks, in mask order.

    Returns:
        ``((H, W) uint16 track-id image, [(track_id, score), ...])`` for the published
        objects that kept at least one pixel after refinement.
    """
    lookup = np.zeros(found.count + 1, np.uint16)
    objects = []
    for t in tracked:
        if t.published and np.any(found.instances == t.index + 1):
            lookup[t.index + 1] = t.track_id
            objects.append((t.track_id, float(found.scores[t.index])))
    return lookup[found.instances], objects


def detection(header, ids: np.ndarray, track_id: int, score: float) -> Detection2D:
    """Detection2D with the axis-aligned pixel box of ``ids == track_id``."""
    rows = np.flatnonzero(np.any(ids == track_id, axis=1))
    cols = np.flatnonzero(np.any(ids == track_id, axis=0))
    out = Detection2D(header=header, id=str(track_id))
    # Box edges at pixel borders: pixels rows[0]..rows[-1] span [rows[0] - 0.5, rows[-1] + 0.5].
    out.bbox.center.position.x = float(cols[0] + cols[-1]) / 2.0
    out.bbox.center.position.y = float(rows[0] + rows[-1]) / 2.0
    out.bbox.size_x = float(cols[-1] - cols[0] + 1)
    out.bbox.size_y = float(rows[-1] - rows[0] + 1)
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = CLASS_ID
    hypothesis.hypothesis.score = score
    out.results = [hypothesis]
    return out


class ObjectDiscoveryNode(Node):
    """Thin adapter from an image topic to the core's MaskCut discovery and mask tracker."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values = declare_parameters(self, PARAMS)
        self._latest_masks: MaskFrame | None = None
        # Before the model is loaded, so an invalid 3D parameter stops the node at once.
        self._objects_3d = Discovery3D(self, self._values, lambda: self._latest_masks)
        self._diagnostics = DiagnosticsReporter(self, "object discovery", self._values["diagnostics_period"])
        self._host = FeatureModelHost(self, self._values["model_path"], self._values["device"],
                                      self._diagnostics)
        self._tracker = MaskTracker(self._tracker_config())
        self._grid: tuple[int, int] | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

        qos = sensor_qos(self._values["qos_reliability"], self._values["qos_depth"])
        self.create_subscription(Image, "image", self._on_image, qos,
                                 callback_group=ReentrantCallbackGroup())
        out = output_qos()
        self._detections_pub = self.create_publisher(Detection2DArray, "detections", out)
        self._masks_pub = self.create_publisher(Image, "masks", out)
        self._overlay_pub = self.create_publisher(Image, "overlay", out)
        self.get_logger().info(
            f"object_discovery ready: model={self._host.model.model_id} device={self._host.device} "
            f"max_objects={self._values['max_objects']} input_size={self._values['input_size']}")

    # ----------------------------------------------------------------- parameters
    def _tracker_config(self) -> TrackerConfig:
        return TrackerConfig(min_similarity=self._values["track_min_similarity"],
                             persistence=self._values["track_persistence"],
                             max_missed=self._values["track_max_missed"])

    def _discovery_config(self) -> DiscoveryConfig:
        return DiscoveryConfig(size=self._values["input_size"],
                               maskcut=MaskCutConfig(max_objects=self._values["max_objects"],
                                                     tau=self._values["affinity_threshold"]))

    def _on_set_parameters(self, params) -> SetParametersResult:
        updates = {param.name: param.value for param in params}
        reason = check_updates(PARAMS, updates)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        try:
            configs = configs_from_values({**self._values, **updates})
        except ParameterValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        self._values.update(updates)
        self._objects_3d.configs = configs
        if any(name in updates for name in _TRACKER_PARAMS):
            self._tracker = MaskTracker(self._tracker_config())
        if any(name in updates for name in BOX_TRACKER_PARAMS):
            self._objects_3d.reset_tracker()
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------- input
    def _on_image(self, msg: Image) -> None:
        self._host.admit(msg, self._process)

    def _process(self, msg: Image) -> None:
        start = time.perf_counter()
        try:
            rgb = self._prepare(msg)
            found = self._host.run(lambda model: self._discover(model, rgb))
        except BadInput as bad:
            self._diagnostics.bad_input(bad.cause, bad.detail)
            return
        self._publish(msg.header, rgb, found)
        self._diagnostics.frame_processed(time.perf_counter() - start)

    def _prepare(self, msg: Image) -> np.ndarray:
        """(H, W, 3) uint8 RGB of a valid image, or BadInput."""
        return as_rgb(np.ascontiguousarray(in_rgb_order(read_image(msg, ENCODINGS), msg.encoding)))

    # ----------------------------------------------------------------- processing
    def _discover(self, model: FeatureModel, rgb: np.ndarray) -> Discovery:
        try:
            found = discover_objects(rgb, model, self._discovery_config())
        except ValueError as err:
            raise BadInput("image_too_small", str(err)) from err
        if found.count == 0:
            raise BadInput("no_cut", "no normalized cut in this frame (constant image or no "
                           "separable object); nothing published")
        return found

    def _publish(self, header, rgb: np.ndarray, found: Discovery) -> None:
        if found.grid != self._grid:  # token masks of different grids cannot be compared
            self._tracker, self._grid = MaskTracker(self._tracker_config()), found.grid
        observations = [MaskObservation(mask, descriptor) for mask, descriptor
                        in zip(found.cut.masks, found.cut.descriptors.numpy())]
        ids, objects = published_instances(found, self._tracker.update(observations))
        self._latest_masks = MaskFrame(ids, header)
        detections = Detection2DArray(header=header)
        detections.detections = [detection(header, ids, track_id, score) for track_id, score in objects]
        self._detections_pub.publish(detections)
        self._masks_pub.publish(numpy_to_image(ids, "mono16", header=header))
        self._overlay_pub.publish(numpy_to_image(instance_overlay(rgb, ids.astype(np.int32)), "rgb8",
                                                 header=header))


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(ObjectDiscoveryNode, NODE_NAME, args))


if __name__ == "__main__":
    main()
