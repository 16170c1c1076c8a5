"""Unsupervised training of :class:`kestrel_core.flow.learned.PyramidFlowNet`.

Each step takes a batch of cropped frame pairs, predicts the forward and the backward flow
in one pass (the pair and its swap stacked on the batch axis) and minimises
:func:`~kestrel_core.flow.learned.unsupervised_flow_loss`, plus the endpoint error on random
affine warps of the first frames with moving patches pasted on top, whose flow is known
(:func:`~kestrel_core.flow.learned.random_layered_pairs`). Occlusion masks join after
``occlusion_start`` steps; from then on a random sub-crop of each pair is also run and held
to the full crop's detached flow (:func:`~kestrel_core.flow.learned.crop_consistency_loss`).

With ``teacher_weight > 0`` (distillation, off by default) the sampler must carry teacher
flows (:meth:`PairSampler.teacher_batch`): a classical method's flows of the same unlabeled
pairs, masked by their forward-backward check. Both predicted directions are then also held
to them on every output level (:func:`~kestrel_core.flow.learned.teacher_endpoint_loss`).

``out/`` receives ``log.csv`` (one row per logged step), ``state.pt`` (model, optimiser,
step and random state, for ``resume``) and, at the end, ``flow.pt``: the model with its
config and a training record.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kestrel_core.checkpoints import config_record
from kestrel_core.device import resolve_device
from kestrel_core.flow.learned import (AffinePairConfig, FlowNetConfig, PyramidFlowNet,
                                       UnsupervisedFlowLossConfig, crop_consistency_loss,
                                       load_flow_model, multiscale_endpoint_loss,
                                       random_layered_pairs, save_flow_model,
                                       teacher_endpoint_loss, unsupervised_flow_loss)
from kestrel_core.flow.consistency import forward_backward_occlusion
from kestrel_tools.training.flow_pairs import PairSampler

__all__ = ["FlowTrainingConfig", "train_flow"]

LOG_FIELDS = ("step", "seconds", "total", "photometric", "smoothness", "consistency", "synthetic",
              "teacher", "visible")


@dataclass(frozen=True)
class FlowTrainingConfig:
    """Optimisation settings.

    Attributes:
        steps: optimiser steps in all (a resumed run continues up to this number).
        batch: pairs per step.
        crop: ``(rows, columns)`` of the training crops.
        learning_rate: Adam learning rate (cosine decay to 5 % over ``steps``).
        occlusion_start: first step that masks occlusions and adds crop consistency.
        consistency_weight: weight of the crop-consistency term.
        synthetic_weight: weight of the known-warp term: each first frame and a random affine
            warp of it, with ``synthetic.objects`` moving patches, are a pair with known flow
            (see ``random_layered_pairs``).
        teacher_weight: weight of the distillation term (0, the default, turns it off; then
            the sampler needs no teacher flows).
        teacher_power: exponent of the generalized Charbonnier penalty of that term
            (``(|e| + 0.01)^q``; 1 is the plain endpoint error).
        log_every, checkpoint_every: in steps.
        seed: seeds the crops and the initial weights.
    """

    steps: int = 2000
    batch: int = 4
    crop: tuple[int, int] = (192, 256)
    learning_rate: float = 3e-4
    occlusion_start: int = 300
    consistency_weight: float = 0.1
    synthetic_weight: float = 1.0
    teacher_weight: float = 0.0
    teacher_power: float = 1.0
    log_every: int = 10
    checkpoint_every: int = 100
    seed: int = 0
    network: FlowNetConfig = field(default_factory=FlowNetConfig)
    loss: UnsupervisedFlowLossConfig = field(default_factory=UnsupervisedFlowLossConfig)
    synthetic: AffinePairConfig = field(default_factory=AffinePairConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.log_every < 1 or self.checkpoint_every < 1:
            raise ValueError("steps, batch, log_every and checkpoint_every must be positive")
        if min(self.crop) < 32:
            raise ValueError(f"crop must be at least 32x32, got {self.crop}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.teacher_weight < 0 or not self.teacher_power > 0:
            raise ValueError(f"teacher_weight must be >= 0 and teacher_power > 0, got "
                             f"{self.teacher_weight}, {self.teacher_power}")


def _sub_crop(rng: np.random.Generator, size: tuple[int, int]) -> tuple[slice, slice]:
    rows, cols = (max(32, int(s * rng.uniform(0.6, 0.85))) for s in size)
    top, left = rng.integers(size[0] - rows + 1), rng.integers(size[1] - cols + 1)
    return slice(top, top + rows), slice(left, left + cols)


def _step_losses(model: PyramidFlowNet, first: torch.Tensor, second: torch.Tensor,
                 config: FlowTrainingConfig, step: int, rng: np.random.Generator,
                 teacher: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``teacher``: ``(B, 2, 2, H, W)``, each pair's teacher flows first -> second and back."""
    batch = first.shape[0]
    levels = model(torch.cat([first, second]), torch.cat([second, first]))
    forward, backward = levels[-1][:batch], levels[-1][batch:]
    masked = step >= config.occlusion_start
    losses = unsupervised_flow_loss(first, second, forward, backward, config.loss, masked)
    consistency = first.new_zeros(())
    if masked and config.consistency_weight > 0:
        rows, cols = _sub_crop(rng, tuple(first.shape[-2:]))
        crop_flow = model.estimate(first[..., rows, cols], second[..., rows, cols])
        visible = ~forward_backward_occlusion(forward, backward, config.loss.occlusion_alpha1,
                                              config.loss.occlusion_alpha2)
        consistency = crop_consistency_loss(crop_flow, forward[..., rows, cols],
                                            visible[..., rows, cols])
    synthetic = first.new_zeros(())
    if config.synthetic_weight > 0:
        layered, warped, truth, valid = random_layered_pairs(first, config.synthetic)
        synthetic = multiscale_endpoint_loss(model(layered, warped), truth, valid)
    distillation = first.new_zeros(())
    if teacher is not None:
        both = torch.cat([teacher[:, 0], teacher[:, 1]])    # the same order as ``levels``
        distillation = teacher_endpoint_loss(levels, both, config.teacher_power)
    losses["consistency"] = consistency
    losses["synthetic"] = synthetic
    losses["teacher"] = distillation
    losses["total"] = (losses["total"] + config.consistency_weight * consistency
                       + config.synthetic_weight * synthetic + config.teacher_weight * distillation)
    return losses


def train_flow(sampler: PairSampler, config: FlowTrainingConfig, out: Path, device: str = "cpu",
               resume: bool = False, init: Path | None = None, record: dict | None = None,
               progress=None) -> Path:
    """Train and write ``out/flow.pt``; return its path.

    Args:
        sampler: the training pairs.
        resume: continue from ``out/state.pt``.
        init: start from the weights of this flow checkpoint (fine-tuning).
        record: extra facts for the checkpoint's training record (data, command line).
        progress: optional callable ``(step, losses)`` called at each logged step.
    """
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    model = PyramidFlowNet(config.network).to(torch_device)
    if init is not None:
        model.load_state_dict(load_flow_model(init, torch_device).state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, config.steps, eta_min=0.05 * config.learning_rate)
    step, elapsed = 0, 0.0
    state_path, log_path = out / "state.pt", out / "log.csv"
    if resume:
        if not state_path.is_file():
            raise OSError(f"cannot resume: {state_path} does not exist")
        state = torch.load(state_path, map_location=torch_device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, elapsed = state["step"], state["seconds"]
        rng.bit_generator.state = state["rng"]
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        _truncate_log(log_path, step)
    elif log_path.exists():
        log_path.unlink()
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as log_file:
        log = csv.DictWriter(log_file, LOG_FIELDS)
        if new_log:
            log.writeheader()
        model.train()
        started = time.perf_counter() - elapsed
        while step < config.steps:
            drawn = (sampler.teacher_batch(config.batch) if config.teacher_weight > 0
                     else sampler.batch(config.batch))
            first, second, *teacher = (t.to(torch_device) for t in drawn)
            losses = _step_losses(model, first, second, config, step, rng,
                                  teacher[0] if teacher else None)
            if not torch.isfinite(losses["total"]):
                raise RuntimeError(f"training diverged at step {step}: loss {losses['total'].item()}")
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % config.checkpoint_every == 0 or step == config.steps:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "schedule": schedule.state_dict(), "step": step,
                            "seconds": time.perf_counter() - started,
                            "rng": rng.bit_generator.state,
                            "sampler_rng": sampler.rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state()}, state_path)
            if step % config.log_every == 0 or step == config.steps:
                row = {k: float(v.detach()) for k, v in losses.items()}
                log.writerow({"step": step, "seconds": round(time.perf_counter() - started, 1),
                              **{k: f"{row[k]:.5f}" for k in LOG_FIELDS[2:]}})
                log_file.flush()
                if progress is not None:
                    progress(step, row)
    training = {"steps": step, "seconds": round(time.perf_counter() - started, 1),
                "pairs": len(sampler), "config": config_record(config), **(record or {})}
    return save_flow_model(out / "flow.pt", model.eval(), training)


def _truncate_log(path: Path, last_step: int) -> None:
    """Drop the log rows written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= last_step]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)

