"""Configuration of the semi-global matcher."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SGMConfig", "COST_TYPES"]

COST_TYPES = ("ad_gradient", "census")
_MAX_CENSUS_BITS = 93  # three 31-bit words; see kestrel_core.stereo.cost


@dataclass(frozen=True)
class SGMConfig:
    """Parameters of :func:`kestrel_core.stereo.compute_disparity`.

    Disparities are searched in ``[min_disparity, min_disparity + max_disparity)``:
    ``max_disparity`` is the *number* of disparities (OpenCV's ``numDisparities``), so
    the largest disparity searched is ``min_disparity + max_disparity - 1``.

    Matching cost (integer-valued, lower is better):

    * ``"ad_gradient"`` (default, fastest): ``min(|I_l - I_r|, intensity_truncation) +
      min(|G_l - G_r|, gradient_truncation)`` with ``I`` the grey level on a 0-255 scale
      and ``G`` the horizontal Sobel derivative divided by 4 (a grey-level difference
      across two pixels). The maximum cost is the sum of both truncations.
    * ``"census"``: Hamming distance of ``census_width x census_height`` census
      transforms; maximum ``census_width * census_height - 1``. More robust to
      exposure differences, but about twice as slow on a CPU.

    Where the right pixel ``x - d`` falls outside the image the cost is the maximum.

    Attributes:
        max_disparity: number of disparities searched (>= 1).
        min_disparity: smallest disparity searched (may be negative).
        p1: SGM penalty for a disparity change of 1 between neighbours, in cost units.
        p2: SGM penalty for larger changes (``>= p1``). Integer penalties keep the int16
            aggregation; fractional ones fall back to float32 (slower, same result).
        num_paths: 4 (horizontal + vertical) or 8 (plus diagonals).
        cost: ``"ad_gradient"`` or ``"census"``.
        intensity_truncation, gradient_truncation: integer truncations of the
            ``"ad_gradient"`` terms, in grey levels (``intensity_truncation >= 1``;
            ``gradient_truncation = 0`` drops the gradient term; sum <= 1000).
        census_width, census_height: odd census window size (``w * h - 1 <= 93``).
        subpixel: refine the winner with a parabola through its two neighbours.
        lr_check: invalidate pixels whose right-image match does not point back.
        lr_max_diff: allowed left/right disparity difference in pixels (>= 0).
        uniqueness_ratio: invalidate a pixel when the best cost outside ``best +- 1`` is
            below ``best / (1 - uniqueness_ratio)`` (OpenCV's ``uniquenessRatio / 100``;
            0 disables; < 1).
        speckle_window_size: largest connected region of similar disparity removed as a
            speckle, in pixels (0 disables).
        speckle_range: largest disparity step inside one speckle region, in pixels.
    """

    max_disparity: int = 128
    min_disparity: int = 0
    p1: float = 10
    p2: float = 110
    num_paths: int = 4
    cost: str = "ad_gradient"
    intensity_truncation: int = 20
    gradient_truncation: int = 20
    census_width: int = 9
    census_height: int = 7
    subpixel: bool = True
    lr_check: bool = True
    lr_max_diff: float = 1.0
    uniqueness_ratio: float = 0.0
    speckle_window_size: int = 0
    speckle_range: float = 2.0

    def __post_init__(self) -> None:
        _check_int(self.max_disparity, "max_disparity", minimum=1)
        _check_int(self.min_disparity, "min_disparity")
        _check_int(self.num_paths, "num_paths")
        if self.num_paths not in (4, 8):
            raise ValueError(f"num_paths must be 4 or 8, got {self.num_paths}")
        _check_real(self.p1, "p1", minimum=0.0)
        _check_real(self.p2, "p2", minimum=0.0)
        if self.p2 < self.p1:
            raise ValueError(f"p2 must be >= p1, got p1={self.p1}, p2={self.p2}")
        if self.cost not in COST_TYPES:
            raise ValueError(f"cost must be one of {', '.join(COST_TYPES)}; got {self.cost!r}")
        _check_int(self.intensity_truncation, "intensity_truncation", minimum=1)
        _check_int(self.gradient_truncation, "gradient_truncation", minimum=0)
        if self.intensity_truncation + self.gradient_truncation > 1000:
            raise ValueError(
                "intensity_truncation + gradient_truncation must be <= 1000, got "
                f"{self.intensity_truncation + self.gradient_truncation}"
            )
        for name in ("census_width", "census_height"):
            value = getattr(self, name)
            _check_int(value, name, minimum=1)
            if value % 2 == 0:
                raise ValueError(f"{name} must be odd, got {value}")
        bits = self.census_width * self.census_height - 1
        if not 1 <= bits <= _MAX_CENSUS_BITS:
            raise ValueError(
                f"census window {self.census_width}x{self.census_height} has {bits} bits; "
                f"it must have between 1 and {_MAX_CENSUS_BITS}"
            )
        for name in ("subpixel", "lr_check"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_real(self.lr_max_diff, "lr_max_diff", minimum=0.0)
        _check_real(self.uniqueness_ratio, "uniqueness_ratio", minimum=0.0)
        if self.uniqueness_ratio >= 1.0:
            raise ValueError(f"uniqueness_ratio must be in [0, 1), got {self.uniqueness_ratio}")
        _check_int(self.speckle_window_size, "speckle_window_size", minimum=0)
        _check_real(self.speckle_range, "speckle_range", minimum=0.0)

    @property
    def max_cost(self) -> int:
        """Largest value of the unary matching cost (cost units)."""
        if self.cost == "census":
            return self.census_width * self.census_height - 1
        return self.intensity_truncation + self.gradient_truncation

    @property
    def disparity_range(self) -> tuple[int, int]:
        """``(first, last)`` disparity searched, both inclusive."""
        return self.min_disparity, self.min_disparity + self.max_disparity - 1


def _check_int(value: object, name: str, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_real(value: object, name: str, minimum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
