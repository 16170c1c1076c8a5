"""Shared fixtures of the fusion tests: devices, dtypes and the Motorcycle scene as depth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = Path(os.environ.get("KESTREL_DATA_DIR", REPO.parent / "shared" / "data"))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every test using it runs on the CPU and, where available, on CUDA."""
    return request.param


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(scope="session")
def motorcycle():
    """``(camera, depth)``: the rectified left camera of Middlebury 2014 Motorcycle and its
    (H, W) float32 ground-truth depth in metres (NaN where unknown)."""
    folder = DATA_ROOT / "stereo" / "motorcycle"
    if not (folder / "motorcycle_disp.npz").exists():
        pytest.skip(f"real test data not found: {folder} (set KESTREL_DATA_DIR)")
    from kestrel_tools.datasets import load_middlebury_motorcycle

    sample = load_middlebury_motorcycle(DATA_ROOT)
    camera, right = sample.left_camera, sample.right_camera
    baseline = float(-right.P[0, 3] / right.P[0, 0])
    doffs = right.cx - camera.cx
    depth = (baseline * camera.fx / (sample.ground_truth + doffs)).astype(np.float32)
    depth[~np.isfinite(depth)] = np.nan
    return camera, depth
