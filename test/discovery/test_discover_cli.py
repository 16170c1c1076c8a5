"""`kestrel discover` as a user runs it: a real subprocess on image files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import torch

from kestrel_core.discovery import DiscoveryConfig, MaskCutConfig, discover_objects
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_tools.cli import main as cli_main
from kestrel_tools.graph import find_executable
from kestrel_tools.image_io import read_image
from kestrel_tools.paths import data_dir

LEFT = data_dir() / "stereo" / "motorcycle" / "motorcycle_left.png"


def kestrel(*args) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable("kestrel"), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return path


def test_discover_writes_what_the_core_computes(tmp_path: Path, tiny_checkpoint: str):
    image = read_image(LEFT)[100:292, 200:456]                          # 256x192 crop
    source = write_png(tmp_path / "crop.png", image)
    out, overlay = tmp_path / "m.npz", tmp_path / "overlay.png"
    done = kestrel("discover", source, "--out", out, "--model", tiny_checkpoint, "--size", "128",
                   "--max-objects", "2", "--overlay", overlay)
    assert done.returncode == 0, done.stderr
    saved = np.load(out)
    assert set(saved.files) == {"masks", "scores"}
    masks, scores = saved["masks"], saved["scores"]
    assert masks.dtype == np.int32 and masks.shape == image.shape[:2]
    assert scores.dtype == np.float32 and scores.ndim == 1 and len(scores) <= 2
    assert masks.min() >= 0 and masks.max() <= len(scores)
    expected = discover_objects(image, load_feature_model(tiny_checkpoint, "cpu"),
                                DiscoveryConfig(size=128, maskcut=MaskCutConfig(max_objects=2)))
    np.testing.assert_array_equal(masks, expected.instances)
    np.testing.assert_allclose(scores, expected.scores, rtol=1e-5)
    assert read_image(overlay).shape == image.shape
    assert f"{len(scores)} object(s)" in done.stdout


def test_constant_image_writes_no_objects(tmp_path: Path, tiny_checkpoint: str):
    source = write_png(tmp_path / "grey.png", np.full((96, 128, 3), 90, np.uint8))
    assert cli_main(["discover", str(source), "--out", str(tmp_path / "m.npz"), "--model", tiny_checkpoint]) == 0
    saved = np.load(tmp_path / "m.npz")
    assert saved["scores"].shape == (0,) and saved["masks"].shape == (96, 128) and not saved["masks"].any()


def test_errors_end_with_one_line_and_a_nonzero_exit(tmp_path: Path, tiny_checkpoint: str, capsys):
    """In-process through the same ``main`` (a subprocess per case would only add start-up time)."""
    cases = [
        (("discover", LEFT, "--out", tmp_path / "m.npy"), "--out must end in .npz"),
        (("discover", tmp_path / "missing.png", "--out", tmp_path / "m.npz"), "no such image file"),
        (("discover", LEFT, "--out", tmp_path / "m.npz", "--model", tmp_path / "none.pt"), "not found"),
        (("discover", LEFT, "--out", tmp_path / "m.npz", "--max-objects", "0", "--model", tiny_checkpoint),
         "max_objects must be at least 1"),
    ]
    for args, message in cases:
        assert cli_main([str(a) for a in args]) != 0
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_head_option_writes_what_the_head_finds(tmp_path: Path, tiny_checkpoint: str):
    from kestrel_core.discovery.head import (DecodeConfig, DiscoveryHead, HeadConfig, HeadDiscoveryConfig,
                                             discover_with_head, save_head)

    model = load_feature_model(tiny_checkpoint, "cpu")
    torch.manual_seed(3)
    head = DiscoveryHead(HeadConfig(in_channels=model.embed_dim, hidden=8)).eval()
    head_path = save_head(tmp_path / "head.pt", head)
    image = read_image(LEFT)[100:292, 200:456]
    source = write_png(tmp_path / "crop.png", image)
    out = tmp_path / "m.npz"
    assert cli_main(["discover", str(source), "--out", str(out), "--model", tiny_checkpoint,
                     "--size", "128", "--max-objects", "2", "--head", str(head_path)]) == 0
    saved = np.load(out)
    expected = discover_with_head(image, model, head, HeadDiscoveryConfig(size=128, decode=DecodeConfig(max_objects=2)))
    np.testing.assert_array_equal(saved["masks"], expected.instances)
    np.testing.assert_allclose(saved["scores"], expected.scores, rtol=1e-5)
    assert len(saved["scores"]) <= 2 and saved["masks"].max() <= len(saved["scores"])
