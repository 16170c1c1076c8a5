"""Image in, object instance map out: resize, attention keys, MaskCut, edge-aware refinement.

The image is resized so that its longer side is about ``size`` pixels, each side rounded to
a multiple of the model's patch (``stride``), so the token grid covers the whole image and
every token maps back to an exact rectangle of the original (the aspect ratio changes by
less than half a patch). The feature model's last-layer patch keys feed
:func:`~kestrel_core.discovery.maskcut.maskcut`; the token masks are refined at the
original resolution by :func:`~kestrel_core.discovery.refine.refine_to_instances`.

A constant image (grey-level spread below ``min_contrast`` levels of 255) has no object to
separate: the result is empty without running the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from kestrel_core.discovery.maskcut import MaskCutConfig, MaskCutResult, maskcut
from kestrel_core.discovery.refine import RefineConfig, refine_to_instances

__all__ = ["DiscoveryConfig", "Discovery", "model_input_size", "image_tensor", "as_rgb", "discover_objects"]


@dataclass(frozen=True)
class DiscoveryConfig:
    """Settings of :func:`discover_objects`.

    Attributes:
        size: target longer side in pixels of the model input.
        maskcut: MaskCut settings (objects, affinity threshold).
        refine: pixel refinement settings.
        min_contrast: smallest max-min grey-level spread (of 255) that counts as content.
    """

    size: int = 480
    maskcut: MaskCutConfig = field(default_factory=MaskCutConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    min_contrast: float = 2.0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be at least 1 pixel, got {self.size}")
        if self.min_contrast < 0:
            raise ValueError(f"min_contrast must be >= 0, got {self.min_contrast}")


@dataclass(frozen=True)
class Discovery:
    """Objects of one image.

    Attributes:
        instances: ``(H, W)`` int32, 0 background, ``k`` object ``k`` (``1..K``).
        scores: ``(K,)`` float32 object scores in ``[0, 1]``.
        cut: the token-level :class:`~kestrel_core.discovery.maskcut.MaskCutResult`
            (masks ``(K, h, w)``, per-mask scores and descriptors).
        grid: ``(h, w)`` token grid.
    """

    instances: np.ndarray
    scores: np.ndarray
    cut: MaskCutResult
    grid: tuple[int, int]

    @property
    def count(self) -> int:
        return int(self.scores.shape[0])


def model_input_size(height: int, width: int, size: int, stride: int) -> tuple[int, int]:
    """``(H', W')``: longer side ~``size``, both multiples of ``stride`` and at least one patch."""
    scale = size / max(height, width)
    return (max(stride, int(round(height * scale / stride)) * stride),
            max(stride, int(round(width * scale / stride)) * stride))


def image_tensor(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, height, width)`` float in ``[0, 1]`` (area or
    linear resampling)."""
    shrink = height * width < image.shape[0] * image.shape[1]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return torch.from_numpy(resized).permute(2, 0, 1)[None].float().div_(255.0)


def _empty(height: int, width: int, grid: tuple[int, int], dim: int) -> Discovery:
    cut = MaskCutResult(np.zeros((0, *grid), bool), (), torch.zeros(0, dim))
    return Discovery(np.zeros((height, width), np.int32), np.zeros(0, np.float32), cut, grid)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 image (grey is
    replicated); ValueError for anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must be an (H, W, 3) RGB or (H, W) grey uint8 array, got "
                         f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def discover_objects(image: np.ndarray, model, config: DiscoveryConfig = DiscoveryConfig()) -> Discovery:
    """Unsupervised objects of one RGB image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey.
        model: a :class:`~kestrel_core.features.model.FeatureModel` (its device is used).
        config: see :class:`DiscoveryConfig`.

    Returns:
        A :class:`Discovery` (empty for a constant image or when no cut exists).

    Raises:
        ValueError: not a uint8 RGB or grey image, or smaller than one patch.
    """
    image = as_rgb(image)
    height, width = image.shape[:2]
    if min(height, width) < model.stride:
        raise ValueError(f"image {width}x{height} is smaller than one {model.stride}x{model.stride} patch")
    in_h, in_w = model_input_size(height, width, config.size, model.stride)
    grid = model.grid_size(in_h, in_w)
    if float(image.max()) - float(image.min()) < config.min_contrast:
        return _empty(height, width, grid, model.embed_dim)
    with torch.inference_mode():
        keys = model.attention_keys(image_tensor(image, in_h, in_w))[0]       # (h*w, D)
        cut = maskcut(keys, grid, config.maskcut)
    instances = refine_to_instances(cut.masks, image, config.refine)
    return Discovery(instances, cut.score_array(), cut, grid)
