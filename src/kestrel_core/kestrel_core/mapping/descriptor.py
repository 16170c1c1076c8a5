"""A rotation-invariant global descriptor of an egocentric grid, for place recognition.

The hit channel is sampled on a polar grid (rings x sectors) around the sensor. Each ring
contributes its occupied fraction and the magnitudes of its first angular Fourier
harmonics; a heading change only shifts the sectors, which leaves both unchanged. Used as
the place embedding when no learned (SSL) embedding is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kestrel_core.mapping.egocentric import HITS


@dataclass(frozen=True)
class DescriptorConfig:
    """Polar sampling: ``rings`` x ``sectors`` samples, ``harmonics`` Fourier terms per ring."""

    rings: int = 16
    sectors: int = 64
    harmonics: int = 8

    def __post_init__(self) -> None:
        if self.rings < 1 or self.sectors < 4 or not 0 <= self.harmonics < self.sectors // 2:
            raise ValueError("need rings >= 1, sectors >= 4 and 0 <= harmonics < sectors / 2")

    @property
    def dimension(self) -> int:
        return self.rings * (1 + self.harmonics)


def grid_descriptor(ego: torch.Tensor, config: DescriptorConfig = DescriptorConfig()) -> torch.Tensor:
    """(D,) unit-norm descriptor of a (C, S, S) egocentric grid; D = rings * (1 + harmonics)."""
    occupied = (ego[HITS] > 0).to(torch.float32)[None, None]
    occupied = F.max_pool2d(occupied, 3, stride=1, padding=1)  # tolerate sub-cell shifts
    radii = (torch.arange(config.rings, device=ego.device, dtype=torch.float32) + 1.0) / config.rings
    angles = torch.arange(config.sectors, device=ego.device, dtype=torch.float32) * (
        2.0 * torch.pi / config.sectors)
    grid = torch.stack((radii[:, None] * torch.cos(angles)[None, :],
                        radii[:, None] * torch.sin(angles)[None, :]), dim=-1)  # (R, A, 2)
    polar = F.grid_sample(occupied, grid[None], align_corners=True)[0, 0]  # (R, A)
    spectrum = torch.fft.rfft(polar, dim=1).abs() / config.sectors
    descriptor = torch.cat((polar.mean(dim=1, keepdim=True),
                            spectrum[:, 1:1 + config.harmonics]), dim=1).flatten()
    return descriptor / descriptor.norm().clamp_min(1e-9)
