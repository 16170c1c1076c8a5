"""Self-training of the discovery head: scans from bags, round 2, resume, the CLI."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import replace

import numpy as np
import pytest
import torch

from kestrel_core.discovery.head import DiscoveryHead, HeadConfig, load_discovery_head
from kestrel_core.discovery.pseudo_labels import PatchTargets, targets_from_predictions
from kestrel_core.features.backbones import build_backbone
from kestrel_core.features.checkpoint import load_feature_model, save_checkpoint
from kestrel_core.fusion import default_T_lidar_cam
from kestrel_core.fusion.projection import project_points
from kestrel_tools.cli import main as cli_main
from kestrel_tools.graph import find_executable
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import SampleConfig, build_sample_bag, topics
from kestrel_tools.training.discovery import (HEAD_FILE, DiscoveryTrainingConfig, LabeledFrame,
                                              TrainingFrame, bag_frames_with_scans, relabel,
                                              train_discovery)
from kestrel_tools.training.frames import FrameSource, iter_frames

SIZE = 96


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> str:
    """A randomly initialised 2-block ViT with 16-pixel patches (plumbing, not accuracy)."""
    torch.manual_seed(0)
    backbone = build_backbone("vit_tiny", depth=2, patch_size=16)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return str(save_checkpoint(path, backbone, {"model_id": "tiny-random"}))


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    """The reduced sample bag: Motorcycle (with a 16-beam scan) and one OAK-D pair."""
    return build_sample_bag(tmp_path_factory.mktemp("sample") / "bag", "mcap", SampleConfig.reduced()).path


@pytest.fixture(scope="module")
def video_frames() -> list[TrainingFrame]:
    video = FrameSource("video", data_dir() / "frames" / "tree.avi")
    return [TrainingFrame(image) for image in iter_frames(video, stride=20, max_frames=3, max_side=128)]


def test_bag_frames_carry_the_scan_matched_by_stamp_with_its_camera_and_tf(sample_bag):
    frames = list(bag_frames_with_scans(sample_bag, topics.LEFT_IMAGE, topics.LIDAR_POINTS))
    assert len(frames) == 2                                   # Motorcycle, then one OAK-D pair
    motorcycle, oakd = frames
    assert oakd.scan is None                                  # no scan within the slop
    scan = motorcycle.scan
    assert (scan.camera.height, scan.camera.width) == motorcycle.image.shape[:2]
    np.testing.assert_allclose(scan.T_cam_lidar, np.linalg.inv(default_T_lidar_cam()), atol=1e-6)
    # The scan was simulated from this camera's view: nearly all of it lands in the image.
    visible = project_points(torch.from_numpy(scan.points), scan.T_cam_lidar, scan.camera).visible
    assert visible.float().mean() > 0.95
    with pytest.raises(ValueError, match="no topic /nope"):
        next(bag_frames_with_scans(sample_bag, topics.LEFT_IMAGE, "/nope"))


def test_round_two_learns_from_the_heads_own_confident_predictions():
    torch.manual_seed(0)
    head = DiscoveryHead(HeadConfig(in_channels=192, hidden=8)).eval()
    features = torch.randn(192, 6, 8)
    empty = PatchTargets(np.zeros((6, 8), np.float32), np.ones((6, 8), bool), np.zeros((6, 8), np.int32))
    config = DiscoveryTrainingConfig()
    (relabeled,) = relabel(head, [LabeledFrame(features, empty)], config, torch.device("cpu"))
    with torch.no_grad():
        probability = torch.sigmoid(head(features[None])[0])[0, 0].numpy()
    expected = targets_from_predictions(probability, config.labels, empty)
    assert relabeled.features is features
    for name in ("objectness", "valid", "instances"):
        np.testing.assert_array_equal(getattr(relabeled.targets, name), getattr(expected, name))
    assert not relabeled.targets.valid.all()                   # some predictions are unsure


def test_two_rounds_lower_the_loss_and_resume_gives_the_same_head(tmp_path, tiny_model_path, video_frames):
    model = load_feature_model(tiny_model_path, "cpu")
    config = DiscoveryTrainingConfig(size=SIZE, rounds=2, steps=12, batch=2, log_every=4, hidden=8,
                                     learning_rate=1e-2)
    path = train_discovery(video_frames, model, config, tmp_path / "straight", record={"sources": ["tree"]})
    rows = list(csv.DictReader((tmp_path / "straight" / "log.csv").open()))
    assert [(int(r["round"]), int(r["step"])) for r in rows] == [(1, 4), (1, 8), (1, 12),
                                                                 (2, 4), (2, 8), (2, 12)]
    first_round = [float(r["total"]) for r in rows if r["round"] == "1"]
    assert first_round[-1] < first_round[0]
    head = load_discovery_head(path)
    assert head.config.feature_model == "tiny-random" and head.config.in_channels == model.embed_dim
    record = torch.load(path, weights_only=True)["training"]
    assert record["frames"] == 3 and record["frames_with_scans"] == 0 and record["sources"] == ["tree"]
    assert record["config"]["rounds"] == 2
    # One round, then resumed to two: identical weights (round 2 relabels from the stored head).
    train_discovery(video_frames, model, replace(config, rounds=1), tmp_path / "split")
    resumed = load_discovery_head(train_discovery(video_frames, model, config, tmp_path / "split",
                                                  resume=True))
    for name, value in head.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)
    resumed_rows = list(csv.DictReader((tmp_path / "split" / "log.csv").open()))
    assert [(r["round"], r["step"]) for r in resumed_rows] == [(r["round"], r["step"]) for r in rows]


def test_cli_trains_from_bag_images_and_points(tmp_path, tiny_model_path, sample_bag):
    out = tmp_path / "run"
    done = subprocess.run([find_executable("kestrel"), "train", "discovery", "--bag", str(sample_bag),
                           "--topic", topics.LEFT_IMAGE, "--points-topic", topics.LIDAR_POINTS,
                           "--model", tiny_model_path, "--size", str(SIZE), "--steps", "3", "--batch", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    head = load_discovery_head(out / HEAD_FILE)
    record = torch.load(out / HEAD_FILE, weights_only=True)["training"]
    assert record["frames"] == 2 and record["frames_with_scans"] == 1
    assert record["points_topic"] == topics.LIDAR_POINTS and record["feature_model"] == "tiny-random"
    assert head.config.in_channels == 192
    assert (out / "state.pt").is_file() and f"wrote {out / HEAD_FILE}" in done.stdout


@pytest.mark.parametrize("args, reason", [
    (["--steps", "0"], "steps, batch and log_every must be >= 1"),
    (["--points-topic", "/lidar/points"], "--points-topic needs --bag"),
    (["--frame-stride", "0"], "--frame-stride and --max-frames >= 1"),
])
def test_bad_arguments_end_with_one_line_and_a_nonzero_exit(tmp_path, capsys, args, reason):
    video = str(data_dir() / "frames" / "tree.avi")
    code = cli_main(["train", "discovery", "--video", video, "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and reason in err
