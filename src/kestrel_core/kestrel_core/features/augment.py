"""Torch-only image augmentations for self-supervised feature learning.

Every function works on a whole batch at once, drawing one set of random parameters per
image from an explicit ``torch.Generator`` (on the CPU), so a run is reproducible from its
seed. Images are ``(B, 3, H, W)`` float RGB in ``[0, 1]`` on any device.

* :func:`augment_view` - random resized crop with flip, colour jitter, grayscale, gaussian
  blur and solarize, as set by a :class:`ViewConfig`.
* :func:`two_views` - the two views of MoCo v2 and SimCLR.
* :func:`multi_crop` - DINO's 2 global views and ``n`` local views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, used for grayscale and saturation.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ViewConfig:
    """How one view is drawn. Probabilities are per image.

    ``scale`` is the crop's share of the image area and ``ratio`` its width/height range;
    ``brightness``, ``contrast`` and ``saturation`` are maximum relative changes and ``hue``
    the maximum hue rotation in turns (0.5 = half the colour wheel).
    """

    size: int = 96
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"view size must be at least 8 px, got {self.size}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        for name in ("flip_p", "jitter_p", "gray_p", "blur_p", "solarize_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")


@dataclass(frozen=True)
class MultiCropConfig:
    """DINO's views: two global crops (the second also solarized sometimes) and
    ``n_local`` small crops of a smaller share of the image."""

    global_size: int = 96
    local_size: int = 48
    n_local: int = 4
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)

    def views(self) -> tuple[ViewConfig, ViewConfig, ViewConfig]:
        """The configs of global view 1, global view 2 and the local views."""
        first = ViewConfig(size=self.global_size, scale=self.global_scale, blur_p=1.0)
        second = ViewConfig(size=self.global_size, scale=self.global_scale, blur_p=0.1,
                            solarize_p=0.2)
        local = ViewConfig(size=self.local_size, scale=self.local_scale, blur_p=0.5)
        return first, second, local


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def _chance(generator: torch.Generator, count: int, p: float) -> torch.Tensor:
    return torch.rand(count, generator=generator) < p


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` CPU values as a ``(B, 1, 1, 1)`` tensor on ``like``'s device and dtype."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def random_resized_crop(images: torch.Tensor, size: int, scale: tuple[float, float],
                        ratio: tuple[float, float], flip_p: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Crop a random region of each image (share ``scale`` of the area, aspect ``ratio``),
    flip it horizontally with probability ``flip_p`` and resample it to ``(size, size)``.

    One batched bilinear ``grid_sample``; a crop larger than the image in one direction is
    clamped to the full side. ``(B, 3, H, W) -> (B, 3, size, size)``.
    """
    batch, _, height, width = images.shape
    area = _uniform(generator, batch, *scale)
    log_ratio = _uniform(generator, batch, math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio) * height / width  # crop width/height in normalized units
    half_w = torch.sqrt(area * aspect).clamp(max=1.0)
    half_h = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (1 - half_w) * (2 * torch.rand(batch, generator=generator) - 1)
    centre_y = (1 - half_h) * (2 * torch.rand(batch, generator=generator) - 1)
    flip = torch.where(_chance(generator, batch, flip_p), -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = half_w * flip, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = half_h, centre_y
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, [batch, 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma replicated on three channels: ``(B, 3, H, W) -> (B, 3, H, W)``."""
    weights = images.new_tensor(LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand_as(images)


def _rotate_hue(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma of each image about the gray axis by ``turns`` ``(B,)`` in YIQ."""
    to_yiq = images.new_tensor([[0.299, 0.587, 0.114],
                                [0.596, -0.274, -0.322],
                                [0.211, -0.523, 0.312]])
    angle = 2 * math.pi * turns.to(device=images.device, dtype=images.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(images.shape[0], 3, 3, device=images.device, dtype=images.dtype)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    transform = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", transform, images)


def color_jitter(images: torch.Tensor, config: ViewConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue per image, applied (in that order) to
    the images drawn with probability ``config.jitter_p``; results are clamped to [0, 1]."""
    batch = images.shape[0]
    apply = _per_image(_chance(generator, batch, config.jitter_p).float(), images)
    brightness = _per_image(_uniform(generator, batch, 1 - config.brightness,
                                     1 + config.brightness), images)
    contrast = _per_image(_uniform(generator, batch, 1 - config.contrast,
                                   1 + config.contrast), images)
    saturation = _per_image(_uniform(generator, batch, 1 - config.saturation,
                                     1 + config.saturation), images)
    hue = _uniform(generator, batch, -config.hue, config.hue)
    out = (images * brightness).clamp(0, 1)
    mean_luma = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
    out = (mean_luma + contrast * (out - mean_luma)).clamp(0, 1)
    gray = grayscale(out)
    out = (gray + saturation * (out - gray)).clamp(0, 1)
    out = _rotate_hue(out, hue).clamp(0, 1)
    return apply * out + (1 - apply) * images


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own ``sigma`` ``(B,)`` in pixels (separable, reflect padding,
    kernel radius ``ceil(3 * max(sigma))``). ``(B, C, H, W) -> (B, C, H, W)``."""
    batch, channels, height, width = images.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    radius = min(radius, (min(height, width) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    sigma = sigma.to(device=images.device, dtype=images.dtype).clamp(min=1e-3)
    kernels = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)
    flat = images.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernels.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    flat = F.conv2d(flat, kernels.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return flat.view(batch, channels, height, width)


def solarize(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Invert the values at or above ``threshold``."""
    return torch.where(images >= threshold, 1 - images, images)


def _select(mask: torch.Tensor, changed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.to(images.device).view(-1, 1, 1, 1), changed, images)


def augment_view(images: torch.Tensor, config: ViewConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """One random view of each image: ``(B, 3, H, W) -> (B, 3, size, size)`` in [0, 1]."""
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be float (B, 3, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    batch = images.shape[0]
    out = random_resized_crop(images, config.size, config.scale, config.ratio, config.flip_p,
                              generator)
    out = color_jitter(out, config, generator)
    out = _select(_chance(generator, batch, config.gray_p), grayscale(out), out)
    blur = _chance(generator, batch, config.blur_p)
    sigma = _uniform(generator, batch, *config.blur_sigma)
    if bool(blur.any()):
        out = _select(blur, gaussian_blur(out, sigma), out)
    return _select(_chance(generator, batch, config.solarize_p), solarize(out), out)


def two_views(images: torch.Tensor, config: ViewConfig,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each image (MoCo v2, SimCLR): two ``(B, 3, size, size)``."""
    return augment_view(images, config, generator), augment_view(images, config, generator)


def multi_crop(images: torch.Tensor, config: MultiCropConfig,
               generator: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """DINO's views: 2 global ``(B, 3, G, G)`` and ``n_local`` local ``(B, 3, L, L)`` crops."""
    first, second, local = config.views()
    global_views = [augment_view(images, first, generator),
                    augment_view(images, second, generator)]
    local_views = [augment_view(images, local, generator) for _ in range(config.n_local)]
    return global_views, local_views
