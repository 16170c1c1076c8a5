"""From an aggregated cost volume to a disparity map: winner-takes-all, sub-pixel
parabola, uniqueness and left-right checks, speckle removal."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = [
    "Selection",
    "SelectionCollector",
    "select_block",
    "select",
    "key_dtype_for",
    "parabola_offset",
    "left_right_invalid",
    "speckle_invalid",
]


@dataclass(frozen=True)
class Selection:
    """Winner-takes-all result on a descending volume (index ``k`` holds disparity
    ``d_max - k``), all ``(H, W)``.

    Attributes:
        index: int32 index ``k`` of the minimum (the smallest ``k`` on ties).
        disparity: int32 integer disparity ``d_max - k``.
        cost: float32 minimum cost.
        below, above: float32 costs at ``k - 1`` and ``k + 1`` (inf outside the range).
        second: float32 smallest cost outside ``k - 1 .. k + 1`` (inf if there is none).
    """

    index: torch.Tensor
    disparity: torch.Tensor
    cost: torch.Tensor
    below: torch.Tensor
    above: torch.Tensor
    second: torch.Tensor


def select_block(
    block: torch.Tensor, keys: torch.Tensor | None = None, constants: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Winner-takes-all statistics of an ``(n, W, D)`` block of aggregated costs.

    ``argmin`` is about 3x slower than ``amin`` on a CPU, so the arg-min is read from
    the minimum of a key that carries the index ``k`` in its low ``b`` bits:

    * integer costs: ``key = c * 2**b + k`` (a widening copy and one ``add``); its minimum gives the
      minimum cost and its index together;
    * floating-point costs: ``key = k + 2**b * [c > min_c]``.

    The smallest index wins ties. The second best is the minimum after the costs at
    ``k - 1, k, k + 1`` are overwritten in place, so ``block`` is modified.

    Args:
        block: ``(n, W, D)`` costs, any real dtype.
        keys: optional scratch of at least ``n * W * D`` elements of the key dtype
            (:func:`key_dtype_for`); allocated if None or of another dtype.
        constants: optional dict in which small index tensors are cached between calls
            (blocks of the same shape, dtype and device).

    Returns:
        ``(cost, index, below, above, second)``, each ``(n, W)``: float32 minimum, int64
        index, float32 costs at ``index -+ 1`` (inf outside the range), float32 second
        best outside ``index - 1 .. index + 1`` (inf if there is none).
    """
    n, width, ndisp = block.shape
    bits = max(1, (ndisp - 1).bit_length())
    key_dtype = key_dtype_for(block.dtype, ndisp)
    if keys is None or keys.dtype != key_dtype or keys.numel() < block.numel():
        keys = torch.empty(block.shape, dtype=key_dtype, device=block.device)
    else:
        keys = keys.view(-1)[: block.numel()].view(block.shape)
    cache = constants if constants is not None else {}
    low = _cached(cache, ("low", ndisp, key_dtype, block.device),
                  lambda: torch.arange(ndisp, dtype=key_dtype, device=block.device))
    integer = not key_dtype.is_floating_point and not block.dtype.is_floating_point
    if integer:
        keys.copy_(block)  # widen explicitly: a mixed-dtype add would copy anyway
        torch.add(low, keys, alpha=1 << bits, out=keys)
        packed = torch.amin(keys, dim=-1)
        minimum = (packed >> bits).to(torch.float32)
        index = packed.bitwise_and_((1 << bits) - 1).to(torch.int64)
    else:
        lowest = torch.amin(block, dim=-1, keepdim=True)
        torch.sub(block, lowest, out=keys)
        keys.sign_()  # 1 where above the minimum (costs minus their minimum are >= 0)
        torch.add(low, keys, alpha=1 << bits, out=keys)
        index = torch.amin(keys, dim=-1).to(torch.int64).bitwise_and_((1 << bits) - 1)
        minimum = lowest[..., 0].to(torch.float32)

    # k - 1, k + 1 and k, clamped to the range, stacked as planes ``(3, n, W)``: int64
    # index arithmetic along a short last axis is several times slower
    near_index = torch.stack(((index - 1).clamp_(min=0), (index + 1).clamp_(max=ndisp - 1), index))
    # the second best is searched in the (narrower) costs rather than in the keys
    fill = torch.finfo(block.dtype).max if block.dtype.is_floating_point else torch.iinfo(block.dtype).max
    if block.is_contiguous():
        # flat index_select / put_ are about twice as fast as gather / scatter_ here
        base = _cached(
            cache,
            ("base", n, width, ndisp, block.device),
            lambda: torch.arange(0, n * width * ndisp, ndisp, device=block.device).view(n, width),
        )
        flat = near_index.add_(base)
        near = block.view(-1).index_select(0, flat[:2].view(-1)).view(2, n, width)
        fills = _cached(cache, ("fill", flat.numel(), block.dtype, block.device),
                        lambda: torch.full((flat.numel(),), fill, dtype=block.dtype, device=block.device))
        block.view(-1).put_(flat.view(-1), fills)
    else:
        per_pixel = near_index.permute(1, 2, 0)
        near = block.gather(-1, per_pixel[..., :2]).permute(2, 0, 1)
        block.scatter_(-1, per_pixel, fill)
    near = near.to(torch.float32)
    below = near[0].masked_fill_(index == 0, float("inf"))
    above = near[1].masked_fill_(index == ndisp - 1, float("inf"))
    second = torch.amin(block, dim=-1).to(torch.float32)
    second.masked_fill_(second == float(fill), float("inf"))
    return minimum, index, below, above, second


_CHUNK_ELEMENTS = 1 << 21


def _cached(cache: dict, key: tuple, make) -> torch.Tensor:
    value = cache.get(key)
    if value is None:
        value = cache[key] = make()
    return value


def key_dtype_for(cost_dtype: torch.dtype, ndisp: int) -> torch.dtype:
    """Scratch dtype of :func:`select_block`: int32 keys for int16 costs (int64 for wider
    integers or more than ``2**16`` disparities), float32 for floating-point costs."""
    if cost_dtype.is_floating_point:
        return torch.float32 if ndisp < 1 << 23 else torch.float64
    if cost_dtype in (torch.int16, torch.int8, torch.uint8) and ndisp <= 1 << 16:
        return torch.int32
    return torch.int64


class SelectionCollector:
    """``finalize`` callback for :func:`kestrel_core.stereo.aggregation.aggregate_hwd`
    that runs :func:`select_block` on each finished block of pixels while it is in
    cache. Blocks may arrive from several threads at once: each thread gets its own
    scratch, and the blocks write disjoint parts of the result.

    Args:
        shape: ``(H, W, D)`` of the volume.
        max_disparity_value: disparity of index 0 (``min_disparity + D - 1``).
        device: device of the volume.
    """

    def __init__(self, shape: tuple[int, int, int], max_disparity_value: int, device: torch.device) -> None:
        height, width, ndisp = shape
        self._d_max = max_disparity_value
        self._ndisp = ndisp
        self._index = torch.zeros((height, width), dtype=torch.int32, device=device)
        self._planes = torch.full((4, height, width), float("nan"), dtype=torch.float32, device=device)
        self._scratch: dict[int, tuple[torch.Tensor | None, dict]] = {}  # per thread
        self._done = torch.zeros((height, width), dtype=torch.bool, device="cpu")

    def __call__(self, row: int, column: int, block: torch.Tensor) -> None:
        n, width, ndisp = block.shape
        thread = threading.get_ident()
        keys, constants = self._scratch.get(thread, (None, {}))
        # very large blocks are split so that the int32 keys (2x the block) stay cached
        step = max(1, _CHUNK_ELEMENTS // (width * ndisp))
        columns = slice(column, column + width)
        for start in range(0, n, step):
            part = block[start:start + step]
            key_dtype = key_dtype_for(part.dtype, ndisp)
            if keys is None or keys.numel() < part.numel() or keys.dtype != key_dtype:
                keys = torch.empty(part.numel(), dtype=key_dtype, device=part.device)
            cost, index, below, above, second = select_block(part, keys, constants)
            rows = slice(row + start, row + start + part.shape[0])
            self._index[rows, columns] = index
            for plane, values in zip(self._planes, (cost, below, above, second)):
                plane[rows, columns] = values
            self._done[rows, columns] = True
        self._scratch[thread] = (keys, constants)

    def result(self) -> Selection:
        """The selection; raises RuntimeError if some pixels were never collected."""
        if not bool(self._done.all()):
            raise RuntimeError("SelectionCollector: some pixels were never finalized")
        cost, below, above, second = self._planes
        return Selection(
            index=self._index, disparity=self._d_max - self._index, cost=cost, below=below, above=above,
            second=second,
        )


def select(total: torch.Tensor, max_disparity_value: int) -> Selection:
    """:func:`select_block` on a whole ``(H, W, D)`` volume (modified in place)."""
    collector = SelectionCollector(tuple(total.shape), max_disparity_value, total.device)
    collector(0, 0, total)
    return collector.result()


def parabola_offset(below: torch.Tensor, centre: torch.Tensor, above: torch.Tensor) -> torch.Tensor:
    """Vertex of the parabola through ``(-1, below)``, ``(0, centre)``, ``(1, above)``.

    Returns ``(below - above) / (2 (below - 2 centre + above))``, clamped to
    ``[-0.5, 0.5]``, and 0 where the curvature is not positive or a neighbour is not
    finite. All inputs and the output are float32 of the same shape.
    """
    curvature = below + above - 2.0 * centre
    usable = torch.isfinite(curvature) & (curvature > 0)
    safe = torch.where(usable, curvature, torch.ones_like(curvature))
    offset = torch.where(usable, (below - above) / (2.0 * safe), torch.zeros_like(curvature))
    return offset.clamp_(-0.5, 0.5)


def left_right_invalid(selection: Selection, max_diff: float, integral: bool | None = None) -> torch.Tensor:
    """Left-right consistency from the same aggregated volume: ``(H, W)`` bool invalid.

    The right-image disparity of pixel ``xr`` is the disparity of the left pixel with
    the lowest aggregated cost among those whose winner lands on ``xr = x - d`` (ties:
    the larger disparity, i.e. the nearer surface). A left pixel is invalid when that
    right disparity differs from its own by more than ``max_diff``, or when ``x - d``
    is outside the image.

    One ``scatter_reduce`` of a packed key (the cost in the high bits, the index ``k``
    in the low ones) finds, for every right pixel, the best claimant and its disparity.
    Integer costs in ``[0, 2**15)`` with fewer than ``2**16`` disparities use 32-bit
    keys, anything else 64-bit keys (order-preserving bits of the float32 cost).
    ``integral`` says whether the costs are such integers (checked if None).
    """
    height, width = selection.index.shape
    device = selection.index.device
    index = selection.index.to(torch.int32)
    target = torch.arange(width, dtype=torch.int32, device=device) - selection.disparity.to(torch.int32)
    inside = (target >= 0) & (target < width)
    target.clamp_(0, width - 1)
    cost = selection.cost
    if integral is None:
        integral = bool(((cost >= 0) & (cost < 2**15) & (cost == cost.round())).all())
    if integral and int(index.max()) < 2**16:
        key = (cost.to(torch.int32) << 16) | index
        low_mask = 0xFFFF
    else:
        # float32 -> int32 whose order matches the float order (negatives flipped)
        bits = cost.contiguous().view(torch.int32)
        ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).to(torch.int64)
        key = (ordered << 32) | index.to(torch.int64)
        low_mask = 0xFFFFFFFF
    largest = torch.iinfo(key.dtype).max
    key.masked_fill_(~inside, largest)
    target = target.to(torch.int64)
    best = torch.full((height, width), largest, dtype=key.dtype, device=device)
    best.scatter_reduce_(1, target, key, "amin", include_self=True)
    right_index = best.gather(1, target).bitwise_and_(low_mask).to(torch.int32)
    differs = (right_index - index).abs_() > max_diff
    return differs | ~inside


def speckle_invalid(disparity: torch.Tensor, max_size: int, max_diff: float) -> torch.Tensor:
    """Connected regions of at most ``max_size`` pixels whose neighbouring disparities
    differ by at most ``max_diff`` (``cv2.filterSpeckles``): ``(H, W)`` bool, same
    device as ``disparity``.

    ``disparity`` is ``(H, W)`` float32 with NaN for invalid pixels. OpenCV runs on the
    CPU, so on CUDA this costs one device-to-host copy of the disparity map and one
    host-to-device copy of the mask (``H * W`` floats and bytes, no volume).
    """
    values = disparity.detach().to("cpu", torch.float32).numpy()
    valid = np.isfinite(values)
    if not valid.any():
        return torch.zeros(disparity.shape, dtype=torch.bool, device=disparity.device)
    low = float(values[valid].min())
    span = float(values[valid].max()) - low
    # fixed point with 4 fractional bits (as OpenCV's StereoSGBM), 0 = invalid
    scale = 16.0 if (span + 2.0) * 16.0 < 32000 else max(1e-3, 32000.0 / (span + 2.0))
    fixed = np.zeros(values.shape, dtype=np.int16)
    fixed[valid] = np.round((values[valid] - low + 1.0) * scale).astype(np.int16)
    cv2.filterSpeckles(fixed, 0, int(max_size), float(max_diff * scale))
    removed = valid & (fixed == 0)
    return torch.from_numpy(removed).to(disparity.device)
