"""``kestrel complete-depth IMAGE SPARSE.npy --out DENSE.npy``: dense depth from sparse LiDAR.

``SPARSE.npy`` is either an ``(H, W)`` sparse depth image in metres (NaN or <= 0 where
empty) or ``(N, 3)`` points in the camera's optical frame (x right, y down, z forward, m),
projected with ``--fx --fy --cx --cy`` (z-buffered: the nearest point wins a pixel).

Methods: ``classic`` (default) is the best training-free method, the image-guided
edge-aware diffusion (:func:`~kestrel_core.fusion.guided_completion.complete_depth_guided`);
``morphological`` the older IP-Basic-style completion that ignores the image; ``learned`` the
small U-Net refining the ``classic`` result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from kestrel_core.device import resolve_device
from kestrel_core.fusion import complete_depth_classical, project_points, sparse_depth_image
from kestrel_core.fusion.guided_completion import complete_depth_guided
from kestrel_core.fusion.learned_completion import complete_depth_learned, load_completion_model
from kestrel_core.geometry.camera import PinholeCamera
from kestrel_tools.image_io import read_image

METHODS = ("classic", "morphological", "learned")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("complete-depth", help="complete a sparse LiDAR depth with the image",
                            description="Write an HxW float32 dense depth (metres) as .npy from an "
                                        "image and a sparse depth image or camera-frame points.")
    parser.add_argument("image", type=Path, help="camera image (any format OpenCV reads)")
    parser.add_argument("sparse", type=Path, help="(H, W) sparse depth or (N, 3) camera points, .npy")
    for name in ("fx", "fy", "cx", "cy"):
        parser.add_argument(f"--{name}", type=float, help="rectified intrinsics in pixels "
                                                          "(needed for (N, 3) points)")
    parser.add_argument("--out", type=Path, required=True, help="output .npy path")
    parser.add_argument("--method", choices=METHODS, default="classic",
                        help="classic: image-guided edge-aware diffusion; morphological: IP-Basic "
                             "style, image not used; learned: small U-Net refining classic")
    parser.add_argument("--model", type=Path, help="learned model checkpoint (default: shipped)")
    parser.add_argument("--confidence-out", type=Path, help="also write the (H, W) confidence .npy")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (learned)")
    parser.set_defaults(run=run)


def sparse_from_points(points: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                       height: int, width: int) -> np.ndarray:
    """``(H, W)`` float32 sparse depth (NaN empty) of ``(N, 3)`` optical-frame points."""
    camera = PinholeCamera(width, height, np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), distortion_model="")
    projection = project_points(torch.from_numpy(points.astype(np.float32)), np.eye(4), camera)
    return sparse_depth_image(projection, height, width).numpy().astype(np.float32)


def load_sparse(path: Path, args: argparse.Namespace, height: int, width: int) -> np.ndarray:
    sparse = np.load(path, allow_pickle=False)
    if sparse.ndim == 2 and sparse.shape == (height, width):
        return sparse.astype(np.float32)
    if sparse.ndim == 2 and sparse.shape[1] == 3:
        missing = [f"--{n}" for n in ("fx", "fy", "cx", "cy") if getattr(args, n) is None]
        if missing:
            raise ValueError(f"{path} holds (N, 3) points: give {' '.join(missing)}")
        return sparse_from_points(sparse, args.fx, args.fy, args.cx, args.cy, height, width)
    raise ValueError(f"{path} must be a ({height}, {width}) depth image or (N, 3) points, got {sparse.shape}")


def run(args: argparse.Namespace) -> int:
    for path, name in ((args.out, "--out"), (args.confidence_out, "--confidence-out")):
        if path is not None and path.suffix != ".npy":
            raise ValueError(f"{name} must end in .npy, got {path}")
    device = resolve_device(args.device)
    image = read_image(args.image)
    if image.ndim == 3 and image.shape[2] != 3:
        raise ValueError(f"{args.image}: expected an RGB or grey image, got {image.shape[2]} channels")
    image = image if image.dtype == np.uint8 else (image / 257).astype(np.uint8)
    sparse = load_sparse(args.sparse, args, image.shape[0], image.shape[1])
    measured = np.isfinite(sparse) & (sparse > 0)
    if not measured.any():
        raise ValueError(f"{args.sparse} has no valid depth inside the image")
    if args.method == "learned":
        model = load_completion_model(args.model, device)
        dense, confidence = complete_depth_learned(image, sparse, model, device)
    elif args.method == "morphological":
        dense, confidence = complete_depth_classical(sparse)
    else:
        dense, confidence = complete_depth_guided(sparse, image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, dense.astype(np.float32, copy=False))
    if args.confidence_out is not None:
        np.save(args.confidence_out, confidence.astype(np.float32, copy=False))
    print(f"wrote {args.out}: {dense.shape[1]}x{dense.shape[0]}, method={args.method}, "
          f"{measured.sum()} measured pixels ({measured.mean():.2%}), "
          f"depth {np.nanmin(dense):.2f}-{np.nanmax(dense):.2f} m")
    return 0
