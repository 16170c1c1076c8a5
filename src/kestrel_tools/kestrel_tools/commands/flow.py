"""``kestrel flow FIRST SECOND --out F.npy``: dense optical flow of an image pair, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kestrel_core.device import DEVICE_CHOICES, resolve_device
from kestrel_core.flow import LKConfig, dense_lucas_kanade, flow_to_color, opencv_dis_flow
from kestrel_tools.image_io import read_image, write_rgb_png

METHODS = ("lk", "dis")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("flow", help="dense optical flow from one image to another",
                            description="Write an HxWx2 float32 flow (u, v) in pixels from FIRST "
                                        "to SECOND as .npy.")
    parser.add_argument("first", type=Path, help="first image")
    parser.add_argument("second", type=Path, help="second image, same size")
    parser.add_argument("--out", type=Path, required=True, help="output .npy path")
    parser.add_argument("--method", choices=METHODS, default="lk",
                        help="lk: Kestrel pyramidal Lucas-Kanade; dis: OpenCV DIS (medium)")
    parser.add_argument("--device", default="auto",
                        help=f"torch device for lk: one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.add_argument("--color", type=Path, default=None,
                        help="also write the colour-wheel rendering as this .png")
    parser.set_defaults(run=run)


def compute(first: np.ndarray, second: np.ndarray, method: str, device: str) -> np.ndarray:
    """(H, W, 2) float32 flow first -> second by the chosen method (default settings)."""
    if method == "dis":
        return opencv_dis_flow(first, second, "medium")
    flow = dense_lucas_kanade(first, second, LKConfig(), device)
    return flow.permute(1, 2, 0).float().cpu().numpy()


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {args.out}")
    if args.color is not None and args.color.suffix != ".png":
        raise ValueError(f"--color must end in .png, got {args.color}")
    resolve_device(args.device)  # reject a bad device before reading anything
    first, second = read_image(args.first), read_image(args.second)
    flow = compute(first, second, args.method, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, flow.astype(np.float32, copy=False))
    if args.color is not None:
        write_rgb_png(args.color, flow_to_color(flow))
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    print(f"wrote {args.out}: {flow.shape[1]}x{flow.shape[0]}, method={args.method}, "
          f"median |flow| {np.median(magnitude):.2f} px")
    return 0
