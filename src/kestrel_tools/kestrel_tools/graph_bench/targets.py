"""The nodes ``kestrel bench-graph`` can measure: their inputs, outputs and input builders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from stereo_msgs.msg import DisparityImage

from kestrel_tools.graph_bench.inputs import Frame, oakd_stereo_frames, video_frames


@dataclass(frozen=True)
class NodeTarget:
    """One benchmarkable node.

    Attributes:
        executable: console script (and node) name.
        inputs: ``topic -> message class`` the benchmark publishes.
        outputs: given the node's effective parameters, ``topic -> message class`` it will
            publish for each input frame (every one starts with a ``std_msgs/Header``).
        frames: ``(width, height) -> frames`` built once before the run.
        description: the inputs in words, for the report.
    """

    executable: str
    inputs: Mapping[str, type]
    outputs: Callable[[Mapping[str, object]], dict[str, type]]
    frames: Callable[[int, int], list[Frame]]
    description: str


def _stereo_outputs(params: Mapping[str, object]) -> dict[str, type]:
    outputs: dict[str, type] = {"disparity": DisparityImage, "depth": Image}
    if params.get("publish_points", True):
        outputs["points"] = PointCloud2
    return outputs


def _flow_outputs(params: Mapping[str, object]) -> dict[str, type]:
    outputs: dict[str, type] = {"flow": Image, "flow/color": Image}
    if params.get("occlusion_check", True):
        outputs["flow/occlusion"] = Image
    return outputs


TARGETS: dict[str, NodeTarget] = {
    "stereo_depth": NodeTarget(
        "stereo_depth",
        {"left/camera_info": CameraInfo, "right/camera_info": CameraInfo,
         "left/image_rect": Image, "right/image_rect": Image},
        _stereo_outputs, oakd_stereo_frames,
        "the 12 OAK-D indoor pairs (mono8) resized, with CameraInfo, cycled"),
    "optical_flow": NodeTarget(
        "optical_flow", {"image": Image}, _flow_outputs, video_frames,
        "24 consecutive frames of vtest.avi (rgb8) resized, cycled"),
}


def target(name: str) -> NodeTarget:
    """The target named ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in TARGETS:
        raise ValueError(f"no graph benchmark for node {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]
