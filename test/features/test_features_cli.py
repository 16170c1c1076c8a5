"""`kestrel features`: a real subprocess writing the documented .npz; further cases call the
same entry point in-process to keep the test fast."""

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from features_cases import small_backbone
from kestrel_core.features.checkpoint import load_checkpoint_model, save_checkpoint
from kestrel_core.features.model import rgb_to_batch
from kestrel_tools.cli import main
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.graph import find_executable
from kestrel_tools.image_io import read_image


def kestrel(*args) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable("kestrel"), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A 150x203 crop of Motorcycle as PNG and a small ViT checkpoint."""
    folder = tmp_path_factory.mktemp("features_cli")
    image_path, model_path = folder / "crop.png", folder / "tiny.pt"
    crop = load_middlebury_motorcycle().left[120:270, 300:503]
    assert cv2.imwrite(str(image_path), cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
    save_checkpoint(model_path, small_backbone("vit_tiny", seed=1), {"model_id": "tiny-test"})
    return image_path, model_path


def check_npz(out: Path, height: int, width: int) -> dict[str, np.ndarray]:
    data = dict(np.load(out))
    assert set(data) == {"features", "stride", "embedding", "model_id", "input_size"}
    assert tuple(data["input_size"]) == (height, width)
    assert int(data["stride"]) == 16 and str(data["model_id"]) == "tiny-test"
    assert data["features"].dtype == np.float32 and data["embedding"].dtype == np.float32
    assert data["features"].shape == (192, height // 16, width // 16)
    assert data["embedding"].shape == (192,)
    return data


def test_features_writes_the_documented_npz(tmp_path: Path, inputs):
    image_path, model_path = inputs
    out = tmp_path / "f.npz"
    result = kestrel("features", image_path, "--out", out, "--model", model_path, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    data = check_npz(out, 150, 203)
    model = load_checkpoint_model(model_path)
    batch = rgb_to_batch(read_image(image_path))
    np.testing.assert_allclose(data["features"], model.dense(batch)[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data["embedding"], model.embedding(batch)[0].numpy(), rtol=1e-5, atol=1e-5)


def test_size_resizes_the_shorter_side(tmp_path: Path, inputs):
    image_path, model_path = inputs
    out = tmp_path / "f.npz"
    assert main(["features", str(image_path), "--out", str(out), "--model", str(model_path), "--size", "64"]) == 0
    check_npz(out, 64, round(203 * 64 / 150))


@pytest.mark.parametrize("case, reason", [("suffix", ".npz"), ("model", "not found"), ("size", "--size")])
def test_features_errors_are_one_line_with_a_nonzero_exit(tmp_path: Path, inputs, capsys, case, reason):
    image_path, model_path = inputs
    out = tmp_path / ("f.npy" if case == "suffix" else "f.npz")
    model = tmp_path / "none.pt" if case == "model" else model_path
    size = ["--size", "0"] if case == "size" else []
    assert main(["features", str(image_path), "--out", str(out), "--model", str(model), *size]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and lines[0].startswith("kestrel features: error:")
    assert not out.exists()
