"""``kestrel train ssl``: DINO, MoCo v2 or SimCLR training of a feature backbone.

Run it plainly on one device, or as ``torchrun --nproc_per_node=N $(which kestrel) train ssl
...`` for data-parallel training (gloo on the CPU, nccl on CUDA).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kestrel_core.device import DEVICE_CHOICES
from kestrel_core.features.backbones import BACKBONE_NAMES
from kestrel_core.features.objectives import METHODS
from kestrel_tools.training import add_source_arguments, sources_from_args
from kestrel_tools.training.ssl import SSLTrainConfig, train_ssl

DEFAULTS = SSLTrainConfig()


def add_parser(tasks: argparse._SubParsersAction) -> None:
    parser = tasks.add_parser("ssl", help="self-supervised feature backbone (DINO, MoCo, SimCLR)",
                              description="Train a feature backbone without labels; writes "
                                          "OUT/backbone.pt (Kestrel feature checkpoint), "
                                          "OUT/checkpoint.pt, OUT/log.csv and OUT/loss.png.")
    parser.add_argument("--method", choices=METHODS, default=DEFAULTS.method)
    parser.add_argument("--arch", choices=BACKBONE_NAMES, default=DEFAULTS.arch,
                        help="backbone (ViTs use patch 8)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps,
                        help="total optimizer steps (a resumed run continues up to it)")
    parser.add_argument("--batch", type=int, default=DEFAULTS.batch, help="images per process")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=DEFAULTS.warmup_steps)
    parser.add_argument("--view-size", type=int, default=DEFAULTS.view_size,
                        help="side of the (global) views in pixels")
    parser.add_argument("--frame-stride", type=int, default=DEFAULTS.frame_stride,
                        help="use every N-th frame of each recording")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every)
    parser.add_argument("--device", default="auto",
                        help=f"torch device: one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = SSLTrainConfig(method=args.method, arch=args.arch, steps=args.steps,
                            batch=args.batch, lr=args.lr, warmup_steps=args.warmup_steps,
                            view_size=args.view_size, frame_stride=args.frame_stride,
                            seed=args.seed, checkpoint_every=args.checkpoint_every)
    train_ssl(config, sources_from_args(args), args.out, args.device, args.resume)
    return 0
