"""Self-supervised training of :class:`kestrel_core.fusion.learned_completion.DepthCompletionNet`.

Data: LiDAR scans simulated from one dense depth map (the Middlebury Motorcycle ground
truth) with many beam patterns (beam count, vertical field of view, azimuth step, mounting
height). Each step takes one scan as input (a random 90 % of its points). Targets, by
``targets``: ``held_out_points`` (self-supervised, the dense depth is never used) are the
points of ``target_scans`` *other* scans, merged, that fall on pixels the input lacks, so
the loss also covers the gaps between scan lines; ``ground_truth`` (supervised) is the dense depth of the
training columns at every pixel the input lacks. The
network refines the guided classical completion of the input (its "prefill"), computed once
per scan on the whole training region, as at inference on a whole image (a prefill computed
per crop would have errors at the crop borders that a whole image does not have).

Split: training crops come only from the left ``train_columns`` share of the image; the
columns to the right are never seen in training (neither as input nor as target), so they
can be used to evaluate on pixels the network was not trained on
(:func:`held_out_columns`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kestrel_core.checkpoints import config_record
from kestrel_core.device import resolve_device
from kestrel_core.fusion import project_points, simulate_lidar_from_depth, sparse_depth_image
from kestrel_core.fusion.learned_completion import (
    CompletionNetConfig,
    DepthCompletionNet,
    depth_completion_loss,
    prefill_depth,
    save_completion_model,
)
from kestrel_core.fusion.simulated_lidar import default_T_lidar_cam
from kestrel_core.geometry.camera import PinholeCamera

__all__ = [
    "TARGETS",
    "DepthCompletionTrainingConfig",
    "ScanBank",
    "held_out_columns",
    "motorcycle_scene",
    "simulated_sparse_depth",
    "train_depth_completion",
]


TARGETS = ("held_out_points", "ground_truth")


@dataclass(frozen=True)
class DepthCompletionTrainingConfig:
    """Optimisation and data settings.

    Attributes:
        steps, batch, crop: optimiser steps, crops per step, ``(rows, columns)`` per crop.
        learning_rate: Adam, cosine decay to 5 % over ``steps``.
        train_columns: share of the image columns (from the left) training may touch.
        input_keep: share of the input scan's points given to the network.
        targets: ``held_out_points`` (self-supervised: the points of other scans that the
            input lacks) or ``ground_truth`` (supervised: the dense depth of the training
            columns wherever the input lacks a point).
        target_scans: how many other scans give ``held_out_points`` targets (their points
            merged, the nearest depth winning a shared pixel), like the accumulated sweeps
            that serve as depth completion targets for real LiDAR (KITTI); more scans cover
            more of the gaps between the input's scan lines.
        smoothness_weight: weight of the edge-aware smoothness term.
        beams: inclusive range of simulated beam counts.
        fov_edge_deg: range of the lower (negated) and upper limits of the vertical field of
            view in degrees; from 15 deg up, the scans cover the whole image of Motorcycle
            (about +-14 deg), as a LiDAR chosen for the camera would, so no training target
            lies in an image band no beam reaches.
        scans: number of simulated scans in the bank.
        seed: seeds the scans, the crops and the initial weights.
    """

    steps: int = 800
    batch: int = 4
    crop: tuple[int, int] = (128, 128)
    learning_rate: float = 1e-3
    train_columns: float = 0.6
    input_keep: float = 0.9
    targets: str = "held_out_points"
    target_scans: int = 1
    smoothness_weight: float = 0.02
    beams: tuple[int, int] = (12, 96)
    fov_edge_deg: tuple[float, float] = (15.0, 20.0)
    scans: int = 32
    log_every: int = 25
    seed: int = 0
    network: CompletionNetConfig = field(default_factory=CompletionNetConfig)

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.scans, self.log_every, self.target_scans) < 1:
            raise ValueError("steps, batch, scans, target_scans and log_every must be >= 1")
        if self.scans < self.target_scans + 1:
            raise ValueError(f"scans must exceed target_scans, got {self.scans} <= {self.target_scans}")
        if min(self.crop) < 32:
            raise ValueError(f"crop must be at least 32x32, got {self.crop}")
        if not 0 < self.train_columns < 1 or not 0 < self.input_keep <= 1:
            raise ValueError("train_columns must be in (0, 1) and input_keep in (0, 1]")
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if not 1 <= self.beams[0] <= self.beams[1]:
            raise ValueError(f"beams must be (low, high) with 1 <= low <= high, got {self.beams}")
        if not 0 < self.fov_edge_deg[0] <= self.fov_edge_deg[1] < 90:
            raise ValueError(f"fov_edge_deg must be (low, high) with 0 < low <= high < 90, got {self.fov_edge_deg}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


def held_out_columns(width: int, train_columns: float) -> slice:
    """The columns training never touches: everything right of ``train_columns * width``."""
    return slice(int(math.ceil(train_columns * width)), width)


def simulated_sparse_depth(depth: np.ndarray, camera: PinholeCamera, n_beams: int,
                           beam_fov_deg: tuple[float, float] = (-15.0, 15.0),
                           azimuth_step_deg: float = 0.2, up_m: float = 0.1) -> np.ndarray:
    """``(H, W)`` float32 sparse depth (NaN empty) of a LiDAR simulated from ``depth``."""
    T_lidar_cam = default_T_lidar_cam(up_m)
    points = simulate_lidar_from_depth(depth, camera, n_beams=n_beams, beam_fov_deg=beam_fov_deg,
                                       azimuth_step_deg=azimuth_step_deg, T_lidar_cam=T_lidar_cam)
    projection = project_points(points, np.linalg.inv(T_lidar_cam), camera)
    return sparse_depth_image(projection, camera.height, camera.width).numpy().astype(np.float32)


class ScanBank:
    """Simulated scans of one scene restricted to the training columns, and crop sampling."""

    def __init__(self, image: np.ndarray, depth: np.ndarray, camera: PinholeCamera,
                 config: DepthCompletionTrainingConfig) -> None:
        """``image (H, W, 3)`` uint8 RGB, ``depth (H, W)`` metres (NaN unknown) of ``camera``."""
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        usable = int(config.train_columns * camera.width)
        if usable < config.crop[1] or camera.height < config.crop[0]:
            raise ValueError(f"crop {config.crop} does not fit the {camera.height}x{usable} training region")
        self.image = image[:, :usable]
        self.depth = depth[:, :usable]
        self.scans: list[np.ndarray] = []  # (H, usable) every point of each scan
        self.inputs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # kept, prefill, confidence
        for _ in range(config.scans):
            low = -self.rng.uniform(*config.fov_edge_deg)
            high = self.rng.uniform(*config.fov_edge_deg)
            sparse = simulated_sparse_depth(
                depth, camera, int(self.rng.integers(config.beams[0], config.beams[1] + 1)),
                (low, high), float(self.rng.uniform(0.1, 0.3)), float(self.rng.uniform(0.0, 0.3)))
            sparse = sparse[:, :usable]
            self.scans.append(sparse)
            given = np.where(self.rng.random(sparse.shape) <= config.input_keep, sparse, np.nan)
            self.inputs.append(prefill_depth(given.astype(np.float32), self.image))

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch: ``image (B, 3, h, w)`` in [0, 1], then ``(B, 1, h, w)`` each: ``sparse``
        (occlusion-tested input), ``prefill`` metres, ``prefill_confidence`` and held-out
        ``target`` metres (NaN where absent)."""
        items = [self._one() for _ in range(self.config.batch)]
        return tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*items))  # type: ignore[return-value]

    def _one(self) -> tuple[np.ndarray, ...]:
        rows, cols = self.config.crop
        while True:
            first, *others = self.rng.choice(len(self.scans), size=1 + self.config.target_scans, replace=False)
            top = self.rng.integers(self.image.shape[0] - rows + 1)
            left = self.rng.integers(self.image.shape[1] - cols + 1)
            window = (slice(top, top + rows), slice(left, left + cols))
            sparse, prefill, prefill_confidence = (array[window] for array in self.inputs[first])
            if self.config.targets == "ground_truth":
                target = self.depth[window].copy()
            else:
                target = np.fmin.reduce([self.scans[other][window] for other in others])
            target[np.isfinite(sparse)] = np.nan
            if np.isfinite(sparse).sum() >= 20 and np.isfinite(target).sum() >= 20:
                break
        image = self.image[window].astype(np.float32).transpose(2, 0, 1) / 255.0
        arrays = (image, sparse[None], prefill[None], prefill_confidence[None], target[None])
        if self.rng.random() < 0.5:
            arrays = tuple(a[..., ::-1] for a in arrays)
        return tuple(np.ascontiguousarray(a) for a in arrays)


def train_depth_completion(bank: ScanBank, config: DepthCompletionTrainingConfig, out: Path,
                           device: str = "cpu", record: dict | None = None,
                           progress: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Train from ``bank`` and write ``out`` (a checkpoint with config and training record)."""
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    model = DepthCompletionNet(config.network).to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.steps, config.learning_rate * 0.05)
    start = time.monotonic()
    averages: dict[str, float] = {}
    final: dict[str, float] = {}
    for step in range(1, config.steps + 1):
        image, sparse, prefill, prefill_confidence, target = (t.to(device) for t in bank.sample())
        depth, confidence = model(image, sparse, prefill, prefill_confidence)
        losses = depth_completion_loss(depth, confidence, target, image, config.smoothness_weight,
                                       config.network.confidence_tolerance)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()
        schedule.step()
        for name, value in losses.items():
            averages[name] = averages.get(name, 0.0) + float(value.detach()) / config.log_every
        if step % config.log_every == 0:
            if progress is not None:
                progress(step, averages)
            final, averages = averages, {}
    seconds = time.monotonic() - start
    training = {**(record or {}), "config": config_record(config), "seconds": round(seconds, 1),
                "final_losses": {k: round(v, 5) for k, v in final.items()},
                "held_out_columns_from": config.train_columns}
    return save_completion_model(out, model.cpu(), training)


def motorcycle_scene(root: Path | None = None) -> tuple[np.ndarray, np.ndarray, PinholeCamera]:
    """Middlebury Motorcycle as ``(image (H, W, 3) uint8 RGB, depth (H, W) metres NaN-unknown,
    left camera)``: the training and evaluation scene of learned depth completion."""
    from kestrel_core.geometry.camera import StereoRig
    from kestrel_core.geometry.stereo import disparity_to_depth
    from kestrel_tools.datasets import load_middlebury_motorcycle

    sample = load_middlebury_motorcycle(root)
    rig = StereoRig(sample.left_camera, sample.right_camera)
    depth = disparity_to_depth(sample.ground_truth, rig.focal, rig.baseline, rig.doffs).astype(np.float32)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return sample.left, depth, sample.left_camera
