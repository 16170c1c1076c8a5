"""Unsupervised flow training: pairs from recordings, a falling loss, resume, the CLI."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from kestrel_core.flow.learned import (FlowNetConfig, PyramidFlowNet, UnsupervisedFlowLossConfig,
                                       load_flow_model, unsupervised_flow_loss)
from kestrel_tools.graph import find_executable
from kestrel_tools.paths import data_dir
from kestrel_tools.training.flow import FlowTrainingConfig, train_flow
from kestrel_tools.training.flow_pairs import PairSampler, consecutive_pairs, folder_pairs
from kestrel_tools.training.frames import FrameSource

TINY = FlowNetConfig(channels=(8, 12, 16), output_level=1, radius=2, iterations=1,
                     filter_width=16, feature_width=8)


@pytest.fixture(scope="module")
def shifted_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real Motorcycle crops and the same crops moved 3 px right: a known, learnable motion."""
    left = cv2.cvtColor(cv2.imread(str(data_dir() / "stereo" / "motorcycle" / "motorcycle_left.png")),
                        cv2.COLOR_BGR2RGB)
    pairs = []
    for top, col in ((100, 100), (250, 300), (300, 450)):
        first = left[top:top + 80, col:col + 112]
        second = left[top:top + 80, col - 3:col - 3 + 112]
        pairs.append((np.ascontiguousarray(first), np.ascontiguousarray(second)))
    return pairs


def fixed_batch_loss(model, pairs) -> float:
    first = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    second = torch.from_numpy(np.stack([p[1] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        forward, backward = model.estimate(first, second), model.estimate(second, first)
        return unsupervised_flow_loss(first, second, forward, backward,
                                      UnsupervisedFlowLossConfig(), False)["total"].item()


def test_a_few_training_steps_lower_the_loss_and_write_a_loadable_model(tmp_path, shifted_pairs):
    config = FlowTrainingConfig(steps=30, batch=2, crop=(64, 96), learning_rate=2e-3,
                                occlusion_start=20, log_every=5, checkpoint_every=10,
                                synthetic_weight=0.0, network=TINY)
    torch.manual_seed(config.seed)
    before = fixed_batch_loss(PyramidFlowNet(TINY).eval(), shifted_pairs)
    path = train_flow(PairSampler(shifted_pairs, config.crop), config, tmp_path)
    model = load_flow_model(path)
    after = fixed_batch_loss(model, shifted_pairs)
    assert after < 0.8 * before
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30]
    assert all(float(r["consistency"]) == 0 for r in rows if int(r["step"]) <= 20)
    record = torch.load(path, weights_only=True)["training"]
    assert record["steps"] == 30 and record["pairs"] == 3
    assert record["config"]["network"]["channels"] == [8, 12, 16]


def test_known_warp_training_lowers_the_endpoint_error_on_held_out_warps(tmp_path, shifted_pairs):
    from kestrel_core.flow.learned import AffinePairConfig, multiscale_endpoint_loss, random_affine_pairs

    frames = torch.from_numpy(np.stack([p[0] for p in shifted_pairs])).permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(123)  # warps the training never draws
    second, truth, valid = random_affine_pairs(frames, AffinePairConfig((6.0, 2.0), 0.0, 0.0))

    def endpoint_error(model) -> float:
        with torch.no_grad():
            return multiscale_endpoint_loss(model(frames, second), truth, valid).item()

    config = FlowTrainingConfig(steps=30, batch=2, crop=(64, 96), learning_rate=2e-3,
                                occlusion_start=100, log_every=10, checkpoint_every=30,
                                synthetic=AffinePairConfig((6.0, 2.0), 0.0, 0.0), network=TINY)
    torch.manual_seed(config.seed)
    before = endpoint_error(PyramidFlowNet(TINY).eval())
    after = endpoint_error(load_flow_model(train_flow(PairSampler(shifted_pairs, config.crop),
                                                      config, tmp_path)))
    assert after < 0.8 * before


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tmp_path, shifted_pairs):
    config = FlowTrainingConfig(steps=6, batch=2, crop=(64, 96), occlusion_start=3,
                                log_every=2, checkpoint_every=2, network=TINY)
    straight = load_flow_model(train_flow(PairSampler(shifted_pairs, config.crop), config,
                                          tmp_path / "straight"))

    def interrupt_at_step_4(step: int, losses: dict) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_flow(PairSampler(shifted_pairs, config.crop), config, tmp_path / "split",
                   progress=interrupt_at_step_4)
    assert not (tmp_path / "split" / "flow.pt").exists()
    # A fresh sampler with another seed: its random state must come from the checkpoint.
    resumed = load_flow_model(train_flow(PairSampler(shifted_pairs, config.crop, seed=99), config,
                                         tmp_path / "split", resume=True))
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "split" / "log.csv").open())]
    assert steps == [2, 4, 6]


def test_pairs_come_from_consecutive_frames_and_from_folders_two_by_two(tmp_path):
    video = FrameSource("video", data_dir() / "frames" / "tree.avi")
    pairs = consecutive_pairs([video], gap=2, max_frames=5, max_side=160)
    assert len(pairs) == 3
    assert max(pairs[0][0].shape[:2]) == 160 and pairs[0][0].dtype == np.uint8
    np.testing.assert_array_equal(pairs[0][1], pairs[2][0])  # frames 2 of (0, 2) and (2, 4)
    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(4)]
    for name, image in zip(("a_left", "a_right", "b_left", "b_right"), images):
        cv2.imwrite(str(folder / f"{name}.png"), image[..., ::-1])
    got = folder_pairs(folder)
    assert len(got) == 2
    np.testing.assert_array_equal(got[1][1], images[3])
    cv2.imwrite(str(folder / "c_left.png"), images[0])
    with pytest.raises(ValueError, match="cannot be taken two by two"):
        folder_pairs(folder)


def test_sampler_crops_both_frames_alike():
    first = np.arange(50 * 70 * 3, dtype=np.uint32).reshape(50, 70, 3).astype(np.uint8)
    sampler = PairSampler([(first, first.copy())], (32, 48), seed=3)
    a, b = sampler.batch(6)
    assert a.shape == (6, 3, 32, 48) and a.dtype == torch.float32
    assert torch.equal(a, b)  # identical frames stay identical under the shared crop and flip
    with pytest.raises(ValueError, match="no frame pair is at least"):
        PairSampler([(first, first)], (64, 96))


@pytest.mark.parametrize("args, reason", [
    (["--steps", "2"], "no training pairs"),
    (["--video", "missing.avi"], "missing.avi: no such video file"),
    (["--pair-folder", "."], "no images"),
    (["--video", "VIDEO", "--crop", "20x20"], "crop must be at least 32x32"),
])
def test_train_flow_cli_errors_are_one_line(tmp_path: Path, args, reason):
    args = [str(data_dir() / "frames" / "tree.avi") if a == "VIDEO" else a for a in args]
    result = subprocess.run([find_executable("kestrel"), "train", "flow", "--out", str(tmp_path / "o"), *args],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], result.stderr
