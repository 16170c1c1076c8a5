"""The object_discovery node as a real process, fed a real image over DDS.

It must publish a Detection2DArray whose boxes tightly enclose the objects of the instance
image it publishes with the same stamp, find the Motorcycle (IoU >= 0.5 with the object
derived from the real ground-truth disparity), keep track ids over frames, and report bad
input (constant image, image smaller than a patch, unknown encoding) on /diagnostics while
it keeps running.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from kestrel_core.discovery.evaluation import best_iou, foreground_from_disparity
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
FRAME_ID = "camera_optical_frame"
OUTPUTS = {"detections": Detection2DArray, "masks": Image, "overlay": Image}


@pytest.fixture(scope="module")
def graph(pretrained_path):
    ros_args = []
    for param in ("qos_reliability:=reliable", "diagnostics_period:=0.2", "device:=cpu",
                  "track_persistence:=2", f"model_path:={pretrained_path}", "max_objects:=3"):
        ros_args += ["-p", param]
    with NodeProcess("object_discovery", ros_args, domain_id=DOMAIN) as node, \
            GraphProbe("discovery_test_probe", domain_id=DOMAIN) as probe:
        probe.publisher(Image, "image")
        for topic, msg_type in OUTPUTS.items():
            probe.subscribe(msg_type, topic)
        assert probe.wait_for_subscribers(["image"], timeout=120.0), node.log()
        yield node, probe


_stamps = itertools.count(1)


def send(probe: GraphProbe, pixels: np.ndarray, encoding: str = "rgb8") -> Time:
    stamp = Time(sec=2_000 + next(_stamps), nanosec=0)
    probe.publisher(Image, "image").publish(
        numpy_to_image(pixels, encoding, header=Header(stamp=stamp, frame_id=FRAME_ID)))
    return stamp


def reply_for(probe: GraphProbe, stamp: Time) -> dict | None:
    key = time_ns(stamp)
    found = {topic: msg for topic in OUTPUTS for msg in probe.received.get(topic, []) if stamp_ns(msg) == key}
    return found if len(found) == len(OUTPUTS) else None


def request(probe: GraphProbe, node: NodeProcess, pixels: np.ndarray, timeout: float = 120.0) -> dict:
    """Send ``pixels`` (again every 20 s) until all outputs for one of its stamps arrive."""
    stamps: list[Time] = []
    ok = probe.wait_for(lambda: any(reply_for(probe, s) for s in stamps), timeout,
                        while_waiting=lambda: stamps.append(send(probe, pixels)), period=20.0)
    assert ok, f"no reply within {timeout} s\n{node.log()}"
    return next(r for s in stamps if (r := reply_for(probe, s)))


def test_detections_enclose_the_masks_and_find_the_motorcycle(graph):
    node, probe = graph
    sample = load_middlebury_motorcycle()
    truth = foreground_from_disparity(sample.ground_truth)
    image = np.ascontiguousarray(sample.left)

    first = request(probe, node, image)             # persistence 2: nothing published yet
    assert first["detections"].detections == []
    assert not image_to_numpy(first["masks"]).any()
    reply = request(probe, node, image)             # the same objects again: now published

    masks_msg, detections = reply["masks"], reply["detections"]
    assert masks_msg.encoding == "mono16" and masks_msg.header.frame_id == FRAME_ID
    assert detections.header.stamp == masks_msg.header.stamp
    ids = image_to_numpy(masks_msg)
    assert ids.shape == image.shape[:2]
    present = sorted(int(i) for i in np.unique(ids) if i)
    assert 1 <= len(detections.detections) <= 3
    assert sorted(int(d.id) for d in detections.detections) == present
    for found in detections.detections:
        rows, cols = np.nonzero(ids == int(found.id))
        box = found.bbox
        left, right = box.center.position.x - box.size_x / 2, box.center.position.x + box.size_x / 2
        top, bottom = box.center.position.y - box.size_y / 2, box.center.position.y + box.size_y / 2
        # Encloses every mask pixel (pixel centres at integers) and is tight to half a pixel.
        assert left == pytest.approx(cols.min() - 0.5) and right == pytest.approx(cols.max() + 0.5)
        assert top == pytest.approx(rows.min() - 0.5) and bottom == pytest.approx(rows.max() + 0.5)
        assert found.results[0].hypothesis.class_id == "object"
        assert 0.0 < found.results[0].hypothesis.score <= 1.0
    iou, _ = best_iou(ids.astype(np.int32), truth)
    assert iou >= 0.5

    overlay = image_to_numpy(reply["overlay"])
    assert reply["overlay"].encoding == "rgb8" and overlay.shape == image.shape
    np.testing.assert_array_equal(overlay[ids == 0], image[ids == 0])
    assert (np.abs(overlay[ids > 0].astype(int) - image[ids > 0]).sum(axis=1) > 0).mean() > 0.95


def test_bad_input_is_counted_and_ids_persist(graph):
    node, probe = graph
    diagnostics = DiagnosticsProbe(probe, "object discovery")
    image = np.ascontiguousarray(load_middlebury_motorcycle().left[::2, ::2])

    def expect_drop(cause: str, pixels: np.ndarray, encoding: str = "rgb8") -> None:
        before = diagnostics.dropped(cause)
        assert probe.wait_for(lambda: diagnostics.dropped(cause) > before, timeout=60.0,
                              while_waiting=lambda: send(probe, pixels, encoding), period=5.0), (cause, node.log())
        assert node.alive(), node.log()

    request(probe, node, image)
    before = request(probe, node, image)             # matched twice: published
    expect_drop("no_cut", np.full((120, 160, 3), 77, np.uint8))
    expect_drop("image_too_small", np.full((8, 8, 3), 200, np.uint8))
    expect_drop("unsupported_encoding", np.zeros((32, 32, 2), np.uint8), "yuv422")
    after = request(probe, node, image)
    assert node.alive(), node.log()
    before_ids = sorted(d.id for d in before["detections"].detections)
    after_ids = sorted(d.id for d in after["detections"].detections)
    assert before_ids and after_ids == before_ids     # skipped frames do not end tracks
