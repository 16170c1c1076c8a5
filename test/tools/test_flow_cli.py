"""`kestrel flow` as a user runs it: a real subprocess on real images."""

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from kestrel_core.flow import LKConfig, dense_lucas_kanade, flow_epe, flow_to_color, opencv_dis_flow
from kestrel_tools.paths import data_dir
from kestrel_tools.graph import find_executable
from kestrel_tools.image_io import read_image

LEFT = data_dir() / "stereo" / "motorcycle" / "motorcycle_left.png"
SHIFT = (3, -2)  # (dx, dy) of the second frame's content, pixels


def kestrel(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable("kestrel"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> tuple[Path, Path]:
    """A 160x120 crop of Motorcycle and the same crop moved by exactly SHIFT, as PNG files."""
    image = read_image(LEFT)
    dx, dy = SHIFT
    top, left, height, width = 200, 300, 120, 160
    first = image[top:top + height, left:left + width]
    second = image[top - dy:top - dy + height, left - dx:left - dx + width]
    folder = tmp_path_factory.mktemp("flow_frames")
    paths = folder / "first.png", folder / "second.png"
    for path, rgb in zip(paths, (first, second)):
        assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return paths


@pytest.mark.parametrize("method", ["lk", "dis"])
def test_flow_writes_the_same_flow_as_the_core(tmp_path: Path, frames, method: str):
    first_path, second_path = frames
    out, color = tmp_path / "f.npy", tmp_path / "f.png"
    result = kestrel("flow", first_path, second_path, "--out", out, "--method", method,
                     "--device", "cpu", "--color", color)
    assert result.returncode == 0, result.stderr
    flow = np.load(out)
    assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
    first, second = read_image(first_path), read_image(second_path)
    if method == "lk":
        expected = dense_lucas_kanade(first, second, LKConfig(), "cpu").permute(1, 2, 0).numpy()
    else:
        expected = opencv_dis_flow(first, second, "medium")
    np.testing.assert_array_equal(flow, expected)
    interior = (slice(10, -10), slice(10, -10))
    truth = np.broadcast_to(np.float32(SHIFT), flow.shape)
    assert flow_epe(flow[interior], truth[interior]) < 0.25
    np.testing.assert_array_equal(read_image(color), flow_to_color(flow))


@pytest.mark.parametrize(
    "args, reason",
    [
        (["flow", "missing.png", LEFT, "--out", "x.npy"], "no such image file: missing.png"),
        (["flow", LEFT, LEFT, "--out", "x.txt"], "--out must end in .npy"),
        (["flow", LEFT, LEFT, "--out", "x.npy", "--color", "c.jpg"], "--color must end in .png"),
        (["flow", LEFT, LEFT, "--out", "x.npy", "--method", "lk", "--model", "m.pt"],
         "--model is only used with --method learned"),
        (["flow", LEFT, LEFT, "--out", "x.npy", "--method", "learned", "--model", "m.pt"],
         "no such flow model file: m.pt"),
        (["flow", LEFT, LEFT, "--out", "x.npy", "--method", "fancy"], "invalid choice: 'fancy'"),
        (["flow", LEFT, LEFT, "--out", "x.npy", "--device", "tpu"], "unknown device 'tpu'"),
        (["flow", LEFT, __file__, "--out", "x.npy"], "cannot decode image file"),
        (["flow", LEFT, "second.png", "--out", "x.npy"], "differ in size"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(tmp_path: Path, args, reason):
    if "second.png" in args:  # a readable image of another size
        assert cv2.imwrite(str(tmp_path / "second.png"), np.zeros((40, 50, 3), np.uint8))
    result = kestrel(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0], lines[0]
    assert not (tmp_path / "x.npy").exists()
