"""Learned depth completion: image + sparse LiDAR depth -> dense depth + confidence.

A small U-Net refines the image-guided classical completion
(:func:`~kestrel_core.fusion.guided_completion.complete_depth_guided`, the "prefill") with
the image and the prefill's own confidence. Its output acts on the prefill in one of two
ways (``CompletionNetConfig.head``); with the zero-initialised head the network starts as
the classical method either way:

- ``residual``: a log-depth residual, ``depth = prefill * exp(residual * (1 -
  prefill_confidence))``. The gate leaves the prefill where it is reliable (at and next to
  measurements, away from depth edges) and lets the network correct it where the
  classical method is unsure.
- ``propagation``: per-pixel scales of the classical method's own edge weights (Lab colour
  similarity between neighbours), then Jacobi sweeps of its diffusion from the prefill
  (:mod:`kestrel_core.fusion.affinity_propagation`): depth keeps being a weighted mean of
  measurements, but spreads along the edges the network learned.

A second output gives a confidence in ``[0, 1]``: the predicted probability that the
depth lies within ``confidence_tolerance`` (relative) of the truth. Measured pixels keep
their measured depth. Inputs are normalised by the median measured depth of each image, so
the network sees relative depth and works at any scene scale.

Training (self-supervised from held-out LiDAR points, no dense ground truth) lives in
``kestrel_tools.training.depth_completion``; :func:`depth_completion_loss` is its objective.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kestrel_core.checkpoints import load_weights_strict, read_checkpoint, save_model
from kestrel_core.fusion.affinity_propagation import edge_weights, propagate, rgb_to_lab
from kestrel_core.fusion.guided_completion import GuidedCompletionConfig, complete_depth_guided
from kestrel_core.fusion.occlusion import remove_occluded_points
from kestrel_core.losses import edge_aware_smoothness

__all__ = [
    "CompletionNetConfig",
    "DepthCompletionNet",
    "complete_depth_learned",
    "depth_completion_loss",
    "load_completion_model",
    "prefill_depth",
    "save_completion_model",
]

CHECKPOINT_FORMAT = "kestrel-depth-completion-2"
SHIPPED_MODEL = "depth_completion_small"
IN_CHANNELS = 7  # rgb, measured mask, sparse / scale, log(prefill / scale), prefill confidence
HEADS = ("residual", "propagation")
MAX_LOG_AFFINITY_SCALE = 4.0  # the propagation head rescales edge weights by exp(+-4) at most


@dataclass(frozen=True)
class CompletionNetConfig:
    """Architecture: ``base_channels`` at full resolution, doubled per level (``levels`` >= 1).

    ``confidence_tolerance`` is the relative depth error counted as correct by the
    confidence head.

    ``head`` picks how the U-Net's output changes the prefill: ``residual`` predicts a
    log-depth correction gated by ``1 - prefill_confidence`` and bounded by
    ``max_log_residual`` (``exp(+-1)`` = x0.37 .. x2.7 by default, enough to swap a
    foreground and a background depth at an object edge); ``propagation`` rescales the
    guided method's Lab edge weights (``colour_sigma``, ``weight_floor``, as in
    :class:`GuidedCompletionConfig`) per pixel and runs ``sweeps`` Jacobi sweeps of the
    diffusion from the prefill (:mod:`kestrel_core.fusion.affinity_propagation`).
    """

    base_channels: int = 8
    levels: int = 3
    confidence_tolerance: float = 0.05
    max_log_residual: float = 1.0
    head: str = "residual"
    sweeps: int = 48
    colour_sigma: float = GuidedCompletionConfig.colour_sigma
    weight_floor: float = GuidedCompletionConfig.weight_floor

    def __post_init__(self) -> None:
        if self.base_channels < 1 or self.levels < 1 or self.sweeps < 1:
            raise ValueError("base_channels, levels and sweeps must be >= 1")
        if not self.confidence_tolerance > 0 or not self.max_log_residual > 0:
            raise ValueError("confidence_tolerance and max_log_residual must be > 0")
        if not self.colour_sigma > 0 or not self.weight_floor > 0:
            raise ValueError("colour_sigma and weight_floor must be > 0")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")


def _block(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.LeakyReLU(0.1),
    )


class DepthCompletionNet(nn.Module):
    """U-Net refining a prefilled depth map with the image."""

    def __init__(self, config: CompletionNetConfig = CompletionNetConfig()) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_channels * 2**level for level in range(config.levels + 1)]
        self.stem = _block(IN_CHANNELS, widths[0])
        self.down = nn.ModuleList(_block(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(_block(b + a, a) for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Conv2d(widths[0], 3 if config.head == "propagation" else 2, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, sparse: torch.Tensor, prefill: torch.Tensor,
                prefill_confidence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Complete a batch.

        Args:
            image: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            sparse: ``(B, 1, H, W)`` metres, 0 or NaN where not measured.
            prefill: ``(B, 1, H, W)`` dense positive metres (e.g. :func:`prefill_depth`).
            prefill_confidence: ``(B, 1, H, W)`` in ``[0, 1]``, the prefill's confidence.

        Returns:
            ``depth (B, 1, H, W)`` metres and ``confidence (B, 1, H, W)`` in ``[0, 1]``.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        expected = (image.shape[0], 1, *image.shape[-2:])
        shapes = (sparse.shape, prefill.shape, prefill_confidence.shape)
        if any(shape != expected for shape in shapes):
            raise ValueError(f"sparse, prefill and prefill_confidence must be {expected}, got {shapes}")
        measured = torch.isfinite(sparse) & (sparse > 0)
        sparse = torch.where(measured, sparse, torch.zeros_like(sparse))
        scale = _median_scale(sparse, measured, prefill)
        features = torch.cat((image, measured.to(image.dtype), sparse / scale, torch.log(prefill / scale),
                              prefill_confidence), dim=1)
        height, width = image.shape[-2:]
        multiple = 2**self.config.levels
        pad = (0, (-width) % multiple, 0, (-height) % multiple)
        x = F.pad(features, pad, mode="replicate")
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in reversed(self.up):
            skip = skips.pop()
            x = up(torch.cat((F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip), 1))
        out = self.head(x)[..., :height, :width]
        if self.config.head == "propagation":
            completed = self._propagate(image, sparse, measured, prefill, out[:, :2])
        else:
            gate = 1.0 - prefill_confidence.clamp(0.0, 1.0)
            completed = prefill * torch.exp(self.config.max_log_residual * torch.tanh(out[:, :1]) * gate)
        depth = torch.where(measured, sparse, completed)
        confidence = torch.where(measured, torch.ones_like(depth), torch.sigmoid(out[:, -1:] + 2.0))
        return depth, confidence

    def _propagate(self, image: torch.Tensor, sparse: torch.Tensor, measured: torch.Tensor,
                   prefill: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """Jacobi sweeps from the prefill along the Lab edge weights rescaled by
        ``exp(log_scale)`` (``(B, 2, H, W)``: horizontal, vertical; an edge takes the mean
        of its two pixels' values)."""
        horizontal, vertical = edge_weights(rgb_to_lab(image), self.config.colour_sigma, self.config.weight_floor)
        log_scale = log_scale.clamp(-MAX_LOG_AFFINITY_SCALE, MAX_LOG_AFFINITY_SCALE)
        horizontal = horizontal * torch.exp(0.5 * (log_scale[:, :1, :, 1:] + log_scale[:, :1, :, :-1]))
        vertical = vertical * torch.exp(0.5 * (log_scale[:, 1:, 1:, :] + log_scale[:, 1:, :-1, :]))
        return propagate(prefill, sparse, measured, horizontal, vertical, self.config.sweeps)


def _median_scale(sparse: torch.Tensor, measured: torch.Tensor, prefill: torch.Tensor) -> torch.Tensor:
    """``(B, 1, 1, 1)`` median measured depth per image (median prefill where none)."""
    values = torch.where(measured, sparse, torch.full_like(sparse, float("nan"))).flatten(1)
    scale = values.nanmedian(dim=1).values
    scale = torch.where(torch.isfinite(scale), scale, prefill.flatten(1).median(dim=1).values)
    return scale.clamp_min(1e-3).view(-1, 1, 1, 1)


def prefill_depth(sparse: np.ndarray, image: np.ndarray,
                  config: GuidedCompletionConfig = GuidedCompletionConfig()
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's inputs besides the image, from ``(H, W)`` sparse metres and the
    ``(H, W, 3)`` image: the sparse depth without its occluded points (``config.occlusion``),
    and the guided classical completion of it, as three ``(H, W)`` float32 arrays
    ``(kept sparse, prefill depth, prefill confidence)``.

    Raises ``ValueError`` when no pixel is measured (there is nothing to complete from).
    """
    sparse = np.asarray(sparse, dtype=np.float32)
    if config.occlusion is not None:
        sparse, _ = remove_occluded_points(sparse, config.occlusion)
    dense, confidence = complete_depth_guided(sparse, image, replace(config, occlusion=None))
    if not np.isfinite(dense).all():
        raise ValueError("the sparse depth has no valid measurement")
    return sparse, np.maximum(dense, 1e-3).astype(np.float32), confidence


def depth_completion_loss(depth: torch.Tensor, confidence: torch.Tensor, target: torch.Tensor,
                          image: torch.Tensor, smoothness_weight: float, tolerance: float
                          ) -> dict[str, torch.Tensor]:
    """Self-supervised objective on held-out LiDAR points.

    Args:
        depth, confidence: ``(B, 1, H, W)`` network outputs.
        target: ``(B, 1, H, W)`` held-out measured depths (metres), NaN/0 elsewhere; these
            pixels were *not* given to the network.
        image: ``(B, 3, H, W)`` in ``[0, 1]`` for the edge-aware smoothness.

    Returns:
        ``{"total", "depth", "smoothness", "confidence"}``: the L1 error at the held-out
        points divided by the mean held-out depth of their image (a metric error, weighted
        alike at every depth within an image, made scale-free across images; a per-pixel
        relative error would favour the nearer surface at ambiguous object edges), the
        edge-aware smoothness of depth divided by its mean, and the binary cross-entropy of
        the confidence against "relative error below ``tolerance``".
    """
    held_out = torch.isfinite(target) & (target > 0)
    safe_target = torch.where(held_out, target, torch.ones_like(target))
    count = held_out.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1)
    image_scale = (torch.where(held_out, target, torch.zeros_like(target)).sum(dim=(1, 2, 3), keepdim=True)
                   / count).clamp_min(1e-6)
    absolute_error = (depth - safe_target).abs()
    scaled_error = (absolute_error / image_scale)[held_out]
    depth_term = scaled_error.mean() if scaled_error.numel() else depth.sum() * 0
    relative_error = (absolute_error / safe_target)[held_out]
    normalised = depth / depth.mean(dim=(2, 3), keepdim=True)
    smoothness = edge_aware_smoothness(normalised, image, gamma=10.0)
    correct = (relative_error.detach() < tolerance).to(confidence.dtype)
    predicted = confidence[held_out].clamp(1e-4, 1 - 1e-4)
    confidence_term = F.binary_cross_entropy(predicted, correct) if predicted.numel() else depth_term * 0
    total = depth_term + smoothness_weight * smoothness + 0.1 * confidence_term
    return {"total": total, "depth": depth_term, "smoothness": smoothness, "confidence": confidence_term}


def save_completion_model(path: str | Path, model: DepthCompletionNet, training: dict | None = None) -> Path:
    """Write ``model`` with its config (CPU weights) and a training record; return the path."""
    return save_model(path, model, CHECKPOINT_FORMAT, asdict(model.config), training)


def load_completion_model(path: str | Path | None, device: str | torch.device = "cpu") -> DepthCompletionNet:
    """Load a checkpoint of :func:`save_completion_model` (None: the shipped model), eval mode.

    Raises ``OSError`` for a missing file and ``ValueError`` for a foreign file or key mismatch.
    """
    path, checkpoint = read_checkpoint(path, CHECKPOINT_FORMAT, "depth completion model",
                                       SHIPPED_MODEL)
    model = DepthCompletionNet(CompletionNetConfig(**checkpoint["config"]))
    load_weights_strict(model, checkpoint["state_dict"], path)
    return model.to(device).eval()


def complete_depth_learned(image: np.ndarray, sparse: np.ndarray, model: DepthCompletionNet,
                           device: str | torch.device = "cpu",
                           prefill_config: GuidedCompletionConfig = GuidedCompletionConfig(),
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Complete one image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey, repeated to 3 channels).
        sparse: ``(H, W)`` metres, NaN or <= 0 where empty.
        model: from :func:`load_completion_model`, on ``device``.

    Returns:
        ``dense (H, W)`` float32 metres and ``confidence (H, W)`` float32 in ``[0, 1]``;
        with no measurement at all, all-NaN depth and zero confidence. Points failing the
        occlusion test of ``prefill_config`` are treated as empty.
    """
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[:2] != sparse.shape or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} and sparse depth {sparse.shape} must be (H, W, 3) and (H, W)")
    sparse = np.asarray(sparse, dtype=np.float32)
    if not (np.isfinite(sparse) & (sparse > 0)).any():
        return np.full(sparse.shape, np.nan, np.float32), np.zeros(sparse.shape, np.float32)
    sparse, prefill, prefill_confidence = prefill_depth(sparse, image, prefill_config)
    scale = 255.0 if image.dtype == np.uint8 else 1.0

    def batch(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device)[None, None]

    with torch.inference_mode():
        rgb = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float() / scale
        depth, confidence = model(rgb, batch(sparse), batch(prefill), batch(prefill_confidence))
    return depth[0, 0].cpu().numpy(), confidence[0, 0].cpu().numpy()
