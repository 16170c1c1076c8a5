"""``kestrel stereo LEFT RIGHT --out D.npy``: disparity of a rectified pair, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kestrel_core.device import DEVICE_CHOICES
from kestrel_core.stereo import OpenCVSGBMConfig, SGMConfig, compute_disparity, opencv_sgbm_disparity
from kestrel_tools.image_io import read_image


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stereo", help="disparity of a rectified stereo pair",
                            description="Write an HxW float32 disparity (left-image pixels, NaN "
                                        "where invalid) as .npy.")
    parser.add_argument("left", type=Path, help="left rectified image")
    parser.add_argument("right", type=Path, help="right rectified image")
    parser.add_argument("--out", type=Path, required=True, help="output .npy path")
    parser.add_argument("--max-disparity", type=int, default=128, help="disparities searched")
    parser.add_argument("--method", choices=("sgm", "opencv"), default="sgm")
    parser.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.set_defaults(run=run)


def compute(left: np.ndarray, right: np.ndarray, method: str, max_disparity: int,
            device: str) -> np.ndarray:
    """(H, W) float32 disparity by the chosen method."""
    if method == "opencv":
        return opencv_sgbm_disparity(left, right, OpenCVSGBMConfig(max_disparity=max_disparity))
    result = compute_disparity(left, right, SGMConfig(max_disparity=max_disparity), device)
    return result.disparity.cpu().numpy()


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {args.out}")
    left, right = read_image(args.left), read_image(args.right)
    disparity = compute(left, right, args.method, args.max_disparity, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, disparity.astype(np.float32))
    valid = np.isfinite(disparity)
    print(f"wrote {args.out}: {disparity.shape[1]}x{disparity.shape[0]}, "
          f"{valid.mean():.1%} valid, method={args.method}")
    return 0
