"""``kestrel train depth-completion``: learned refinement of the guided classical completion.

Trains on LiDAR scans simulated from the Middlebury Motorcycle depth (see
:mod:`kestrel_tools.training.depth_completion` for the data and the held-out column split).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from kestrel_core.device import resolve_device
from kestrel_core.fusion.learned_completion import HEADS, CompletionNetConfig
from kestrel_tools.training.depth_completion import (
    TARGETS,
    DepthCompletionTrainingConfig,
    ScanBank,
    motorcycle_scene,
    train_depth_completion,
)
from kestrel_tools.training.frames import rows_by_columns

DEFAULTS = DepthCompletionTrainingConfig()


def add_parser(tasks: argparse._SubParsersAction) -> None:
    parser = tasks.add_parser(
        "depth-completion", help="learned depth completion refining the guided classical one",
        description="Train the small depth completion network (image + sparse depth -> dense "
                    "depth + confidence) on LiDAR scans simulated from the Middlebury "
                    "Motorcycle depth with varied beam patterns. Inputs are one scan; targets "
                    "(--targets) the ground-truth depth or the points of other scans, where "
                    "the input lacks a point; only the left --train-columns share of the "
                    "image is used, the rest stays held out.")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--data-root", type=Path, help="folder holding stereo/motorcycle")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps)
    parser.add_argument("--batch", type=int, default=DEFAULTS.batch)
    parser.add_argument("--crop", type=rows_by_columns, default=DEFAULTS.crop, help="ROWSxCOLS")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    parser.add_argument("--train-columns", type=float, default=DEFAULTS.train_columns,
                        help="share of image columns (from the left) used for training")
    parser.add_argument("--scans", type=int, default=DEFAULTS.scans, help="simulated scans")
    parser.add_argument("--targets", choices=TARGETS, default=DEFAULTS.targets,
                        help="held_out_points: other scans' points (self-supervised); ground_truth: "
                             "the dense depth of the training columns (supervised)")
    parser.add_argument("--target-scans", type=int, default=DEFAULTS.target_scans,
                        help="held_out_points: how many other scans' points are the targets")
    parser.add_argument("--base-channels", type=int, default=CompletionNetConfig.base_channels)
    parser.add_argument("--max-log-residual", type=float, default=CompletionNetConfig.max_log_residual,
                        help="bound of the network's log-depth correction to the classical prefill")
    parser.add_argument("--head", choices=HEADS, default=CompletionNetConfig.head,
                        help="residual: gated log-depth correction of the prefill; propagation: "
                             "learned rescaling of the guided method's edge weights, then diffusion "
                             "sweeps from the prefill")
    parser.add_argument("--sweeps", type=int, default=CompletionNetConfig.sweeps,
                        help="propagation: diffusion sweeps from the prefill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a loaded machine)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    config = DepthCompletionTrainingConfig(
        steps=args.steps, batch=args.batch, crop=args.crop, learning_rate=args.learning_rate,
        train_columns=args.train_columns, scans=args.scans, targets=args.targets,
        target_scans=args.target_scans, seed=args.seed,
        network=CompletionNetConfig(base_channels=args.base_channels,
                                    max_log_residual=args.max_log_residual, head=args.head,
                                    sweeps=args.sweeps))
    image, depth, camera = motorcycle_scene(args.data_root)
    print(f"simulating {config.scans} scans of Motorcycle {camera.width}x{camera.height}", flush=True)
    bank = ScanBank(image, depth, camera, config)
    record = {"command": " ".join(["kestrel", *sys.argv[1:]]) if sys.argv else "",
              "data": "Middlebury 2014 Motorcycle (741x500), simulated LiDAR"}

    def report(step: int, losses: dict[str, float]) -> None:
        print(f"step {step}: loss {losses['total']:.4f} depth {losses['depth']:.4f} "
              f"smoothness {losses['smoothness']:.4f} confidence {losses['confidence']:.4f}", flush=True)

    path = train_depth_completion(bank, config, args.out, str(device), record=record, progress=report)
    print(f"wrote {path}")
    return 0
