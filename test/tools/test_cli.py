"""The `kestrel` command line as a user runs it: a real subprocess on real images."""

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from kestrel_core.stereo import OpenCVSGBMConfig, SGMConfig, compute_disparity, opencv_sgbm_disparity
from kestrel_tools.paths import data_dir
from kestrel_tools.graph import find_executable
from kestrel_tools.image_io import read_image
from kestrel_tools.metrics import stereo_metrics

PAIR = data_dir() / "stereo" / "motorcycle"
LEFT, RIGHT = PAIR / "motorcycle_left.png", PAIR / "motorcycle_right.png"


def kestrel(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable("kestrel"), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("method", ["sgm", "opencv"])
def test_stereo_writes_the_same_disparity_as_the_core(tmp_path: Path, method: str):
    out = tmp_path / "d.npy"
    result = kestrel("stereo", LEFT, RIGHT, "--out", out, "--max-disparity", 64,
                     "--method", method, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    disparity = np.load(out)
    assert disparity.shape == (500, 741) and disparity.dtype == np.float32
    left, right = read_image(LEFT), read_image(RIGHT)
    if method == "sgm":
        expected = compute_disparity(left, right, SGMConfig(max_disparity=64), "cpu").disparity.numpy()
    else:
        expected = opencv_sgbm_disparity(left, right, OpenCVSGBMConfig(max_disparity=64))
    np.testing.assert_array_equal(disparity, expected)
    truth = np.load(PAIR / "motorcycle_disp.npz")["arr_0"]
    truth[~np.isfinite(truth)] = np.nan
    assert stereo_metrics(disparity, truth)["bad2"] < 0.35


@pytest.mark.parametrize(
    "args, reason",
    [
        (["stereo", "missing.png", RIGHT, "--out", "x.npy"], "no such image file: missing.png"),
        (["stereo", LEFT, RIGHT, "--out", "x.txt"], "--out must end in .npy"),
        (["stereo", LEFT, RIGHT, "--out", "x.npy", "--method", "magic"], "invalid choice: 'magic'"),
        (["stereo", LEFT, RIGHT, "--out", "x.npy", "--device", "tpu"], "unknown device 'tpu'"),
        (["stereo", LEFT, RIGHT, "--out", "x.npy", "--max-disparity", "0"], "max_disparity"),
        (["stereo", LEFT, __file__, "--out", "x.npy"], "cannot decode image file"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(tmp_path: Path, args, reason):
    result = subprocess.run([find_executable("kestrel"), *map(str, args)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0]


def test_mismatched_pair_is_refused(tmp_path: Path):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), read_image(RIGHT)[:100, :100])
    result = kestrel("stereo", LEFT, small, "--out", tmp_path / "d.npy")
    assert result.returncode != 0
    assert "741x500" in result.stderr or "(500, 741" in result.stderr
