"""The optical_flow node as a real process, fed real frames over DDS.

The flow it publishes must equal what the core computes offline on the same frames (same
method and settings) and be accurate against ground truth: Middlebury Motorcycle's left ->
right flow ``(-d, 0)``, and an exact integer shift of a real image. Bad input must be
reported on /diagnostics while the node keeps answering good frames.
"""

import itertools
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from kestrel_core.flow import FlowEstimator, LKConfig, dense_lucas_kanade, flow_epe, opencv_dis_flow
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
FRAME_ID = "camera_optical_frame"
OUTPUTS = ("flow", "flow/color", "flow/occlusion")


@pytest.fixture(scope="module")
def motorcycle():
    return load_middlebury_motorcycle()


def start_node(*params: str) -> NodeProcess:
    ros_args = ["-p", "qos_reliability:=reliable", "-p", "diagnostics_period:=0.2",
                "-p", "device:=cpu"]
    for param in params:
        ros_args += ["-p", param]
    return NodeProcess("optical_flow", ros_args, domain_id=DOMAIN)


class FlowTopicClient:
    """Publishes frames on ``image`` and collects the node's answers by stamp."""

    def __init__(self, probe: GraphProbe, want_occlusion: bool = True) -> None:
        self.probe = probe
        self.outputs = OUTPUTS if want_occlusion else OUTPUTS[:2]
        probe.publisher(Image, "image")
        for topic in OUTPUTS:
            probe.subscribe(Image, topic)
        self._stamps = itertools.count(1)

    def next_stamp(self) -> Time:
        return Time(sec=1_000 + next(self._stamps), nanosec=0)

    def send(self, pixels: np.ndarray, stamp: Time, encoding: str | None = None) -> None:
        if encoding is None:
            encoding = "mono8" if pixels.ndim == 2 else "rgb8"
        header = Header(stamp=stamp, frame_id=FRAME_ID)
        self.probe.publisher(Image, "image").publish(numpy_to_image(pixels, encoding, header=header))

    def reply_for(self, stamp: Time) -> dict[str, Image] | None:
        key = time_ns(stamp)
        found = {topic: msg for topic in self.outputs
                 for msg in self.probe.received.get(topic, []) if stamp_ns(msg) == key}
        return found if len(found) == len(self.outputs) else None

    def request(self, first: np.ndarray, second: np.ndarray, timeout: float = 60.0,
                resend_period: float = 10.0) -> dict[str, Image]:
        """Send ``first`` then ``second`` (fresh stamps) until the flow stamped with
        ``second``'s stamp arrives; return the messages published for it."""
        seconds: list[Time] = []

        def send_pair() -> None:
            self.send(first, self.next_stamp())
            seconds.append(self.next_stamp())
            self.send(second, seconds[-1])

        def answered() -> bool:
            return any(self.reply_for(stamp) is not None for stamp in seconds)

        assert self.probe.wait_for(answered, timeout, while_waiting=send_pair,
                                   period=resend_period), f"no flow within {timeout} s"
        reply = next(r for stamp in seconds if (r := self.reply_for(stamp)) is not None)
        reply["stamp"] = next(s for s in seconds if self.reply_for(s) is not None)
        return reply


def connected_client(probe: GraphProbe, node: NodeProcess, want_occlusion: bool = True):
    client = FlowTopicClient(probe, want_occlusion)
    assert probe.wait_for_subscribers(["image"], timeout=60.0), node.log()
    return client


def shifted_pair(image: np.ndarray, dx: int, dy: int, width: int, height: int,
                 top: int = 200, left: int = 300):
    """Two crops of ``image``: the second is the first moved by exactly (dx, dy) pixels,
    so the true flow first -> second is (dx, dy) everywhere (new content at the borders)."""
    first = image[top:top + height, left:left + width]
    second = image[top - dy:top - dy + height, left - dx:left - dx + width]
    return np.ascontiguousarray(first), np.ascontiguousarray(second)


def test_motorcycle_left_to_right_flow_equals_the_core_and_follows_ground_truth(motorcycle):
    crop = (slice(200, 440), slice(100, 420))  # 320 x 240
    first = np.ascontiguousarray(motorcycle.left[crop])
    second = np.ascontiguousarray(motorcycle.right[crop])
    disparity = motorcycle.ground_truth[crop]
    truth = np.stack([-disparity, np.zeros_like(disparity)], axis=-1)
    known = np.isfinite(disparity)

    with start_node("method:=dis", "dis_preset:=medium", "occlusion_check:=true") as node, \
            GraphProbe("flow_test_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node)
        reply = client.request(first, second)
        assert node.alive(), node.log()

    flow_msg = reply["flow"]
    assert flow_msg.encoding == "32FC2"
    assert (flow_msg.height, flow_msg.width) == (240, 320)
    assert flow_msg.header.stamp == reply["stamp"]  # the current (second) frame's stamp
    assert flow_msg.header.frame_id == FRAME_ID
    flow = image_to_numpy(flow_msg)
    assert flow.shape == (240, 320, 2) and flow.dtype == np.float32

    # Exactly the core's flow on the same frames and settings.
    expected = opencv_dis_flow(first, second, "medium")
    np.testing.assert_allclose(flow, expected, atol=1e-3, rtol=0)

    # Accuracy against ground truth (offline DIS medium on this crop: EPE 2.15 px over all
    # known pixels, 0.88 px over those the forward-backward check keeps).
    assert flow_epe(flow, truth, known) < 3.0

    color = reply["flow/color"]
    assert color.encoding == "rgb8" and (color.height, color.width) == (240, 320)
    assert color.header.stamp == reply["stamp"]
    assert image_to_numpy(color).shape == (240, 320, 3)

    occlusion_msg = reply["flow/occlusion"]
    assert occlusion_msg.encoding == "mono8" and occlusion_msg.header.stamp == reply["stamp"]
    occluded = image_to_numpy(occlusion_msg)
    assert occluded.shape == (240, 320)
    assert set(np.unique(occluded)) <= {0, 255}
    kept = known & (occluded == 0)
    assert 0.3 < kept.mean() < 0.95
    # The check removes the worst pixels: what it keeps is much more accurate.
    assert flow_epe(flow, truth, kept) < 1.5
    assert flow_epe(flow, truth, kept) < 0.6 * flow_epe(flow, truth, known)


def test_bad_input_is_reported_and_skipped_while_the_node_keeps_running(motorcycle):
    lk = LKConfig(levels=2, window=9, iterations=3)
    dx, dy = 3, -2
    first, second = shifted_pair(motorcycle.left, dx, dy, 160, 120)
    small_first, small_second = shifted_pair(motorcycle.left, dx, dy, 120, 96)
    interior = (slice(8, -8), slice(8, -8))

    def check_lk(reply, a, b):
        flow = image_to_numpy(reply["flow"])
        expected = dense_lucas_kanade(a, b, lk, "cpu").permute(1, 2, 0).numpy()
        np.testing.assert_allclose(flow, expected, atol=1e-3, rtol=0)
        truth = np.broadcast_to(np.float32([dx, dy]), flow.shape)
        assert flow_epe(flow[interior], truth[interior]) < 0.1

    with start_node("method:=lk", "pyramid_levels:=2", "window:=9", "iterations:=3",
                    "occlusion_check:=false") as node, \
            GraphProbe("flow_bad_input_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node, want_occlusion=False)
        diagnostics = DiagnosticsProbe(probe, "optical flow")

        def expect_drop(cause: str, send) -> None:
            before = diagnostics.dropped(cause)
            assert probe.wait_for(lambda: diagnostics.dropped(cause) > before, timeout=30.0,
                                  while_waiting=send, period=3.0), (cause, node.log())
            assert node.alive(), node.log()

        check_lk(client.request(first, second), first, second)

        # A change of resolution restarts the stream; the next pair is answered.
        expect_drop("stream_reset", lambda: client.send(small_first, client.next_stamp()))
        check_lk(client.request(small_first, small_second), small_first, small_second)

        # A stamp that goes backwards is dropped.
        late = client.next_stamp()
        late.sec -= 100
        expect_drop("out_of_order_stamp", lambda: client.send(small_second, late))
        # An encoding flow does not take, and NaN in a float image.
        yuv = np.ascontiguousarray(small_first[:, :, :2])
        expect_drop("unsupported_encoding", lambda: client.send(yuv, client.next_stamp(), "yuv422"))
        gray = small_first.mean(axis=2).astype(np.float32)
        gray[5:9, 5:9] = np.nan
        expect_drop("non_finite_pixels", lambda: client.send(gray, client.next_stamp(), "32FC1"))
        assert diagnostics.dropped("stream_reset") >= 1

        # Still answering, accurately.
        check_lk(client.request(small_first, small_second), small_first, small_second)
        assert node.alive(), node.log()


def test_learned_method_runs_the_loaded_model_and_is_accurate(motorcycle):
    """The shipped model (model_path empty), over DDS, equals the core offline and follows the
    Motorcycle ground truth (on this crop it measured 8.3 px against 44.3 px for no motion and
    2.15 px for DIS medium; see kestrel_core/weights/flow_small.md)."""
    crop = (slice(200, 440), slice(100, 420))  # 320 x 240
    first = np.ascontiguousarray(motorcycle.left[crop])
    second = np.ascontiguousarray(motorcycle.right[crop])
    disparity = motorcycle.ground_truth[crop]
    truth = np.stack([-disparity, np.zeros_like(disparity)], axis=-1)
    known = np.isfinite(disparity)

    with start_node("method:=learned", "occlusion_check:=false") as node, \
            GraphProbe("flow_learned_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node, want_occlusion=False)
        reply = client.request(first, second, timeout=120.0, resend_period=30.0)
        assert node.alive(), node.log()

    flow = image_to_numpy(reply["flow"])
    expected = FlowEstimator("learned", "cpu")(first, second, "cpu")
    np.testing.assert_allclose(flow, expected, atol=1e-3, rtol=0)
    no_motion_epe = flow_epe(np.zeros_like(flow), truth, known)
    assert flow_epe(flow, truth, known) < 0.3 * no_motion_epe


def test_learned_method_with_a_missing_model_exits_with_a_reason(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with start_node("method:=learned", f"model_path:={missing}") as node:
        assert node.process.wait(timeout=60) == 2
    assert f"no such flow model file: {missing}" in node.log()


def test_switching_to_learned_at_run_time_is_refused_with_the_reason():
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    with start_node("method:=dis") as node, \
            GraphProbe("flow_switch_probe", domain_id=DOMAIN) as probe:
        client = probe.node.create_client(SetParameters, "/optical_flow/set_parameters")
        assert client.wait_for_service(timeout_sec=60.0), node.log()
        request = SetParameters.Request(
            parameters=[Parameter("method", value="learned").to_parameter_msg()])
        future = client.call_async(request)
        assert probe.wait_for(future.done, timeout=60.0), node.log()
        result = future.result().results[0]
        assert not result.successful
        assert "loads its model at start-up" in result.reason
        assert node.alive(), node.log()
