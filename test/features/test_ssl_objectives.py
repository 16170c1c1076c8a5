"""DINO, MoCo v2 and SimCLR on real frames with a tiny CNN: the losses train the network, and
the updates outside the optimizer (EMA, queue, centre) follow their formulas."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kestrel_core.features.augment import MultiCropConfig, ViewConfig
from kestrel_core.features.backbones import build_backbone
from kestrel_core.features.objectives import (Dino, DinoConfig, Moco, MocoConfig, Simclr,
                                              SimclrConfig)
from kestrel_core.features.objectives.common import ema_update
from kestrel_core.features.objectives.moco import KeyQueue
from kestrel_tools.paths import data_dir
from kestrel_tools.training import FrameSource, iter_frames

VIEW = ViewConfig(size=32)
DINO = DinoConfig(out_dim=64, hidden_dim=32, bottleneck_dim=16,
                  crops=MultiCropConfig(global_size=32, local_size=16, n_local=2))


def _tiny_backbone() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("cnn_small", widths=(8, 16, 16), embed_dim=16, groups=4)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """8 real frames (4 of vtest.avi, 4 of tree.avi) as (8, 3, 48, 64) float in [0, 1]."""
    videos = data_dir() / "frames"
    if not (videos / "vtest.avi").is_file() or not (videos / "tree.avi").is_file():
        pytest.skip(f"real videos not found in {videos} (set KESTREL_DATA_DIR)")
    chosen = [frame[:48, :64]
              for name, stride in (("vtest.avi", 40), ("tree.avi", 15))
              for frame in iter_frames(FrameSource("video", Path(videos / name)), stride=stride,
                                       max_frames=4, max_side=64)]
    return torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in chosen]).float() / 255


def _losses_on_fixed_views(objective: nn.Module, frames: torch.Tensor, steps: int,
                           after_step: bool) -> list[float]:
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], 3e-3)
    batch = objective.augment(frames, torch.Generator().manual_seed(0))
    losses = []
    for _ in range(steps):
        loss = objective.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_step:
            objective.after_step()
        losses.append(loss.item())
    return losses


def test_simclr_loss_decreases(frames: torch.Tensor) -> None:
    objective = Simclr(_tiny_backbone(), SimclrConfig(dim=16, hidden_dim=32, view=VIEW))
    losses = _losses_on_fixed_views(objective, frames, 8, after_step=True)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("make", [
    lambda: Dino(_tiny_backbone(), DINO),
    lambda: Moco(_tiny_backbone(), MocoConfig(dim=16, hidden_dim=32, queue_size=32, view=VIEW)),
], ids=["dino", "moco"])
def test_student_loss_decreases_against_fixed_targets(make, frames: torch.Tensor) -> None:
    # With the teacher / key encoder, centre and queue held (no after_step), the loss is a
    # plain objective of the student and must go down.
    losses = _losses_on_fixed_views(make(), frames, 8, after_step=False)
    assert losses[-1] < 0.9 * losses[0]


def test_dino_teacher_does_not_collapse_and_centre_tracks_the_mean(frames: torch.Tensor) -> None:
    objective = Dino(_tiny_backbone(), DINO)
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], 3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        batch = objective.augment(frames, generator)
        loss = objective.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        centre_before = objective.center.clone()
        teacher_mean = torch.cat(objective.teacher(batch[0])).mean(dim=0, keepdim=True)
        objective.after_step()
        momentum = DINO.center_momentum
        assert torch.allclose(objective.center,
                              momentum * centre_before + (1 - momentum) * teacher_mean, atol=1e-6)
    # Entropy of the teacher's targets (nats) lies between one-hot (0) and uniform (log K).
    assert 0.05 < objective.last_teacher_entropy < math.log(DINO.out_dim) - 0.05


def test_dino_head_last_layer_has_unit_norm_prototypes() -> None:
    objective = Dino(_tiny_backbone(), DINO)
    last = objective.head.last_layer
    assert not last.parametrizations.weight.original0.requires_grad
    with torch.no_grad():
        last.parametrizations.weight.original1.mul_(3.0)
    assert torch.allclose(last.weight.norm(dim=1), torch.ones(DINO.out_dim), atol=1e-5)


def test_teacher_and_key_encoder_are_not_trained_by_the_optimizer() -> None:
    dino = Dino(_tiny_backbone(), DINO)
    moco = Moco(_tiny_backbone(), MocoConfig(dim=16, hidden_dim=32, queue_size=8, view=VIEW))
    frozen = [*dino.teacher_backbone.parameters(), *dino.teacher_head.parameters(),
              *moco.key_backbone.parameters(), *moco.key_head.parameters()]
    assert not any(p.requires_grad for p in frozen)


def test_ema_update_formula() -> None:
    torch.manual_seed(0)
    target, source = nn.Linear(3, 2), nn.Linear(3, 2)
    expected = [0.9 * t + 0.1 * s for t, s in zip(target.parameters(), source.parameters())]
    ema_update(target, source, 0.9)
    for got, want in zip(target.parameters(), expected):
        assert torch.allclose(got, want)
    ema_update(target, source, 0.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), source.parameters()))
    with pytest.raises(ValueError, match="momentum"):
        ema_update(target, source, 1.5)


def test_key_queue_is_first_in_first_out_and_wraps() -> None:
    queue = KeyQueue(size=5, dim=2)
    first = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    second = torch.tensor([[0.0, -1.0], [-4.0, 0.0], [0.0, 5.0]])
    queue.push(first)
    queue.push(second)
    expected = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    assert torch.allclose(queue.keys, expected)  # slot 0 overwritten by the 6th key
    assert int(queue.pointer) == 1


def test_moco_after_step_enqueues_the_keys_and_moves_the_key_encoder(
        frames: torch.Tensor) -> None:
    objective = Moco(_tiny_backbone(), MocoConfig(dim=16, hidden_dim=32, queue_size=32,
                                                  momentum=0.5, view=VIEW))
    with torch.no_grad():
        for parameter in objective.backbone.parameters():
            parameter.add_(0.1)
    key_before = [p.clone() for p in objective.key_backbone.parameters()]
    batch = objective.augment(frames, torch.Generator().manual_seed(0))
    objective.loss(batch)
    keys = objective._new_keys.clone()
    objective.after_step()
    assert torch.allclose(objective.queue.keys[: len(frames)], keys, atol=1e-6)
    assert int(objective.queue.pointer) == len(frames)
    for before, key, query in zip(key_before, objective.key_backbone.parameters(),
                                  objective.backbone.parameters()):
        assert torch.allclose(key, 0.5 * before + 0.5 * query, atol=1e-6)
