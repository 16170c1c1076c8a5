"""``kestrel discover IMAGE --out M.npz``: unsupervised objects of one image, offline: MaskCut,
or with ``--head`` the self-trained objectness head (``kestrel train discovery``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kestrel_core.device import DEVICE_CHOICES, resolve_device
from kestrel_core.discovery import DiscoveryConfig, MaskCutConfig, discover_objects
from kestrel_core.discovery.pipeline import as_rgb
from kestrel_core.discovery.visualize import instance_overlay
from kestrel_tools.image_io import read_image, write_rgb_png


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("discover", help="unsupervised object masks of an image (MaskCut)",
                            description="Write masks (int32 HxW: 0 background, k object k) and "
                                        "scores (float32 per object) to an .npz file.")
    parser.add_argument("image", type=Path, help="RGB (or grey) image file")
    parser.add_argument("--out", type=Path, required=True, help="output .npz path")
    parser.add_argument("--max-objects", type=int, default=3, help="most objects to find (>= 1)")
    parser.add_argument("--tau", type=float, default=MaskCutConfig.tau,
                        help="affinity threshold on the centred key cosine")
    parser.add_argument("--model", type=Path, default=None,
                        help="feature checkpoint; default: the best model this installation has")
    parser.add_argument("--size", type=int, default=480, help="longer side of the model input in pixels")
    parser.add_argument("--device", default="cpu",
                        help=f"torch device: one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.add_argument("--head", nargs="?", const="shipped", default=None, metavar="PATH",
                        help="use the self-trained head (kestrel train discovery) instead of "
                             "MaskCut; without PATH the shipped discovery_head_small")
    parser.add_argument("--overlay", type=Path, default=None, help="also write the masks over the image as .png")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    if args.overlay is not None and args.overlay.suffix != ".png":
        raise ValueError(f"--overlay must end in .png, got {args.overlay}")
    config = DiscoveryConfig(size=args.size, maskcut=MaskCutConfig(max_objects=args.max_objects, tau=args.tau))
    device = resolve_device(args.device)
    image = as_rgb(read_image(args.image))  # ValueError for 16-bit or 4-channel files
    from kestrel_core.features.checkpoint import load_feature_model  # heavy: after the cheap checks

    model = load_feature_model(args.model, device)
    if args.head is None:
        found = discover_objects(image, model, config)
    else:
        from kestrel_core.discovery.head import (DecodeConfig, HeadDiscoveryConfig, discover_with_head,
                                                 load_discovery_head)

        head = load_discovery_head(None if args.head == "shipped" else args.head, device)
        found = discover_with_head(image, model, head, HeadDiscoveryConfig(
            size=args.size, decode=DecodeConfig(max_objects=args.max_objects)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, masks=found.instances.astype(np.int32), scores=found.scores.astype(np.float32))
    if args.overlay is not None:
        write_rgb_png(args.overlay, instance_overlay(image, found.instances))
    areas = np.bincount(found.instances.ravel(), minlength=found.count + 1)[1:] / found.instances.size
    described = ", ".join(f"{k + 1}: {100 * a:.1f}% score {s:.2f}" for k, (a, s) in enumerate(zip(areas, found.scores)))
    print(f"wrote {args.out}: {found.count} object(s) with {model.model_id} at "
          f"{found.grid[1]}x{found.grid[0]} tokens{' (' + described + ')' if described else ''}")
    return 0
