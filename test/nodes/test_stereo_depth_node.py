"""The stereo_depth node as a real process, fed real stereo pairs over DDS.

Accuracy is checked against the Middlebury ground truth and against OpenCV SGBM computed
here on the same pair; every kind of bad input must be reported on /diagnostics while the
node keeps answering good pairs.
"""

import os

import numpy as np
import pytest

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_core.stereo import OpenCVSGBMConfig, opencv_sgbm_disparity
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.conversions.pointcloud2 import pointcloud2_to_array, rgb_float_to_uint8, xyz_array
from kestrel_tools.datasets import load_middlebury_motorcycle, rectified_pair_cameras
from kestrel_tools.graph import DiagnosticsProbe, GraphProbe, NodeProcess
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.stereo_client import StereoTopicClient

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
MAX_DISPARITY = 128


@pytest.fixture(scope="module")
def motorcycle():
    return load_middlebury_motorcycle()


def start_node(*params: str, namespace: str = "") -> NodeProcess:
    ros_args = ["-p", "qos_reliability:=reliable", "-p", "diagnostics_period:=0.2"]
    if namespace:
        ros_args += ["-r", f"__ns:={namespace}"]
    for param in params:
        ros_args += ["-p", param]
    return NodeProcess("stereo_depth", ros_args, domain_id=DOMAIN)


def connected_client(probe: GraphProbe, node: NodeProcess, want_points: bool,
                     namespace: str = "") -> StereoTopicClient:
    client = StereoTopicClient(probe, want_points=want_points, namespace=namespace)
    assert probe.wait_for_subscribers(client.input_topics, timeout=60.0), node.log()
    return client


def test_motorcycle_over_dds_beats_opencv_and_depth_follows_the_calibration(motorcycle):
    left_camera, right_camera = motorcycle.left_camera, motorcycle.right_camera
    # Run namespaced, as on a robot: stereo_depth --ros-args -r __ns:=/robot -p ...
    with start_node(f"max_disparity:={MAX_DISPARITY}", namespace="/robot") as node, \
            GraphProbe("stereo_test_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node, want_points=True, namespace="/robot")
        reply = client.request(motorcycle.left, motorcycle.right, left_camera, right_camera)
        assert node.alive(), node.log()

    doffs = right_camera.cx - left_camera.cx
    published = reply.disparity
    disparity = published - np.float32(doffs)

    # Accuracy: at least as good as OpenCV SGBM (3-way) at the same maximum disparity,
    # invalid pixels counted as errors.
    node_scores = stereo_metrics(disparity, motorcycle.ground_truth)
    opencv = opencv_sgbm_disparity(motorcycle.left, motorcycle.right,
                                   OpenCVSGBMConfig(max_disparity=MAX_DISPARITY))
    opencv_scores = stereo_metrics(opencv, motorcycle.ground_truth)
    assert node_scores["bad2"] <= opencv_scores["bad2"], (node_scores, opencv_scores)
    assert node_scores["density"] > 0.7

    # DisparityImage: Z = f * t / d for the published (doffs-shifted) values.
    msg = reply.disparity_msg
    baseline = -right_camera.P[0, 3] / right_camera.P[0, 0]
    assert msg.f == pytest.approx(left_camera.fx)
    assert msg.t == pytest.approx(baseline)
    assert msg.header.frame_id == left_camera.frame_id
    assert msg.min_disparity == pytest.approx(doffs)
    assert msg.max_disparity == pytest.approx(MAX_DISPARITY - 1 + doffs)

    # Depth image: Z = f * B / (d + doffs), NaN exactly where the disparity is invalid.
    valid = np.isfinite(disparity)
    np.testing.assert_array_equal(np.isfinite(reply.depth), valid)
    expected_depth = left_camera.fx * baseline / (disparity[valid] + doffs)
    np.testing.assert_allclose(reply.depth[valid], expected_depth, rtol=1e-5)

    # Points: organized like the image, back-projected through the left camera, coloured
    # by the left image.
    cloud = pointcloud2_to_array(reply.points)
    assert cloud.shape == disparity.shape
    xyz = xyz_array(cloud)
    v, u = np.nonzero(valid)
    z = reply.depth[v, u]
    np.testing.assert_allclose(xyz[v, u, 2], z, rtol=1e-5)
    np.testing.assert_allclose(xyz[v, u, 0], (u - left_camera.cx) * z / left_camera.fx,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xyz[v, u, 1], (v - left_camera.cy) * z / left_camera.fy,
                               rtol=1e-4, atol=1e-5)
    colours = rgb_float_to_uint8(cloud["rgb"][v, u])
    np.testing.assert_array_equal(colours, motorcycle.left[v, u])


# --------------------------------------------------------------------------- bad input
def small_pair(motorcycle, width=240, height=160):
    """A crop of Motorcycle with its own (consistent) calibration and ground truth."""
    top, left_col = 170, 300
    crop = (slice(top, top + height), slice(left_col, left_col + width))
    left_cam, right_cam = motorcycle.left_camera, motorcycle.right_camera
    cams = rectified_pair_cameras(width, height, left_cam.fx, left_cam.fy, left_cam.cx - left_col,
                                  left_cam.cy - top, -right_cam.P[0, 3] / right_cam.fx,
                                  right_cam.cx - left_cam.cx)
    # The crop only sees disparities whose matches stay inside it; GT is kept for scoring.
    return (np.ascontiguousarray(motorcycle.left[crop]), np.ascontiguousarray(motorcycle.right[crop]),
            cams, motorcycle.ground_truth[crop])


def with_zero_baseline(camera: PinholeCamera) -> PinholeCamera:
    P = camera.P.copy()
    P[0, 3] = 0.0
    return PinholeCamera(camera.width, camera.height, camera.K, camera.D, camera.R, P,
                         camera.distortion_model, camera.frame_id)


def test_bad_input_is_reported_and_skipped_while_the_node_keeps_running(motorcycle):
    left, right, (left_cam, right_cam), truth = small_pair(motorcycle)
    with start_node("max_disparity:=64") as node, \
            GraphProbe("stereo_bad_input_probe", domain_id=DOMAIN) as probe:
        client = connected_client(probe, node, want_points=False)
        diagnostics = DiagnosticsProbe(probe, "stereo depth")

        def expect_drop(cause: str, make_messages) -> None:
            before = diagnostics.dropped(cause)

            def send():
                client.publish(*make_messages(client.next_stamp()))

            assert probe.wait_for(lambda: diagnostics.dropped(cause) > before, timeout=60.0,
                                  while_waiting=send, period=3.0), (cause, node.log())
            assert node.alive(), node.log()

        def good(stamp, l_cam=left_cam, r_cam=right_cam, l=left, r=right, encoding="rgb8"):
            return client.messages_for(l, r, l_cam, r_cam, stamp, encoding)

        # No CameraInfo has been sent yet.
        expect_drop("missing_camera_info", lambda s: (*good(s)[:2], None, None))
        # Zero baseline in the right CameraInfo.
        expect_drop("invalid_calibration", lambda s: good(s, r_cam=with_zero_baseline(right_cam)))
        assert "baseline" in diagnostics.latest().message
        # Left and right of different sizes.
        expect_drop("size_mismatch", lambda s: good(s, r=np.ascontiguousarray(right[:, :-8])))
        # An encoding stereo matching does not take.
        expect_drop("unsupported_encoding", lambda s: good(
            s, l=left[:, :, :2].copy(), r=right[:, :, :2].copy(), encoding="yuv422"))
        # NaN in float images.
        gray_l = left.mean(axis=2).astype(np.float32)
        gray_r = right.mean(axis=2).astype(np.float32)
        gray_l[10:20, 10:20] = np.nan
        expect_drop("non_finite_pixels", lambda s: good(s, l=gray_l, r=gray_r, encoding="32FC1"))
        # CameraInfo that does not describe these images.
        small_l, small_r = rectified_pair_cameras(120, 80, 100.0, 100.0, 60.0, 40.0, 0.1)
        expect_drop("camera_info_mismatch", lambda s: good(s, l_cam=small_l, r_cam=small_r))

        # After all that, a good pair is answered accurately.
        reply = client.request(left, right, left_cam, right_cam)
        doffs = right_cam.cx - left_cam.cx
        disparity = reply.disparity - np.float32(doffs)
        valid = np.isfinite(disparity) & np.isfinite(truth)
        assert valid.mean() > 0.5
        assert np.median(np.abs(disparity[valid] - truth[valid])) < 1.0

        # A pair stamped before the last processed one is dropped as out of order.
        late_stamp = client.next_stamp()
        late_stamp.sec -= 100
        expect_drop("out_of_order_stamp", lambda s: good(late_stamp))
        assert node.alive(), node.log()


def test_invalid_parameter_exits_with_a_reason():
    with start_node("method:=magic") as node:
        assert node.process.wait(timeout=60) == 2
    assert "method='magic' is not one of sgm, opencv" in node.log()
