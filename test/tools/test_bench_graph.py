"""``kestrel bench-graph``: its accounting and rate search on synthetic inputs, and one short
real run against the optical_flow node whose JSON must be self-consistent.

No timing is asserted: the machine is shared, so only relations that hold at any speed are.
"""

import json
import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from stereo_msgs.msg import DisparityImage

from kestrel_tools import cli
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph_bench.accounting import achieved_rate, summarize_trial
from kestrel_tools.graph_bench.cdr import read_stamp_ns, with_stamp
from kestrel_tools.graph_bench.inputs import crop_stereo_sample, resize_stereo_sample
from kestrel_tools.graph_bench.params import effective_params, node_ros_args, parse_override
from kestrel_tools.graph_bench.rate_search import RateSearchConfig, find_peak_rate
from kestrel_tools.graph_bench.resources import ResourceSummary
from kestrel_tools.graph_bench.runner import search_start
from kestrel_tools.paths import config_dir

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
MS = 1_000_000


# --------------------------------------------------------------------------- CDR stamps
@pytest.mark.parametrize("message", [
    Image(header=Header(stamp=Time(sec=3, nanosec=7), frame_id="cam"), height=2, width=3,
          encoding="mono8", step=3, data=bytes(range(6))),
    DisparityImage(header=Header(frame_id="left"), f=500.0, t=0.1),
], ids=["Image", "DisparityImage"])
def test_restamping_serialized_bytes_changes_only_the_stamp(message):
    data = serialize_message(message)
    stamp = 1_700_000_123_456_789_012
    patched = with_stamp(data, stamp)
    assert read_stamp_ns(patched) == stamp
    back = deserialize_message(patched, type(message))
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == divmod(stamp, 1_000_000_000)
    expected = deserialize_message(data, type(message))  # float32 fields as read from the wire
    expected.header.stamp = back.header.stamp
    assert back == expected  # every field but the stamp reads back as it was
    # Only the stamp's 8 bytes after the 4-byte encapsulation header differ. (The patched
    # bytes are compared with the bytes they were made from, not with a new serialization:
    # Fast CDR leaves alignment padding uninitialised, so two serializations may differ there.)
    assert len(patched) == len(data)
    assert patched[:4] == data[:4] and patched[12:] == data[12:]


def test_stamp_reading_rejects_what_is_not_cdr():
    with pytest.raises(ValueError):
        read_stamp_ns(b"\x00\x01\x00")
    with pytest.raises(ValueError):
        read_stamp_ns(b"\x07\x07\x00\x00" + bytes(8))


# --------------------------------------------------------------------------- accounting
def test_trial_counts_drops_and_late_answers_per_topic_and_ignores_foreign_stamps():
    sent = [1_000 * MS + i * 100 * MS for i in range(10)]
    latency_a = np.array([5, 7, 9, 11, 13, 15, 17, 19], dtype=float)  # ms, frames 0..7
    arrivals = {
        "a": {stamp: stamp + int(lat * MS) for stamp, lat in zip(sent, latency_a)},
        "b": {sent[0]: sent[0] + 40 * MS, 999: 5_000},  # 999: a late answer of another trial
    }
    deadline = sent[6] + 12 * MS  # frame 6 (17 ms) and 7 (19 ms) answered later
    trial = summarize_trial(10.0, sent, arrivals, deadline_ns=deadline)
    a, b = trial.topics
    assert (a.topic, a.received, a.dropped, a.late) == ("a", 8, 2, 2)
    assert (b.topic, b.received, b.dropped, b.late) == ("b", 1, 9, 0)
    assert a.miss_fraction == pytest.approx(0.4) and a.drop_fraction == pytest.approx(0.2)
    for topic in trial.topics:
        assert topic.received + topic.dropped == trial.sent == 10
    assert a.latency.median_ms == pytest.approx(np.median(latency_a))
    assert a.latency.p90_ms == pytest.approx(np.percentile(latency_a, 90))
    assert a.latency.max_ms == pytest.approx(19.0)
    assert b.latency.median_ms == b.latency.max_ms == pytest.approx(40.0)
    assert trial.drop_fraction == trial.miss_fraction == pytest.approx(0.9)  # the worst topic
    assert summarize_trial(10.0, sent, arrivals).topics[0].late == 0  # no deadline
    assert trial.achieved_rate_hz == pytest.approx(10.0)


def test_a_topic_that_never_answered_has_no_latency():
    trial = summarize_trial(5.0, [1, 2, 3], {"flow": {}})
    (flow,) = trial.topics
    assert (flow.received, flow.dropped, flow.drop_fraction) == (0, 3, 1.0)
    assert np.isnan(flow.latency.median_ms) and np.isnan(flow.latency.max_ms)


def test_achieved_rate_is_frames_over_the_span():
    assert achieved_rate([0, 250 * MS, 500 * MS]) == pytest.approx(4.0)
    assert achieved_rate([7]) == 0.0


def test_resource_summary_of_samples():
    summary = ResourceSummary.of([50.0, 150.0], [100 * 2**20, 300 * 2**20])
    assert (summary.cpu_percent_mean, summary.cpu_percent_max) == (100.0, 150.0)
    assert (summary.rss_mb_mean, summary.rss_mb_max, summary.samples) == (200.0, 300.0, 2)
    assert np.isnan(ResourceSummary.of([], []).rss_mb_max)


# --------------------------------------------------------------------------- rate search
def drops_of_a_node_answering(capacity_hz: float):
    """A node answering at most ``capacity_hz`` frames per second: drop share at a rate."""
    return lambda rate: max(0.0, 1.0 - capacity_hz / rate)


@pytest.mark.parametrize("capacity", [0.9, 3.3, 7.0, 21.0])
def test_rate_search_brackets_the_capacity_within_the_resolution(capacity):
    config = RateSearchConfig(start_hz=2.0, min_hz=0.25, max_hz=60.0, max_drop=0.05,
                              resolution=0.1, max_trials=20)
    result = find_peak_rate(drops_of_a_node_answering(capacity), config)
    limit = capacity / (1 - config.max_drop)  # drops < 5 % exactly below this rate
    assert result.peak_hz < limit <= result.failed_hz
    assert result.failed_hz / result.peak_hz <= 1 + config.resolution
    assert len(result.trials) <= config.max_trials
    assert all((drop < 0.05) == (rate < limit) for rate, drop in result.trials)


def test_rate_search_stops_at_the_ends_of_the_range_and_the_trial_budget():
    config = RateSearchConfig(start_hz=2.0, min_hz=0.5, max_hz=16.0, max_trials=20)
    fast = find_peak_rate(drops_of_a_node_answering(1000.0), config)
    assert (fast.peak_hz, fast.failed_hz) == (16.0, None)
    assert [rate for rate, _ in fast.trials] == [2.0, 4.0, 8.0, 16.0]
    stalled = find_peak_rate(lambda rate: 1.0, config)
    assert (stalled.peak_hz, stalled.failed_hz) == (None, 0.5)
    assert [rate for rate, _ in stalled.trials] == [2.0, 1.0, 0.5]
    short = find_peak_rate(drops_of_a_node_answering(5.0), RateSearchConfig(max_trials=3))
    assert len(short.trials) == 3


def test_the_search_starts_at_the_answered_rate_when_the_fixed_run_dropped():
    sent = list(range(1, 101))
    trial = summarize_trial(10.0, sent, {"x": {s: s for s in sent[:30]}, "y": {s: s for s in sent[:25]}})
    assert search_start(RateSearchConfig(), trial, duration_s=10.0).start_hz == pytest.approx(2.5)
    complete = summarize_trial(10.0, sent, {"x": {s: s for s in sent}})
    assert search_start(RateSearchConfig(start_hz=3.0), complete, 10.0).start_hz == 3.0


def test_rate_search_config_rejects_impossible_ranges():
    with pytest.raises(ValueError):
        RateSearchConfig(start_hz=0.1, min_hz=0.25)
    with pytest.raises(ValueError):
        RateSearchConfig(max_drop=0.0)


# --------------------------------------------------------------------------- parameters, inputs
def test_parameters_come_from_the_file_then_the_overrides_and_qos_is_the_benchmarks():
    path = config_dir() / "stereo_depth.param.yaml"
    params = effective_params(path, ["max_disparity:=64", "lr_check:=false", "method:=opencv"])
    assert params["max_disparity"] == 64 and params["lr_check"] is False
    assert params["method"] == "opencv" and params["p2"] == 110.0
    args = node_ros_args(path, ["max_disparity:=64"], qos_depth=7)
    assert args == ["--params-file", str(path), "-p", "max_disparity:=64",
                    "-p", "qos_reliability:=reliable", "-p", "qos_depth:=7"]
    assert parse_override("sync_slop:=0.02") == ("sync_slop", 0.02)
    for bad in ("qos_depth:=3", "max_disparity=64", ":=3"):
        with pytest.raises(ValueError):
            parse_override(bad)


def test_a_resized_pair_keeps_the_depth_of_every_ground_truth_pixel():
    sample = load_middlebury_motorcycle()
    small = resize_stereo_sample(sample, 320, 216)
    assert small.left.shape[:2] == small.ground_truth.shape == (216, 320)
    assert (small.left_camera.width, small.left_camera.height) == (320, 216)

    def depth(s, d):
        baseline = -s.right_camera.P[0, 3] / s.right_camera.fx
        return s.left_camera.fx * baseline / (d + (s.right_camera.cx - s.left_camera.cx))

    # Z = f * B / (d + doffs) is unchanged by the resize, pixel for pixel (OpenCV's nearest
    # neighbour takes source pixel floor(x / scale)).
    rows = np.floor(np.arange(216) * 500 / 216).astype(int)
    cols = np.floor(np.arange(320) * 741 / 320).astype(int)
    original = depth(sample, sample.ground_truth[np.ix_(rows, cols)])
    resized = depth(small, small.ground_truth)
    known = np.isfinite(original) & np.isfinite(resized)
    assert known.mean() > 0.5
    np.testing.assert_allclose(resized[known], original[known], rtol=1e-4)


def test_a_cropped_pair_keeps_its_geometry_in_the_window():
    sample = load_middlebury_motorcycle()
    window = crop_stereo_sample(sample, 100, 50, 200, 120)
    np.testing.assert_array_equal(window.left, sample.left[50:170, 100:300])
    np.testing.assert_array_equal(window.ground_truth, sample.ground_truth[50:170, 100:300])
    assert window.left_camera.cx == pytest.approx(sample.left_camera.cx - 100)
    assert window.left_camera.cy == pytest.approx(sample.left_camera.cy - 50)
    doffs = sample.right_camera.cx - sample.left_camera.cx
    assert window.right_camera.cx - window.left_camera.cx == pytest.approx(doffs)
    np.testing.assert_allclose(window.right_camera.P[0, 3], sample.right_camera.P[0, 3])
    with pytest.raises(ValueError):
        crop_stereo_sample(sample, 700, 0, 200, 120)


# --------------------------------------------------------------------------- command line
def test_unknown_nodes_and_bad_parameters_end_with_one_line(capsys):
    assert cli.main(["bench-graph", "--node", "no_such_node"]) == 1
    assert cli.main(["bench-graph", "-p", "qos_reliability:=best_effort"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "no_such_node" in err[0] and "optical_flow" in err[0]
    assert "qos_reliability" in err[1]


def check_run_folder(folder, report: dict, markdown: str) -> None:
    """report.md holds the markdown tables and links the plots; results.json is the JSON
    document; the plots are real pictures of the figures' size."""
    import cv2

    results = json.loads((folder / "results.json").read_text())
    assert {k: v for k, v in results.items() if k != "machine"} == \
        {k: v for k, v in report.items() if k != "machine"}
    text = (folder / "report.md").read_text()
    assert markdown.strip() in text
    for name in ("latency.png", "peak_search.png"):
        assert f"![{name}]({name})" in text
        image = cv2.imread(str(folder / name))
        assert image is not None and image.shape == (360, 640, 3), name
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10, f"{name} is blank"


def test_a_short_real_run_against_optical_flow_is_self_consistent(tmp_path, capsys):
    out = tmp_path / "flow.json"
    markdown = tmp_path / "flow.md"
    code = cli.main(["bench-graph", "--node", "optical_flow", "-p", "method:=dis",
                     "-p", "dis_preset:=ultrafast", "--width", "160", "--height", "120",
                     "--rate", "5", "--duration", "1.5", "--peak-start", "4",
                     "--peak-trials", "2", "--trial-duration", "1",
                     "--domain-id", str(DOMAIN), "--json", str(out), "--markdown", str(markdown),
                     "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    check_run_folder(tmp_path / "run", report, markdown.read_text())
    assert report["node"] == "optical_flow" and report["size"] == [160, 120]
    assert report["outputs"] == ["flow", "flow/color", "flow/occlusion"]
    assert report["params"]["dis_preset"] == "ultrafast"
    assert report["qos"] == {"reliability": "reliable", "depth": 5}
    assert "qos_reliability:=reliable" in report["command"]
    assert report["single_frame_ms"] > 0 and report["grace_s"] >= 1.0

    trials = [report["fixed_rate"], *report["peak"]["trials"]]
    assert report["fixed_rate"]["sent"] == max(5, round(5 * 1.5))
    assert len(report["peak"]["trials"]) == 2
    for trial in trials:
        worst = 0.0
        for topic in report["outputs"]:
            figures = trial["topics"][topic]
            assert figures["received"] + figures["dropped"] == trial["sent"]
            assert figures["drop_fraction"] == pytest.approx(figures["dropped"] / trial["sent"])
            assert 0 <= figures["late"] <= figures["received"]
            assert figures["miss_fraction"] == pytest.approx(
                (figures["dropped"] + figures["late"]) / trial["sent"])
            worst = max(worst, figures["miss_fraction"])
            latency = figures["latency_ms"]
            if figures["received"]:
                assert 0 <= latency["median_ms"] <= latency["p90_ms"] <= latency["max_ms"]
            else:
                assert latency["median_ms"] is None
        assert trial["miss_fraction"] == pytest.approx(worst)
        resources = trial["resources"]
        if resources["samples"]:
            assert resources["cpu_percent_mean"] >= 0
            assert 0 < resources["rss_mb_mean"] <= resources["rss_mb_max"]
    # The peak is the fastest trial under the drop threshold, the failure the slowest above.
    peak = report["peak"]
    passed = [t["rate_hz"] for t in peak["trials"] if t["miss_fraction"] < peak["max_drop"]]
    failed = [t["rate_hz"] for t in peak["trials"] if t["miss_fraction"] >= peak["max_drop"]]
    assert peak["peak_hz"] == (max(passed) if passed else None)
    assert peak["failed_hz"] == (min(failed) if failed else None)
    table = markdown.read_text()
    assert f"({report['fixed_rate']['sent']} frames sent" in table
    for topic in report["outputs"]:
        figures = report["fixed_rate"]["topics"][topic]
        assert f"| `{topic}` | {figures['received']} | {figures['dropped']} (" in table
