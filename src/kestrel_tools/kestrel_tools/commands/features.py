"""``kestrel features IMAGE --out F.npz``: dense self-supervised features of one image."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from kestrel_core.device import DEVICE_CHOICES, resolve_device
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_core.features.model import rgb_to_batch
from kestrel_tools.image_io import read_image


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "features", help="dense image features from a self-supervised backbone",
        description="Write an .npz with 'features' float32 (C, h, w), where cell (i, j) covers pixels "
                    "[i*stride, (i+1)*stride) x [j*stride, (j+1)*stride) of the (resized) image, "
                    "'stride' int, 'embedding' float32 (D,), 'model_id' str and 'input_size' "
                    "(H, W) of the image the model saw.")
    parser.add_argument("image", type=Path, help="input image (RGB or grey)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz path")
    parser.add_argument("--model", type=Path, default=None,
                        help="Kestrel feature checkpoint; default: the best installed model "
                             "(cached pretrained ViT-S/14, else the shipped ssl_small)")
    parser.add_argument("--device", default="auto",
                        help=f"torch device: one of {', '.join(DEVICE_CHOICES)}, cuda:N")
    parser.add_argument("--size", type=int, default=None,
                        help="resize so that the shorter side has this many pixels (default: as is)")
    parser.set_defaults(run=run)


def prepare_image(image: np.ndarray, size: int | None) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 -> ``(H', W', 3)`` uint8 RGB, shorter side ``size``."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image, got {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if size is None:
        return image
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, new_size, interpolation=interpolation)


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {args.out}")
    if args.size is not None and args.size < 1:
        raise ValueError(f"--size must be positive, got {args.size}")
    device = resolve_device(args.device)
    image = prepare_image(read_image(args.image), args.size)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = load_feature_model(args.model, device)
    if min(image.shape[:2]) < model.stride:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is smaller than the stride {model.stride}")
    batch = rgb_to_batch(image)
    dense, embedding = model.dense_and_embedding(batch)
    features, embedding = dense[0].float().cpu().numpy(), embedding[0].float().cpu().numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, features=features.astype(np.float32, copy=False), stride=np.int64(model.stride),
             embedding=embedding.astype(np.float32, copy=False), model_id=np.str_(model.model_id),
             input_size=np.array(image.shape[:2], dtype=np.int64))
    print(f"wrote {args.out}: features {features.shape[0]}x{features.shape[1]}x{features.shape[2]}, "
          f"stride {model.stride}, model {model.model_id}")
    return 0
