"""Distillation of the learned flow from the classical coarse-to-fine teacher: the masked,
robust multi-level loss, the teacher's consistent flows, the sampler's teacher crops and a
few training steps."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from kestrel_core.flow.learned import (FlowNetConfig, PyramidFlowNet, consistent_teacher_flows,
                                       load_flow_model, multiscale_endpoint_loss,
                                       teacher_endpoint_loss)
from kestrel_core.geometry.warp import backward_warp
from kestrel_tools.training.flow import FlowTrainingConfig, train_flow
from kestrel_tools.training.flow_pairs import PairSampler
from kestrel_tools.training.flow_teacher import cached_teacher_flows

TINY = FlowNetConfig(channels=(8, 12, 16), output_level=1, radius=2, iterations=1,
                     filter_width=16, feature_width=8)
SHIFT = 3  # the second frame is the first moved SHIFT pixels to the right


def _shifted_pair(image: np.ndarray, top: int, left: int, rows: int, cols: int,
                  ) -> tuple[np.ndarray, np.ndarray]:
    first = image[top:top + rows, left:left + cols]
    second = image[top:top + rows, left - SHIFT:left - SHIFT + cols]
    return np.ascontiguousarray(first), np.ascontiguousarray(second)


def _known_teacher(rows: int, cols: int) -> np.ndarray:
    """``(2, 2, rows, cols)``: (+SHIFT, 0) forward, (-SHIFT, 0) backward, NaN where the
    target leaves the frame."""
    teacher = np.zeros((2, 2, rows, cols), np.float32)
    teacher[0, 0], teacher[1, 0] = SHIFT, -SHIFT
    teacher[0, :, :, cols - SHIFT:] = np.nan
    teacher[1, :, :, :SHIFT] = np.nan
    return teacher


def test_penalty_power_follows_the_generalized_charbonnier_formula():
    truth = torch.zeros(2, 2, 16, 16)
    valid = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    off = truth + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # |e| = 5 everywhere
    assert multiscale_endpoint_loss([off], truth, valid).item() == pytest.approx(5.0)
    assert multiscale_endpoint_loss([off], truth, valid, 0.5).item() == pytest.approx(5.01 ** 0.5)
    with pytest.raises(ValueError, match="power must be positive"):
        multiscale_endpoint_loss([off], truth, valid, 0.0)


def test_teacher_loss_ignores_untrusted_pixels_in_value_and_gradient():
    teacher = torch.zeros(1, 2, 32, 32)
    teacher[:, 0] = 4.0
    teacher[..., :, 16:] = float("nan")                       # right half untrusted
    coarse = torch.zeros(1, 2, 8, 8)
    coarse[:, 0] = 1.0                                         # exact at 1/4 scale
    fine = torch.zeros(1, 2, 32, 32)
    fine[:, 0] = 4.0 + 2.0                                     # 2 px off on the trusted half
    fine[..., 16:] = 1000.0                                    # wild where untrusted
    fine.requires_grad_(True)
    loss = teacher_endpoint_loss([coarse, fine], teacher, power=1.0)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx((0.0 + 2.0) / 2)
    loss.backward()
    assert torch.all(fine.grad[..., 16:] == 0)
    # d/du of the mean of |u - 4| over the 32 * 16 trusted pixels, halved by the level mean.
    torch.testing.assert_close(fine.grad[:, 0, :, :16], torch.full((1, 32, 16), 0.5 / (32 * 16)))
    # Nothing trusted: the loss is zero, not NaN.
    assert teacher_endpoint_loss([fine], torch.full_like(teacher, float("nan"))).item() == 0.0
    with pytest.raises(ValueError, match="teacher must be"):
        teacher_endpoint_loss([fine], teacher[..., :16])


def test_coarse_levels_are_scored_against_the_mean_of_a_sparsely_trusted_teacher():
    teacher = torch.zeros(1, 2, 32, 32)
    teacher[:, 0] = 8.0
    teacher[:, 0, :, 1::4] = 100.0                  # wrong values the check rejected ...
    teacher[:, :, :, 1::4] = float("nan")           # ... so no 4x4 block is trusted throughout
    fine = torch.zeros(1, 2, 32, 32)
    fine[:, 0] = 8.0
    coarse = torch.zeros(1, 2, 8, 8)
    coarse[:, 0] = 2.0 + 1.0                        # the trusted mean is 8 / 4 = 2 at 1/4 scale
    assert teacher_endpoint_loss([coarse, fine], teacher, power=1.0).item() == pytest.approx(0.5)
    # A strict share (every pixel valid) would leave the coarse level unscored.
    trusted = torch.isfinite(teacher).all(dim=1, keepdim=True)
    strict = multiscale_endpoint_loss([coarse, fine], teacher.nan_to_num(0), trusted)
    assert strict.item() == pytest.approx(0.0)


def test_teacher_flows_recover_a_known_shift_and_reject_pixels_that_leave_the_frame(motorcycle_pair):
    first, second = _shifted_pair(motorcycle_pair[0], 150, 200, 96, 128)
    flows = consistent_teacher_flows(first, second)
    assert flows.shape == (2, 2, 96, 128) and flows.dtype == np.float32
    trusted = np.isfinite(flows).all(axis=1)                                # (2, H, W)
    assert trusted.mean() > 0.8
    # Targets beyond the frame fail the check: the last SHIFT columns forward, first back.
    assert not trusted[0, :, -SHIFT:].any() and not trusted[1, :, :SHIFT].any()
    for direction, expected in ((0, SHIFT), (1, -SHIFT)):
        u, v = flows[direction, 0][trusted[direction]], flows[direction, 1][trusted[direction]]
        assert np.median(np.abs(u - expected)) < 0.1 and np.median(np.abs(v)) < 0.1


def test_teacher_cache_computes_each_distinct_pair_once(tmp_path, motorcycle_pair):
    pair = _shifted_pair(motorcycle_pair[0], 150, 200, 48, 64)
    flows = cached_teacher_flows([pair, pair], tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1 and flows[0].dtype == np.float16
    np.testing.assert_array_equal(np.load(next(tmp_path.glob("*.npy"))), flows[1])
    with pytest.raises(ValueError, match="unknown teacher"):
        cached_teacher_flows([pair], tmp_path, "raft")


def test_sampler_keeps_teacher_flows_aligned_with_flipped_and_swapped_crops(motorcycle_pair):
    pair = _shifted_pair(motorcycle_pair[0], 150, 200, 80, 112)
    sampler = PairSampler([pair], (48, 64), seed=4, teachers=[_known_teacher(80, 112)])
    first, second, teacher = sampler.teacher_batch(16)
    assert teacher.shape == (16, 2, 2, 48, 64) and teacher.dtype == torch.float32
    # Each element's forward teacher flow warps its second crop back onto its first, and the
    # backward one the other way, whatever flip and order the sampler drew.
    us = teacher[:, 0, 0].nan_to_num(0).abs().amax(dim=(1, 2))
    assert set(torch.unique(teacher[:, :, 0][torch.isfinite(teacher[:, :, 0])]).tolist()) == {-3.0, 3.0}
    assert torch.all(us == SHIFT)
    for target, source, flow in ((first, second, teacher[:, 0]), (second, first, teacher[:, 1])):
        trusted = torch.isfinite(flow).all(dim=1, keepdim=True)
        warped, inside = backward_warp(source, flow.nan_to_num(0))
        used = (trusted & inside).expand_as(target)
        assert used.float().mean() > 0.7
        assert (warped - target).abs()[used].max() < 1e-5
    with pytest.raises(ValueError, match="without teacher flows"):
        PairSampler([pair], (48, 64)).teacher_batch(1)
    with pytest.raises(ValueError, match="does not fit"):
        PairSampler([pair], (48, 64), teachers=[_known_teacher(40, 112)])


def test_a_few_distillation_steps_pull_the_network_towards_the_teacher(tmp_path, motorcycle_pair):
    pairs = [_shifted_pair(motorcycle_pair[0], top, col, 64, 96)
             for top, col in ((100, 100), (250, 300), (300, 450))]
    teachers = [_known_teacher(64, 96) for _ in pairs]
    frames = [torch.from_numpy(np.stack([p[i] for p in pairs])).permute(0, 3, 1, 2).float() / 255
              for i in range(2)]
    truth = torch.from_numpy(np.stack(teachers))[:, 0]

    def teacher_loss(model: PyramidFlowNet) -> float:
        with torch.no_grad():
            return teacher_endpoint_loss(model(*frames), truth).item()

    config = FlowTrainingConfig(steps=20, batch=2, crop=(64, 96), learning_rate=2e-3,
                                occlusion_start=100, log_every=5, checkpoint_every=20,
                                synthetic_weight=0.0, teacher_weight=1.0, network=TINY)
    torch.manual_seed(config.seed)
    before = teacher_loss(PyramidFlowNet(TINY).eval())
    path = train_flow(PairSampler(pairs, config.crop, teachers=teachers), config, tmp_path)
    after = teacher_loss(load_flow_model(path))
    assert np.isfinite(after) and after < 0.8 * before
    logged = [float(row["teacher"]) for row in csv.DictReader((tmp_path / "log.csv").open())]
    assert len(logged) == 4 and all(np.isfinite(logged)) and logged[-1] < logged[0]
