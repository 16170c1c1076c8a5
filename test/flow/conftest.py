"""Shared fixtures of the optical-flow, warping and loss tests: devices and real images."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("KESTREL_DATA_DIR", REPO.parent / "shared" / "data")) / "stereo" / "motorcycle"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every flow test runs torch with one CPU thread (restored afterwards). The flows run
    a few hundred small operations each; on a CPU shared with other busy processes, two
    threads wait for each other at every one and the tests take up to ten times longer.
    Results do not depend on the thread count beyond float rounding."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every test using it runs on the CPU and, where available, on CUDA."""
    return request.param


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found: {path} (set KESTREL_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def motorcycle_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Middlebury 2014 Motorcycle: left and right RGB uint8 images and the (H, W) float32
    ground-truth disparity (non-finite = unknown)."""
    left = cv2.cvtColor(cv2.imread(str(_require(DATA / "motorcycle_left.png"))), cv2.COLOR_BGR2RGB)
    right = cv2.cvtColor(cv2.imread(str(_require(DATA / "motorcycle_right.png"))), cv2.COLOR_BGR2RGB)
    disparity = np.load(_require(DATA / "motorcycle_disp.npz"))["arr_0"].astype(np.float32)
    return left, right, disparity


@pytest.fixture(scope="session")
def real_crop() -> np.ndarray:
    """A 256x256 grey uint8 crop of the Motorcycle left image (engine, wheel and
    background: strong texture, edges and some flat areas)."""
    gray = cv2.imread(str(_require(DATA / "motorcycle_left.png")), cv2.IMREAD_GRAYSCALE)
    crop = np.ascontiguousarray(gray[120:376, 240:496])
    assert crop.shape == (256, 256)
    return crop



@pytest.fixture(scope="session")
def vtest_frames() -> tuple[np.ndarray, np.ndarray]:
    """Frames 100 and 101 of OpenCV's vtest.avi (a real walkway video), grey uint8,
    halved to 384x288 to keep the tests fast."""
    path = _require(DATA.parents[1] / "frames" / "vtest.avi")
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    frames = []
    for _ in range(2):
        ok, frame = capture.read()
        assert ok, f"cannot read {path}"
        frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (384, 288), interpolation=cv2.INTER_AREA))
    capture.release()
    return frames[0], frames[1]
