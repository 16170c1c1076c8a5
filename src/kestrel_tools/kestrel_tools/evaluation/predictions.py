"""Score outputs recorded from running nodes (a second bag) against the bag that was replayed
into them, matched by header stamp: disparities (stereo_msgs/DisparityImage) against the
ground truth, flows (32FC2 Image) by the photometric error on the video frames.

A DisparityImage holds ``d + doffs`` (stereo_image_proc's convention, see
:mod:`kestrel_ros.conversions.disparity`); ``doffs`` comes from the CameraInfo pair of the
ground-truth bag, so the scores compare like with like.
"""

from __future__ import annotations

import numpy as np

from kestrel_ros.compat.approximate_time import stamp_ns
from kestrel_ros.conversions.disparity import disparity_image_to_numpy
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.decode import float_map, image_array, stereo_rig
from kestrel_tools.evaluation.flow import photometric_scores
from kestrel_tools.evaluation.results import Figure, TaskResult, mean_rows
from kestrel_tools.evaluation.stereo import METRICS, disparity_figures
from kestrel_tools.evaluation.sync import synchronized
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.sample import topics

DISPARITY_TYPE = "stereo_msgs/msg/DisparityImage"
GT_REQUIRED = (topics.GT_DISPARITY, topics.LEFT_INFO, topics.RIGHT_INFO)


def recorded_disparities(bag: BagReader, topic: str) -> dict[int, object]:
    """Header stamp -> DisparityImage of ``topic`` (the last one per stamp)."""
    msgtype = bag.topics.get(topic)
    if msgtype is not None and msgtype != DISPARITY_TYPE:
        raise ValueError(f"{bag.path}: topic {topic} is {msgtype}, not {DISPARITY_TYPE}")
    return {stamp_ns(message.msg): message.msg for message in bag.messages(topic)}


def evaluate_disparity_predictions(truth_bag: BagReader, predictions: BagReader,
                                   topic: str) -> TaskResult:
    """Bad-1, bad-2, EPE and density of the recorded disparities that have ground truth.

    Raises:
        ValueError: no recorded disparity shares a stamp with the ground truth.
    """
    recorded = recorded_disparities(predictions, topic)
    result = TaskResult("predictions")
    for stamp, group in synchronized(truth_bag, GT_REQUIRED):
        msg = recorded.get(stamp)
        if msg is None:
            continue
        disparity = disparity_image_to_numpy(msg) - stereo_rig(group).doffs
        truth = float_map(group[topics.GT_DISPARITY])
        result.rows.append({"stamp_ns": stamp, **stereo_metrics(disparity, truth)})
        if not result.figures:
            result.figures = disparity_figures("predictions", disparity, truth, "node")
    if not result.rows:
        raise ValueError(f"{predictions.path}: none of the {len(recorded)} messages on {topic} "
                         f"has the stamp of a {topics.GT_DISPARITY} message in {truth_bag.path}")
    result.summary = {"frames": len(result.rows), "recorded": len(recorded),
                      **mean_rows(result.rows, METRICS)}
    result.notes.append(f"recorded {topic} from {predictions.path} ({len(recorded)} messages), "
                        "doffs removed, scored where the stamp matches the ground truth.")
    return result


def evaluate_flow_predictions(truth_bag: BagReader, predictions: BagReader,
                              topic: str) -> TaskResult:
    """Photometric error of flows recorded from the optical_flow node on the bag's video.

    A recorded flow (32FC2 Image) carries the header of the frame it ends at, and runs from
    the frame before it on ``/camera/image`` (see ``kestrel_ros.nodes.optical_flow``).

    Raises:
        ValueError: no recorded flow shares a stamp with a video frame that has a predecessor.
    """
    recorded = {stamp_ns(message.msg): message.msg for message in predictions.messages(topic)}
    result = TaskResult("flow_predictions")
    previous = None
    for message in truth_bag.messages(topics.VIDEO_IMAGE):
        frame = image_array(message.msg)
        flow_msg = recorded.get(stamp_ns(message.msg))
        if previous is not None and flow_msg is not None:
            flow = np.array(image_array(flow_msg), dtype=np.float32)
            result.rows.append({"stamp_ns": stamp_ns(message.msg),
                                **photometric_scores(previous, frame, flow)})
            if not result.figures:
                result.figures.append(Figure("flow_predictions", "flow", flow,
                                             f"node flow on {topic}"))
        previous = frame
    if not result.rows:
        raise ValueError(f"{predictions.path}: none of the {len(recorded)} messages on {topic} "
                         f"matches a frame of {topics.VIDEO_IMAGE} in {truth_bag.path}")
    result.summary = {"pairs": len(result.rows), "recorded": len(recorded), **mean_rows(
        result.rows, ("photometric", "photometric_zero_flow"))}
    result.notes.append(f"recorded {topic} from {predictions.path}: photometric error of the "
                        "next frame warped back by the node's flow, and with zero flow.")
    return result
