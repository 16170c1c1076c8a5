"""A small coarse-to-fine flow network: feature pyramid, local correlation, filtered matching.

Architecture (in the spirit of PWC-Net and of cost-volume filtering, sized for a CPU):

1. **Feature pyramid.** One encoder, shared by both frames, halves the resolution once per
   level; the finest ``output_level`` and every coarser level are used.
2. **Coarse to fine.** At the coarsest level the flow starts at zero. At each level the
   flow from the level above is upsampled (and doubled); then, ``iterations`` times, frame
   2's features are warped by the current flow and a local correlation volume of radius
   ``radius`` is built against frame 1's features.
3. **Filtered matching.** A cost filter shared by all levels reads ``[correlation, frame-1
   features]`` and returns a correction of every displacement's score. The update is the
   expected displacement under the softmax of ``temperature * correlation + correction``:
   a convex combination of the window's displacements. It never sees the flow itself, only
   the features it aligned, so it cannot extrapolate a motion it was handed (an earlier
   decoder that regressed a residual from ``[correlation, features, flow]`` did: it doubled
   real shifts). A step is bounded by the window, and a static scene stays static.
4. **Output.** The flow at ``1 / 2**(output_level + 1)`` is upsampled bilinearly to the
   input size (and scaled), so it is in pixels of the input.

Inputs are padded to a multiple of the coarsest stride and the flow is cropped back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kestrel_core.flow.learned.correlation import local_correlation
from kestrel_core.geometry.warp import backward_warp

__all__ = ["FlowNetConfig", "PyramidFlowNet"]

# ImageNet statistics are not needed: frames are centred per image instead (robust to
# exposure changes between recordings).


@dataclass(frozen=True)
class FlowNetConfig:
    """Shape of :class:`PyramidFlowNet`.

    Attributes:
        channels: encoder output channels per level, finest first; level ``i`` has stride
            ``2**(i + 1)``. Its length is the number of levels.
        output_level: index into ``channels`` of the finest level the flow is estimated at
            (1: stride 4).
        radius: correlation radius in feature pixels of each level.
        iterations: matching updates per level.
        filter_width: width of the shared cost filter's hidden layers.
        feature_width: channels that each level's features are projected to before the filter.
    """

    channels: tuple[int, ...] = (16, 32, 64, 96)
    output_level: int = 1
    radius: int = 4
    iterations: int = 2
    filter_width: int = 32
    feature_width: int = 32

    def __post_init__(self) -> None:
        if len(self.channels) < 2 or any(c < 1 for c in self.channels):
            raise ValueError(f"channels needs at least two positive entries, got {self.channels}")
        if not 0 <= self.output_level < len(self.channels):
            raise ValueError(f"output_level must index channels, got {self.output_level}")
        if self.radius < 1 or self.iterations < 1:
            raise ValueError(f"radius and iterations must be >= 1, got {self.radius}, {self.iterations}")
        if self.filter_width < 8 or self.feature_width < 1:
            raise ValueError("filter_width must be >= 8 and feature_width >= 1")

    @property
    def stride(self) -> int:
        """Input padding multiple: the stride of the coarsest level."""
        return 2 ** len(self.channels)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "FlowNetConfig":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "channels" in known:
            known["channels"] = tuple(known["channels"])
        return cls(**known)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.1, inplace=True))


def _unit_descriptors(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` features centred per channel over the image, then of unit length per
    pixel. After a ReLU-like layer all features are positive and every cosine is close to 1;
    centring makes the correlation discriminative from the first training step."""
    centred = features - features.mean(dim=(2, 3), keepdim=True)
    return F.normalize(centred, dim=1)


class FeaturePyramid(nn.Module):
    """``(B, 3, H, W)`` -> list of ``(B, channels[i], H / 2**(i+1), W / 2**(i+1))``."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        widths = (3,) + tuple(channels)
        self.levels = nn.ModuleList(
            nn.Sequential(_conv(widths[i], widths[i + 1], stride=2), _conv(widths[i + 1], widths[i + 1]))
            for i in range(len(channels)))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            image = level(image)
            features.append(image)
        return features


class CostFilter(nn.Module):
    """``(B, K, h, w)`` correlation and ``(B, F, h, w)`` features -> ``(B, K, h, w)`` score
    corrections, one per displacement of the window; shared by every level.

    The last layer starts at zero, so an untrained filter leaves the plain soft-argmax of the
    correlation."""

    def __init__(self, window: int, feature_width: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(window + feature_width, width), _conv(width, width, dilation=2),
            _conv(width, width, dilation=4), nn.Conv2d(width, window, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, correlation: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([correlation, features], dim=1))


class PyramidFlowNet(nn.Module):
    """Optical flow from frame 1 to frame 2 (see the module docstring).

    ``forward(first, second)`` takes ``(B, 3, H, W)`` float RGB in ``[0, 1]`` and returns the
    list of flows from coarsest to finest, each ``(B, 2, h_l, w_l)`` in pixels of its level,
    followed by the full-resolution ``(B, 2, H, W)`` flow in input pixels. Use
    :meth:`estimate` for the final flow only.
    """

    def __init__(self, config: FlowNetConfig = FlowNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.pyramid = FeaturePyramid(config.channels)
        self.project = nn.ModuleList(
            nn.Conv2d(c, config.feature_width, 1) for c in config.channels[config.output_level:])
        window = (2 * config.radius + 1) ** 2
        self.cost_filter = CostFilter(window, config.feature_width, config.filter_width)
        self.log_temperature = nn.Parameter(torch.tensor(float(math.log(20.0))))
        offsets = torch.arange(-config.radius, config.radius + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
        # (1, K, 2, 1, 1): the displacement (dx, dy) of each correlation channel.
        self.register_buffer("displacements", torch.stack([dx, dy], -1).reshape(1, -1, 2, 1, 1),
                             persistent=False)

    @staticmethod
    def _normalise(image: torch.Tensor) -> torch.Tensor:
        return image - image.mean(dim=(1, 2, 3), keepdim=True)

    def _pad(self, image: torch.Tensor) -> torch.Tensor:
        multiple = self.config.stride
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % multiple, -width % multiple
        return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> list[torch.Tensor]:
        if first.ndim != 4 or first.shape != second.shape or first.shape[1] != 3:
            raise ValueError(f"frames must be two (B, 3, H, W) tensors of one shape, got "
                             f"{tuple(first.shape)} and {tuple(second.shape)}")
        height, width = first.shape[-2:]
        pyramids = [self.pyramid(self._pad(self._normalise(frame))) for frame in (first, second)]
        used = range(len(self.config.channels) - 1, self.config.output_level - 1, -1)
        flow = None
        flows = []
        for level in used:
            f1, f2 = (_unit_descriptors(pyramid[level]) for pyramid in pyramids)
            if flow is None:
                flow = f1.new_zeros(f1.shape[0], 2, *f1.shape[-2:])
            else:
                flow = 2.0 * F.interpolate(flow, size=f1.shape[-2:], mode="bilinear", align_corners=False)
            projected = self.project[level - self.config.output_level](pyramids[0][level])
            for _ in range(self.config.iterations):
                warped, _ = backward_warp(f2, flow, padding="zeros")
                # Unit features: channel-summed correlation is the cosine similarity.
                correlation = local_correlation(f1, warped, self.config.radius) * f1.shape[1]
                scores = (self.log_temperature.exp() * correlation
                          + self.cost_filter(correlation, projected))
                weights = torch.softmax(scores, dim=1)                       # (B, K, h, w)
                flow = flow + (weights.unsqueeze(2) * self.displacements).sum(dim=1)
            flows.append(flow)
        stride = 2 ** (self.config.output_level + 1)
        padded_h, padded_w = flow.shape[-2] * stride, flow.shape[-1] * stride
        full = stride * F.interpolate(flow, size=(padded_h, padded_w), mode="bilinear",
                                      align_corners=False)
        flows.append(full[..., :height, :width])
        return flows

    def estimate(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """``(B, 2, H, W)`` flow from ``first`` to ``second`` in input pixels."""
        return self.forward(first, second)[-1]
