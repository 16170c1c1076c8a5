"""The full semi-global matching pipeline and its result type."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kestrel_core.device import resolve_device
from kestrel_core.stereo import compiled
from kestrel_core.stereo.aggregation import aggregate_hwd, aggregation_dtypes
from kestrel_core.stereo.config import SGMConfig
from kestrel_core.stereo.cost import cost_volume_hwd
from kestrel_core.stereo.images import prepare_pair
from kestrel_core.parallel import serial_ops, worker_count
from kestrel_core.stereo.refinement import (
    SelectionCollector,
    left_right_invalid,
    parabola_offset,
    speckle_invalid,
)
from kestrel_core.stereo.workspace import Workspace

__all__ = ["StereoResult", "compute_disparity", "disparity_from_cost_volume", "warm_up", "KERNELS"]

KERNELS = ("auto", "torch")
"""How the aggregation runs: ``"auto"`` uses the compiled CPU kernels
(:mod:`kestrel_core.stereo.compiled`, bit-identical results) where they apply and the torch
reference elsewhere; ``"torch"`` always uses the torch reference, the code that also runs
on CUDA."""


@dataclass(frozen=True)
class StereoResult:
    """Output of the stereo matcher, on the device it ran on.

    Attributes:
        disparity: ``(H, W)`` float32 disparity in left-image pixels,
            ``d = x_left - x_right``; NaN where invalid.
        confidence: ``(H, W)`` float32 in ``[0, 1]``: the uniqueness margin
            ``1 - best / second_best`` of the aggregated cost (second best outside
            ``best +- 1``); 0 where invalid.
    """

    disparity: torch.Tensor
    confidence: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``(H, W)`` bool, True where the disparity is valid."""
        return ~torch.isnan(self.disparity)


def compute_disparity(
    left: object,
    right: object,
    config: SGMConfig | None = None,
    device: str | torch.device = "auto",
    *,
    workspace: Workspace | None = None,
    kernel: str = "auto",
) -> StereoResult:
    """Disparity of a rectified pair by semi-global matching.

    Cost (``config.cost``) -> path aggregation -> winner-takes-all -> sub-pixel parabola
    -> left-right check -> uniqueness check -> speckle filter.

    Args:
        left, right: ``(H, W)`` grey or ``(H, W, 3)`` RGB images, numpy arrays or torch
            tensors, uint8, uint16 or float (see
            :func:`kestrel_core.stereo.images.prepare_pair` for the value scale).
        config: matcher parameters; ``SGMConfig()`` if None.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        workspace: scratch buffers to reuse between calls (recommended for streams; see
            :class:`kestrel_core.stereo.Workspace`).
        kernel: one of :data:`KERNELS`.

    Returns:
        :class:`StereoResult` on ``device``.

    Raises:
        ValueError: bad images (e.g. left and right sizes differ), config, device or kernel.
    """
    config = _check_config(config)
    _check_kernel(kernel)
    dev = resolve_device(device)
    ws = workspace if workspace is not None else Workspace()
    with torch.inference_mode(), serial_ops(dev) as threads:
        gray_left, gray_right = prepare_pair(left, right, dev)
        height, width = gray_left.shape
        workers = worker_count(dev, min(height, width), threads)
        cost_range = (0, config.max_cost)
        # the cost is written straight in the dtype the paths are aggregated in
        like = torch.empty(0, dtype=torch.int16)
        path_dtype, _ = aggregation_dtypes(like, config.p1, config.p2, config.num_paths, cost_range)
        cost_dtype = torch.uint8 if path_dtype == torch.uint8 else torch.int16
        cost = ws.get("sgm_cost", (height, width, config.max_disparity), cost_dtype, dev)
        cost_volume_hwd(gray_left, gray_right, config, out=cost, workers=workers)
        return _from_descending(cost, config, ws, cost_range, workers, kernel)


def disparity_from_cost_volume(
    cost: torch.Tensor,
    config: SGMConfig | None = None,
    *,
    workspace: Workspace | None = None,
    kernel: str = "auto",
) -> StereoResult:
    """Everything after the unary cost: aggregation, selection and filtering.

    Use it to plug in another matching cost (e.g. a learned one); ``config.p1`` and
    ``config.p2`` are in that cost's units, and the uniqueness test assumes costs
    ``>= 0``.

    Args:
        cost: ``(D, H, W)`` with ``D = config.max_disparity``; plane ``i`` is the cost of
            disparity ``config.min_disparity + i``; lower is better; finite. Any real
            dtype, on any device (the computation runs there).
        config: matcher parameters (the cost-type fields are ignored).
        workspace: optional reusable scratch buffers.
        kernel: one of :data:`KERNELS`.

    Returns:
        :class:`StereoResult` on ``cost.device``.

    Raises:
        ValueError: wrong shape or dtype, non-finite values, a disparity count that
            does not match ``config.max_disparity``, or an unknown kernel.
    """
    config = _check_config(config)
    _check_kernel(kernel)
    if not isinstance(cost, torch.Tensor) or cost.ndim != 3:
        raise ValueError(f"cost must be a (D, H, W) torch.Tensor, got {getattr(cost, 'shape', type(cost))}")
    if cost.shape[0] != config.max_disparity:
        raise ValueError(
            f"cost has {cost.shape[0]} disparity planes but config.max_disparity is {config.max_disparity}"
        )
    if min(cost.shape) < 1 or cost.dtype == torch.bool or cost.is_complex():
        raise ValueError(f"cost must be a non-empty real tensor, got {tuple(cost.shape)} {cost.dtype}")
    if cost.dtype.is_floating_point and not bool(torch.isfinite(cost).all()):
        raise ValueError("cost contains NaN or inf; mark invalid matches with a large finite cost")
    ws = workspace if workspace is not None else Workspace()
    with torch.inference_mode(), serial_ops(cost.device) as threads:
        descending = cost.flip(0).permute(1, 2, 0).contiguous()
        workers = worker_count(cost.device, min(cost.shape[1:]), threads)
        return _from_descending(descending, config, ws, None, workers, kernel)


def _check_config(config: SGMConfig | None) -> SGMConfig:
    if config is None:
        return SGMConfig()
    if not isinstance(config, SGMConfig):
        raise ValueError(f"config must be an SGMConfig, got {type(config).__name__}")
    return config


def warm_up(config: SGMConfig | None = None, device: str | torch.device = "auto") -> None:
    """Match a small synthetic pair once with ``config`` on ``device``, so that one-time
    costs are paid before the first real frame: above all, compiling the CPU kernels
    (several seconds where numba's on-disk cache is cold, e.g. on a fresh install)."""
    config = _check_config(config)
    generator = torch.Generator().manual_seed(0)
    width = config.min_disparity + config.max_disparity + 16
    left = torch.randint(0, 256, (16, width), generator=generator, dtype=torch.uint8)
    right = torch.roll(left, -config.min_disparity - 1, dims=1)
    compute_disparity(left, right, config, device)


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _from_descending(
    cost: torch.Tensor,
    config: SGMConfig,
    ws: Workspace,
    cost_range: tuple[int, int] | None,
    workers: int,
    kernel: str,
) -> StereoResult:
    """Aggregate and select on an ``(H, W, D)`` volume whose index ``k`` holds disparity
    ``min_disparity + D - 1 - k``. ``cost_range`` bounds an integer volume (skips a
    min/max pass); ``workers`` aggregate concurrently; ``kernel`` as in
    :data:`KERNELS`."""
    p1, p2, paths = config.p1, config.p2, config.num_paths
    known = cost_range if cost_range is not None and not cost.dtype.is_floating_point else None
    path_dtype, dtype = aggregation_dtypes(cost, p1, p2, paths, known)
    if path_dtype != cost.dtype:
        cost = cost.to(path_dtype)
    largest = config.min_disparity + config.max_disparity - 1  # the disparity of index 0
    total = ws.get("sgm_total", tuple(cost.shape), dtype, cost.device)
    selection = None
    if kernel == "auto" and compiled.supports(cost, paths, dtype):
        try:
            selection = compiled.aggregate_and_select(
                cost.contiguous(), int(p1), int(p2), paths, largest, workers, scratch=total
            )
        except compiled.KernelUnavailable:
            pass  # warned once by the kernels' module; the reference below gives the same result
    if selection is None:
        collector = SelectionCollector(tuple(cost.shape), largest, cost.device)
        aggregate_hwd(cost, p1, p2, paths, out=total, workspace=ws, finalize=collector, workers=workers)
        selection = collector.result()

    disparity = selection.disparity.to(torch.float32)
    if config.subpixel:
        # index k runs opposite to the disparity
        disparity -= parabola_offset(selection.below, selection.cost, selection.above)
    invalid = torch.zeros(disparity.shape, dtype=torch.bool, device=disparity.device)
    if config.lr_check:
        invalid |= left_right_invalid(selection, config.lr_max_diff, integral=dtype == torch.int16)
    best, second = selection.cost, selection.second
    if config.uniqueness_ratio > 0:
        invalid |= second * (1.0 - config.uniqueness_ratio) < best
    confidence = torch.where(second > 0, 1.0 - best / second, torch.zeros_like(best)).clamp_(0.0, 1.0)
    disparity.masked_fill_(invalid, float("nan"))
    if config.speckle_window_size > 0:
        speckles = speckle_invalid(disparity, config.speckle_window_size, config.speckle_range)
        disparity.masked_fill_(speckles, float("nan"))
        invalid |= speckles
    confidence.masked_fill_(invalid, 0.0)
    return StereoResult(disparity=disparity, confidence=confidence)
