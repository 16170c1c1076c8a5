"""``kestrel eval``: the trajectory target and the bag target share one command; damaged bags
fail with one line; recorded predictions are scored by stamp."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kestrel_ros.conversions.image import image_to_numpy
from kestrel_tools.bags import BagWriter, open_bag
from kestrel_tools.cli import main
from kestrel_tools.evaluation.runner import evaluate_bag
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import messages, topics

FR1_XYZ = data_dir() / "trajectories" / "freiburg1_xyz-groundtruth.txt"


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_trajectory_target_still_reads_files(capsys):
    code, out, _ = run(capsys, "eval", "trajectory", FR1_XYZ, FR1_XYZ)
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["ate_rmse"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("explicit", [False, True])
def test_any_other_first_word_is_a_bag(capsys, sample_bag, tmp_path, explicit):
    out_dir = tmp_path / "report"
    words = ["eval", *(["bag"] if explicit else []), sample_bag, "--task", "trajectory",
             "--out", out_dir]
    code, out, err = run(capsys, *words)
    assert code == 0, err
    saved = json.loads((out_dir / "results.json").read_text())
    direct = evaluate_bag(sample_bag, ["trajectory"])[0]
    assert saved["tasks"]["trajectory"]["summary"]["ate_se3"] == pytest.approx(
        direct.summary["ate_se3"])
    assert "| trajectory | ate_se3 |" in out and f"report: {out_dir / 'report.md'}" in out


def test_missing_bag_and_missing_topic_fail_with_one_line(capsys, sample_bag, tmp_path):
    code, _, err = run(capsys, "eval", tmp_path / "nothing", "--task", "stereo")
    assert code == 1 and err.count("\n") == 1 and "no such bag" in err
    code, _, err = run(capsys, "eval", sample_bag, "--task", "trajectory",
                       "--trajectory-topic", "/odom", "--out", tmp_path / "r")
    assert code == 1 and err.count("\n") == 1 and "/odom is not in the bag" in err


def test_truncated_bag_fails_with_file_and_offset(capsys, sample_bag, tmp_path):
    source = next(sample_bag.glob("*.mcap"))
    damaged = tmp_path / "damaged.mcap"
    data = source.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "eval", damaged, "--task", "stereo", "--out", tmp_path / "r")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(damaged) in lines[0]
    assert re.search(r"at byte \d+", lines[0]) and "task stereo" in lines[0]
    assert not (tmp_path / "r" / "report.md").exists()


def write_predictions(bag_path, out, shift: float) -> np.ndarray:
    """A bag with the ground truth (+ doffs + shift) as the DisparityImage a node would send."""
    with open_bag(bag_path) as bag:
        gt = next(bag.messages(topics.GT_DISPARITY)).msg
        left, right = (next(bag.messages(t)).msg for t in (topics.LEFT_INFO, topics.RIGHT_INFO))
    doffs = right.k[2] - left.k[2]
    truth = np.array(image_to_numpy(gt))
    stamp = gt.header.stamp.sec * 10**9 + gt.header.stamp.nanosec
    with BagWriter(out, "sqlite3") as writer:
        writer.add_topic("/stereo/disparity", "stereo_msgs/msg/DisparityImage")
        store = writer.types.store
        roi = store.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
        image = messages.image(store, stamp, gt.header.frame_id,
                               (truth + np.float32(doffs + shift)).astype(np.float32))
        msg = store.types["stereo_msgs/msg/DisparityImage"](
            header=messages.header(store, stamp, gt.header.frame_id), image=image, f=100.0,
            t=0.1, valid_window=roi, min_disparity=float(doffs), max_disparity=200.0,
            delta_d=0.0625)
        writer.write("/stereo/disparity", stamp + 5_000_000, msg)
    return truth


def test_recorded_disparities_are_scored_against_the_ground_truth(sample_bag, tmp_path, capsys):
    predictions = tmp_path / "recorded"
    write_predictions(sample_bag, predictions, shift=0.5)
    code, out, err = run(capsys, "eval", sample_bag, "--task", "trajectory", "--predictions",
                         predictions, "--out", tmp_path / "r")
    assert code == 0, err
    scores = json.loads((tmp_path / "r" / "results.json").read_text())["tasks"]["predictions"]
    summary = scores["summary"]
    assert summary["frames"] == 1 and summary["recorded"] == 1
    assert summary["epe"] == pytest.approx(0.5, abs=1e-4)
    assert summary["bad1"] == 0.0 and summary["density"] == 1.0
