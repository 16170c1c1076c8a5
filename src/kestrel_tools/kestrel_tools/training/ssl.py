"""Self-supervised training of feature backbones (DINO, MoCo v2, SimCLR) from recordings.

One entry point serves a single process and ``torchrun --nproc_per_node=N``: when torchrun's
``WORLD_SIZE`` is set, :func:`train_ssl` joins the process group (``env://``; gloo on the CPU,
nccl on CUDA), shards the frames DistributedSampler-style (rank ``r`` keeps frames
``r, r + N, ...``), wraps the objective in DistributedDataParallel and lets only rank 0 write.

Output folder:

* ``checkpoint.pt`` - objective, optimizer, step and every rank's RNG state (``--resume``),
* ``log.csv`` / ``loss.png`` - the loss curve: per row the step, the mean loss over the steps
  since the previous row, the learning rate, the seconds since the run (re)started and, for
  DINO, the entropy of the teacher's targets in nats (NaN for the other methods),
* ``backbone.pt`` - the trained backbone as a Kestrel feature checkpoint.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kestrel_core.device import resolve_device
from kestrel_core.features.backbones import build_backbone
from kestrel_core.features.checkpoint import save_checkpoint
from kestrel_core.features.objectives import METHODS, build_objective
from kestrel_tools.training.frames import FrameSource, iter_frames

CHECKPOINT_NAME = "checkpoint.pt"
BACKBONE_NAME = "backbone.pt"
LOG_FIELDS = ("step", "loss", "lr", "seconds", "teacher_entropy")


@dataclass(frozen=True)
class SSLTrainConfig:
    """One training run. ``batch`` is per process; ``steps`` is the total to reach (a resumed
    run continues up to it). Frames are resized to ``frame_height x frame_width`` once, views
    (global crops for DINO) are ``view_size`` pixels square. The learning rate warms up
    linearly for ``warmup_steps`` and then follows a cosine to zero."""

    method: str = "dino"
    arch: str = "cnn_small"
    steps: int = 1000
    batch: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.04
    warmup_steps: int = 50
    view_size: int = 96
    frame_height: int = 192
    frame_width: int = 256
    frame_stride: int = 2
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        for name in ("steps", "batch", "view_size", "frame_height", "frame_width",
                     "frame_stride", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.method == "simclr" and self.batch < 2:
            raise ValueError("simclr needs --batch of at least 2")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("lr must be positive, weight_decay and warmup_steps non-negative")

    def learning_rate(self, step: int) -> float:
        """Learning rate of the (0-based) ``step``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * self.lr * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job; ``world == 1`` without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def join_process_group(device: torch.device) -> Distributed:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (``env://``; nccl on CUDA, gloo
    on the CPU); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)  # one GPU per process, before nccl starts
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                init_method="env://")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


@dataclass(frozen=True)
class FramePool:
    """Training frames of one process: ``images (N, 3, H, W) uint8`` RGB and ``source (N,)``,
    the index of the recording each frame came from."""

    images: torch.Tensor
    source: torch.Tensor

    def sampling_weights(self) -> torch.Tensor:
        """``(N,)`` weights giving every recording the same share of samples."""
        counts = torch.bincount(self.source).to(torch.float64)
        return 1.0 / counts[self.source]


def load_frame_pool(sources: Sequence[FrameSource], config: SSLTrainConfig,
                    shard: Distributed = Distributed()) -> FramePool:
    """Read every ``frame_stride``-th frame of each source, resized to the configured size,
    and keep this rank's shard (frames ``rank, rank + world, ...``)."""
    size = (config.frame_width, config.frame_height)
    frames: list[np.ndarray] = []
    labels: list[int] = []
    for index, source in enumerate(sources):
        for frame in iter_frames(source, stride=config.frame_stride):
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
            labels.append(index)
    if len(frames) < shard.world:
        raise ValueError(f"{len(frames)} training frames cannot be shared by {shard.world} "
                         "processes")
    images = torch.from_numpy(np.stack(frames[shard.rank::shard.world])).permute(0, 3, 1, 2)
    source = torch.tensor(labels[shard.rank::shard.world])
    return FramePool(images.contiguous(), source)


def build_backbone_for(config: SSLTrainConfig) -> nn.Module:
    """The untrained backbone ``config.arch``; ViTs get patch 8 so that small views still
    have a useful token grid."""
    overrides = {"patch_size": 8} if config.arch.startswith("vit") else {}
    return build_backbone(config.arch, **overrides)


class SSLTrainer:
    """Steps one objective on one process's frames. ``state_dict``/``load_state_dict`` cover
    everything a resumed run needs to take the same next step."""

    def __init__(self, config: SSLTrainConfig, pool: FramePool, device: torch.device,
                 shard: Distributed = Distributed()) -> None:
        self.config, self.pool, self.device, self.shard = config, pool, device, shard
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.objective = build_objective(config.method, build_backbone_for(config),
                                         config.view_size).to(device)
        self.model: nn.Module = self.objective
        if shard.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.objective, device_ids=ids)
        trainable = [p for p in self.objective.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed * 1000 + shard.rank)
        self.weights = pool.sampling_weights()
        self.step = 0

    def next_images(self) -> torch.Tensor:
        """A random batch ``(B, 3, H, W)`` float in [0, 1] on the device."""
        index = torch.multinomial(self.weights, self.config.batch, replacement=True,
                                  generator=self.generator)
        return self.pool.images[index].to(self.device).float() / 255

    def train_step(self) -> float:
        """One optimizer step; returns the loss (averaged over ranks)."""
        lr = self.config.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.objective.augment(self.next_images(), self.generator)
        loss = self.model(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.objective.after_step()
        self.step += 1
        value = loss.detach()
        if self.shard.world > 1:
            dist.all_reduce(value)
            value /= self.shard.world
        return float(value)

    def state_dict(self) -> dict:
        """Objective, optimizer, step and the RNG state of every rank (collective call)."""
        states = [self.generator.get_state()]
        if self.shard.world > 1:
            states = [torch.empty(0)] * self.shard.world
            dist.all_gather_object(states, self.generator.get_state())
        return {"config": asdict(self.config), "step": self.step,
                "objective": self.objective.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generators": states}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`; ``ValueError`` if it belongs to another run."""
        for key in ("method", "arch"):
            if state["config"][key] != getattr(self.config, key):
                raise ValueError(f"the checkpoint was trained with {key} "
                                 f"{state['config'][key]!r}, not {getattr(self.config, key)!r}")
        if len(state["generators"]) != self.shard.world:
            raise ValueError(f"the checkpoint comes from {len(state['generators'])} processes, "
                             f"this run has {self.shard.world}")
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generators"][self.shard.rank])
        self.step = int(state["step"])


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    seconds: float
    backbone_path: Path


def train_ssl(config: SSLTrainConfig, sources: Sequence[FrameSource], out_dir: Path,
              device: str = "auto", resume: bool = False,
              log: Callable[[str], None] = print) -> TrainResult:
    """Train ``config.method`` on ``config.arch`` from ``sources`` into ``out_dir``.

    Runs alone or under torchrun (see the module docstring). Returns the run's summary (on
    every rank; only rank 0 writes files and logs).
    """
    torch_device = resolve_device(device)
    shard = join_process_group(torch_device)
    if torch_device.type == "cuda" and shard.world > 1:
        torch_device = torch.device("cuda", shard.local_rank)
    say = log if shard.is_main else (lambda _: None)
    checkpoint_path, log_path = out_dir / CHECKPOINT_NAME, out_dir / "log.csv"
    if resume and not checkpoint_path.is_file():
        raise OSError(f"--resume: no {checkpoint_path} to resume from")
    pool = load_frame_pool(sources, config, shard)
    say(f"{len(pool.images)} frames per process from {len(sources)} recording(s), "
        f"{shard.world} process(es), device {torch_device}")
    trainer = SSLTrainer(config, pool, torch_device, shard)
    if resume:
        trainer.load_state_dict(torch.load(checkpoint_path, map_location=torch_device,
                                           weights_only=True))
        if shard.is_main:
            _truncate_log(log_path, trainer.step)
        say(f"resumed {checkpoint_path} at step {trainer.step}")
    elif shard.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_log_header(log_path)
    start, loss, window = time.monotonic(), float("nan"), []
    while trainer.step < config.steps:
        loss = trainer.train_step()
        if not math.isfinite(loss):
            raise RuntimeError(f"the loss diverged at step {trainer.step} ({loss})")
        window.append(loss)
        if trainer.step % config.log_every == 0 or trainer.step == config.steps:
            mean_loss = float(np.mean(window))
            window.clear()
            row = (trainer.step, mean_loss, config.learning_rate(trainer.step - 1),
                   time.monotonic() - start,
                   getattr(trainer.objective, "last_teacher_entropy", float("nan")))
            if shard.is_main:
                _append_log(log_path, row)
            say(f"step {trainer.step}/{config.steps} loss {mean_loss:.4f}")
        if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
            state = trainer.state_dict()  # collective: every rank takes part
            if shard.is_main:
                torch.save(state, checkpoint_path)
    seconds = time.monotonic() - start
    backbone_path = out_dir / BACKBONE_NAME
    if shard.is_main:
        model_id = f"ssl_{config.method}_{config.arch}"
        save_checkpoint(backbone_path, trainer.objective.backbone,
                        {"model_id": model_id},
                        {"training": asdict(config), "final_loss": loss, "steps": trainer.step})
        plot_loss(log_path, out_dir / "loss.png", f"{config.method} / {config.arch}")
        say(f"wrote {backbone_path}: {trainer.step} steps, {seconds:.0f} s this run, "
            f"final loss {loss:.4f}")
    if shard.world > 1:
        dist.barrier()
    return TrainResult(trainer.step, loss, seconds, backbone_path)


def _write_log_header(path: Path) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerow(LOG_FIELDS)


def _truncate_log(path: Path, step: int) -> None:
    """Drop the rows logged after ``step`` (by a run that stopped before its next
    checkpoint), so that the resumed run does not log them twice."""
    kept = [row for row in read_rows(path) if int(row["step"]) <= step] if path.is_file() else []
    _write_log_header(path)
    for row in kept:
        _append_log(path, tuple(row[field] for field in LOG_FIELDS))


def _append_log(path: Path, row: tuple) -> None:
    with path.open("a", newline="") as handle:
        csv.writer(handle).writerow([f"{value:.6g}" if isinstance(value, float) else value
                                     for value in row])


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of ``log.csv`` as text."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_log(path: Path) -> dict[str, np.ndarray]:
    """``log.csv`` as one float array per column."""
    rows = read_rows(path)
    return {field: np.array([float(row[field]) for row in rows]) for field in LOG_FIELDS}


def plot_loss(log_path: Path, png_path: Path, title: str) -> None:
    """Loss against step from ``log.csv`` as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = read_log(log_path)
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(columns["step"], columns["loss"])
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
