"""Unary matching costs for a rectified pair: truncated AD + gradient, and census.

Internally the volume is ``(H, W, D)`` int16 with the disparity axis *descending*:
index ``k`` holds disparity ``min_disparity + D - 1 - k``. In that order the right-image
pixel ``x - d`` moves forward with ``k``, so the right image is read through a strided
view (no copies, no loop over disparities), and the volume is built tile by tile of a
few rows so that the temporaries stay in cache. :func:`compute_matching_cost` returns
the public ``(D, H, W)`` float32 volume in ascending disparity order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from kestrel_core.device import resolve_device
from kestrel_core.stereo.config import SGMConfig
from kestrel_core.stereo.images import prepare_pair
from kestrel_core.parallel import run_parallel, split_range, worker_count

__all__ = ["compute_matching_cost", "cost_volume_hwd", "census_transform", "gradient_x"]

_SENTINEL = -30000  # feature value outside the image: its AD to any pixel saturates
_TILE_ELEMENTS = 1 << 19  # volume elements per tile (about 1 MB of int16)
_WORD_BITS = 31  # census bits per int32 word (the sign bit stays clear for the shifts)
_M1, _M2, _M4 = 0x55555555, 0x33333333, 0x0F0F0F0F


def compute_matching_cost(
    left: object, right: object, config: SGMConfig, device: str | torch.device = "auto"
) -> torch.Tensor:
    """Unary matching cost of a rectified pair.

    Args:
        left, right: ``(H, W)`` grey or ``(H, W, 3)`` RGB images (numpy or torch, uint8,
            uint16 or float); see :func:`kestrel_core.stereo.images.prepare_pair`.
        config: selects the cost (``config.cost``) and the disparity range.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``(D, H, W)`` float32 with ``D = config.max_disparity``; plane ``i`` is the cost
        of disparity ``config.min_disparity + i`` (left pixel ``x`` against right pixel
        ``x - d``). Values are integers in ``[0, config.max_cost]``; pixels whose match
        ``x - d`` falls outside the right image get ``config.max_cost``. The tensor is a
        permuted view of ``(H, W, D)``-contiguous memory, the layout
        :func:`kestrel_core.stereo.aggregate_costs` uses without a copy.

    Raises:
        ValueError: bad images (see ``prepare_pair``) or device.
    """
    dev = resolve_device(device)
    with torch.inference_mode():
        gray_left, gray_right = prepare_pair(left, right, dev)
        volume = cost_volume_hwd(gray_left, gray_right, config)
        ascending = volume.flip(-1).to(torch.float32)
    return ascending.permute(2, 0, 1)


def cost_volume_hwd(
    gray_left: torch.Tensor,
    gray_right: torch.Tensor,
    config: SGMConfig,
    out: torch.Tensor | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """The internal cost volume: ``(H, W, D)`` int16 (or uint8), disparity descending.

    Args:
        gray_left, gray_right: ``(H, W)`` float32 grey images on a 0-255 scale.
        config: cost type, its parameters and the disparity range.
        out: optional contiguous ``(H, W, D)`` tensor to fill: int16, or uint8 when
            ``config.max_cost <= 255``.
        workers: row ranges filled concurrently (see
            :mod:`kestrel_core.parallel`); None picks ``worker_count``.

    Returns:
        ``out`` (or a new int16 tensor), ``[y, x, k]`` = cost of disparity
        ``config.min_disparity + D - 1 - k``.
    """
    height, width = gray_left.shape
    ndisp = config.max_disparity
    if out is None:
        out = torch.empty((height, width, ndisp), dtype=torch.int16, device=gray_left.device)
    else:
        dtypes = (torch.int16, torch.uint8) if config.max_cost <= 255 else (torch.int16,)
        if out.shape != (height, width, ndisp) or out.dtype not in dtypes or not out.is_contiguous():
            names = " or ".join(str(d).removeprefix("torch.") for d in dtypes)
            raise ValueError(f"out must be a contiguous {names} tensor of shape {(height, width, ndisp)}")
    parts = workers if workers is not None else worker_count(out.device, height)
    if config.cost == "census":
        _census_volume(gray_left, gray_right, config, out, parts)
    else:
        _ad_gradient_volume(gray_left, gray_right, config, out, parts)
    return out


def gradient_x(gray: torch.Tensor) -> torch.Tensor:
    """Horizontal Sobel derivative divided by 4 (replicated border): ``(H, W)`` float32.

    ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 4``, written as a central difference
    followed by a vertical ``[1, 2, 1]`` sum (cheaper than a convolution call).
    """
    padded = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    diff = padded[:, 2:] - padded[:, :-2]
    return (diff[:-2] + 2.0 * diff[1:-1] + diff[2:]) * 0.25


def census_transform(gray: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Census transform packed into int32 words.

    Bit ``b`` (row-major over the ``width x height`` window, centre skipped) is set when
    that neighbour is darker than the centre; the border is replicated. Bits are packed
    31 per word, so the sign bit of every word is clear.

    Args:
        gray: ``(H, W)`` float32.
        width, height: odd window size.

    Returns:
        ``(H, W, ceil((width * height - 1) / 31))`` int32.
    """
    rows, cols = gray.shape
    rw, rh = width // 2, height // 2
    padded = F.pad(gray[None, None], (rw, rw, rh, rh), mode="replicate")[0, 0]
    nbits = width * height - 1
    nwords = -(-nbits // _WORD_BITS)
    words = torch.zeros((rows, cols, nwords), dtype=torch.int32, device=gray.device)
    bit = 0
    for dy in range(height):
        for dx in range(width):
            if dy == rh and dx == rw:
                continue
            darker = padded[dy:dy + rows, dx:dx + cols] < gray
            word, shift = divmod(bit, _WORD_BITS)
            words[..., word] |= darker.to(torch.int32) << shift
            bit += 1
    return words


def _right_view(feature_right: torch.Tensor, config: SGMConfig, fill: int) -> torch.Tensor:
    """``(H, W, D, *rest)`` view with ``[y, x, k, ...] = feature_right[y, x - d_k, ...]``,
    ``d_k = min_d + D - 1 - k``, reading ``fill`` outside the image (padded copy)."""
    height, width = feature_right.shape[:2]
    ndisp, dmin = config.max_disparity, config.min_disparity
    dmax = dmin + ndisp - 1
    pad_left, pad_right = max(0, dmax), max(0, -dmin)
    rest = feature_right.shape[2:]
    padded = torch.full(
        (height, pad_left + width + pad_right, *rest),
        fill,
        dtype=feature_right.dtype,
        device=feature_right.device,
    )
    padded[:, pad_left:pad_left + width] = feature_right
    row, col = padded.stride()[:2]
    inner = padded.stride()[2:]
    return padded.as_strided((height, width, ndisp, *rest), (row, col, col, *inner), pad_left - dmax)


def _tile_rows(width: int, ndisp: int) -> int:
    return max(1, _TILE_ELEMENTS // (width * ndisp))


def _ad_gradient_volume(
    gray_left: torch.Tensor, gray_right: torch.Tensor, config: SGMConfig, out: torch.Tensor, workers: int
) -> None:
    height, width, ndisp = out.shape
    # Quantise the grey levels first: the gradient of the quantised image does not
    # depend on rounding noise (e.g. RGB weights summing to 1 - 1e-8).
    level_left, level_right = gray_left.round(), gray_right.round()
    features = [(level_left.to(torch.int16), level_right.to(torch.int16), config.intensity_truncation)]
    if config.gradient_truncation > 0:
        features.append(
            (
                gradient_x(level_left).round().to(torch.int16),
                gradient_x(level_right).round().to(torch.int16),
                config.gradient_truncation,
            )
        )
    views = [(fl[:, :, None], _right_view(fr, config, _SENTINEL), trunc) for fl, fr, trunc in features]
    _in_row_ranges(partial(_ad_gradient_rows, views, out), height, workers)


def _ad_gradient_rows(
    views: list[tuple[torch.Tensor, torch.Tensor, int]], out: torch.Tensor, start: int, stop: int
) -> None:
    """Rows ``[start, stop)`` of the AD + gradient volume, tile by tile; ``views`` holds
    per feature the ``(H, W, 1)`` left view, the ``(H, W, D)`` right view and the
    truncation."""
    _, width, ndisp = out.shape
    rows = min(_tile_rows(width, ndisp), stop - start)
    # the differences need int16; a uint8 ``out`` receives each finished tile
    narrow = out.dtype != torch.int16

    def tile() -> torch.Tensor:
        return torch.empty((rows, width, ndisp), dtype=torch.int16, device=out.device)

    term = tile() if len(views) > 1 else None
    wide = tile() if narrow else None
    for y0 in range(start, stop, rows):
        y1 = min(stop, y0 + rows)
        dst = wide[: y1 - y0] if narrow else out[y0:y1]
        for i, (fl, fr, trunc) in enumerate(views):
            target = dst if i == 0 else term[: y1 - y0]
            torch.sub(fl[y0:y1], fr[y0:y1], out=target)
            target.abs_()
            target.clamp_(max=trunc)
            if i > 0:
                dst.add_(target)
        if narrow:
            out[y0:y1].copy_(dst)


def _in_row_ranges(fill_rows: Callable[[int, int], None], height: int, workers: int) -> None:
    """``fill_rows(start, stop)`` over ``[0, height)`` in ``workers`` concurrent row ranges."""
    parts = split_range(height, workers)
    run_parallel([partial(fill_rows, start, stop) for start, stop in parts])


def _census_volume(
    gray_left: torch.Tensor, gray_right: torch.Tensor, config: SGMConfig, out: torch.Tensor, workers: int
) -> None:
    height, width, ndisp = out.shape
    words_left = census_transform(gray_left, config.census_width, config.census_height)
    words_right = census_transform(gray_right, config.census_width, config.census_height)
    right = _right_view(words_right, config, 0)  # (H, W, D, nwords)
    _in_row_ranges(partial(_census_rows, words_left, right, out), height, workers)
    _fill_out_of_range(out, config, config.max_cost)


def _census_rows(
    words_left: torch.Tensor, right: torch.Tensor, out: torch.Tensor, start: int, stop: int
) -> None:
    """Rows ``[start, stop)`` of the census volume: Hamming distances of the
    ``(H, W, nwords)`` left words to the ``(H, W, D, nwords)`` right view, tile by tile."""
    _, width, ndisp = out.shape
    nwords = words_left.shape[-1]
    rows = min(_tile_rows(width, ndisp), stop - start)
    shape = (rows, width, ndisp)
    acc = torch.empty(shape, dtype=torch.int32, device=out.device)
    x = torch.empty(shape, dtype=torch.int32, device=out.device)
    t = torch.empty(shape, dtype=torch.int32, device=out.device)
    for y0 in range(start, stop, rows):
        y1 = min(stop, y0 + rows)
        n = y1 - y0
        a, xx, tt = acc[:n], x[:n], t[:n]
        for w in range(nwords):
            target = a if w == 0 else xx
            torch.bitwise_xor(words_left[y0:y1, :, None, w], right[y0:y1, :, :, w], out=target)
            # SWAR popcount, first two stages: 2-bit then 4-bit partial counts
            torch.bitwise_right_shift(target, 1, out=tt)
            tt.bitwise_and_(_M1)
            target.sub_(tt)
            torch.bitwise_right_shift(target, 2, out=tt)
            tt.bitwise_and_(_M2)
            target.bitwise_and_(_M2)
            target.add_(tt)
            if w > 0:
                a.add_(target)  # nibbles hold at most 4 * nwords <= 12
        # bytes, then the sum of the four bytes
        torch.bitwise_right_shift(a, 4, out=tt)
        tt.bitwise_and_(_M4)
        a.bitwise_and_(_M4)
        a.add_(tt)
        torch.bitwise_right_shift(a, 8, out=tt)
        a.add_(tt)
        torch.bitwise_right_shift(a, 16, out=tt)
        a.add_(tt)
        a.bitwise_and_(0xFF)
        out[y0:y1].copy_(a)


def _fill_out_of_range(out: torch.Tensor, config: SGMConfig, value: int) -> None:
    """Set the cost where the right pixel ``x - d`` is outside the image."""
    height, width, ndisp = out.shape
    x = torch.arange(width, device=out.device)[:, None]
    disparity = config.min_disparity + ndisp - 1 - torch.arange(ndisp, device=out.device)[None, :]
    outside = ((x - disparity) < 0) | ((x - disparity) >= width)  # (W, D)
    columns = outside.any(dim=1).nonzero().flatten()
    if columns.numel() == 0:
        return
    lo, hi = int(columns.min()), int(columns.max()) + 1
    out[:, lo:hi].masked_fill_(outside[None, lo:hi], value)
