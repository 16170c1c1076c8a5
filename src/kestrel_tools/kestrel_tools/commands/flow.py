"""``kestrel flow FIRST SECOND --out F.npy``: dense optical flow of an image pair, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kestrel_core.device import DEVICE_CHOICES, resolve_device
from kestrel_core.flow import FLOW_METHODS, FlowEstimator, flow_to_color
from kestrel_tools.image_io import read_image, write_rgb_png


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("flow", help="dense optical flow from one image to another",
                            description="Write an HxWx2 float32 flow (u, v) in pixels from FIRST "
                                        "to SECOND as .npy.")
    parser.add_argument("first", type=Path, help="first image")
    parser.add_argument("second", type=Path, help="second image, same size")
    parser.add_argument("--out", type=Path, required=True, help="output .npy path")
    parser.add_argument("--method", choices=FLOW_METHODS, default="lk",
                        help="lk: Kestrel pyramidal Lucas-Kanade (fast); coarse_to_fine: Kestrel "
                             "block matching + smoothed Lucas-Kanade with occlusion filling (most "
                             "accurate, slow on the CPU); learned: Kestrel's network (the shipped "
                             "model unless --model); dis: OpenCV DIS (medium)")
    parser.add_argument("--model", type=Path, default=None,
                        help="flow checkpoint for --method learned (from kestrel train flow)")
    parser.add_argument("--device", default="auto",
                        help=f"torch device for the Kestrel methods: one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.add_argument("--color", type=Path, default=None,
                        help="also write the colour-wheel rendering as this .png")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {args.out}")
    if args.color is not None and args.color.suffix != ".png":
        raise ValueError(f"--color must end in .png, got {args.color}")
    if args.model is not None and args.method != "learned":
        raise ValueError("--model is only used with --method learned")
    resolve_device(args.device)  # reject a bad device before reading anything
    estimator = FlowEstimator(args.method, args.device, model_path=args.model)
    first, second = read_image(args.first), read_image(args.second)
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(f"images differ in size: {args.first} is {first.shape[1]}x{first.shape[0]}, "
                         f"{args.second} is {second.shape[1]}x{second.shape[0]}")
    flow = estimator(first, second, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, flow.astype(np.float32, copy=False))
    if args.color is not None:
        write_rgb_png(args.color, flow_to_color(flow))
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    print(f"wrote {args.out}: {flow.shape[1]}x{flow.shape[0]}, method={args.method}, "
          f"median |flow| {np.median(magnitude):.2f} px")
    return 0
