"""Semi-global matching on a CPU as compiled loops: path aggregation and winner-takes-all
in one pass over the volume.

:mod:`kestrel_core.stereo.aggregation` is the reference: torch code that runs unchanged
on CPUs and GPUs. On a CPU, though, each of its scan steps is a few tensor ops on one image
row or column of costs, and their dispatch dominates. Here the same recurrence is compiled
by numba into loops over disparities that the compiler vectorises (16 int16 lanes per AVX2
instruction), and the selection statistics are formed while each pixel's aggregated costs
are still in registers, so the summed volume is never read back. The results equal the
reference's bit for bit (integer arithmetic throughout; a test checks this on real images).

Scope: the volumes whose paths the reference sums in int16 (see
:func:`kestrel_core.stereo.aggregation.aggregation_dtypes`: integer costs and penalties,
``num_paths * (max + p2) < 16320``), 4 or 8 paths. Anything else, and every non-CPU device, uses the
torch reference. Without numba, :func:`available` is False and the reference is used.

Passes (``(H, W, D)`` volume, ``D`` contiguous; index ``k`` of a pixel's ``D`` costs):

1. horizontal: left-to-right and right-to-left along each row; rows in parallel; writes
   their sum into ``total``;
2. downward: top-to-bottom (and, for 8 paths, the two downward diagonals) row by row,
   columns in parallel; adds into ``total``;
3. upward: bottom-to-top (and the upward diagonals) row by row, columns in parallel; adds
   the pixel's last paths to its ``total`` in registers and keeps only the statistics of
   :class:`kestrel_core.stereo.refinement.Selection`.

The row passes keep one row of path states per direction, padded by one column each side
with the zero state that starts a path (as the reference's line pads do), and by one
disparity each side with a value above every state (the reference's ``big``).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from kestrel_core.stereo.aggregation import _INT16_BIG as _BIG  # the reference's d-padding of int16 states
from kestrel_core.stereo.refinement import Selection

try:  # numba is optional: without it the torch reference runs
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

__all__ = ["available", "supports", "aggregate_and_select", "KernelUnavailable"]

_CHUNK = 32  # columns per parallel task of the row passes
# numba's fallback threading layer (workqueue, used when neither TBB nor OpenMP is found)
# aborts the process if two threads enter parallel code at once; frames are serialised
# here, which costs nothing on a CPU that one frame already keeps busy.
_ONE_AT_A_TIME = threading.Lock()


_failure: str | None = None  # why the kernels failed to compile in this process, if they did


class KernelUnavailable(RuntimeError):
    """The compiled kernels cannot run in this process (numba failed to compile them, e.g.
    an older system numba); callers fall back to the torch reference."""


def available() -> bool:
    """True when numba can be imported and the kernels have not failed to compile."""
    return numba is not None and _failure is None


def supports(cost: torch.Tensor, num_paths: int, sum_dtype: torch.dtype) -> bool:
    """Whether :func:`aggregate_and_select` handles this volume: numba usable, a CPU uint8
    or int16 volume, 4 or 8 paths, and a path sum the reference keeps in int16
    (``sum_dtype``, the second item of
    :func:`~kestrel_core.stereo.aggregation.aggregation_dtypes` for this volume, its cost
    range and the penalties; int16 implies integer penalties and costs in range)."""
    return (
        available()
        and cost.device.type == "cpu"
        and cost.dtype in (torch.uint8, torch.int16)
        and num_paths in (4, 8)
        and cost.shape[-1] <= 1 << 16
        and sum_dtype == torch.int16
    )


def aggregate_and_select(
    cost: torch.Tensor,
    p1: int,
    p2: int,
    num_paths: int,
    largest_disparity: int,
    threads: int = 0,
    scratch: torch.Tensor | None = None,
) -> Selection:
    """SGM aggregation of a descending volume followed by winner-takes-all.

    Args:
        cost: contiguous ``(H, W, D)`` uint8 or int16 CPU volume; index ``k`` holds
            disparity ``largest_disparity - k``; the caller has checked :func:`supports`.
        p1, p2: integer penalties, ``0 <= p1 <= p2``.
        num_paths: 4 or 8.
        largest_disparity: the disparity of index 0.
        threads: numba threads to use (0: numba's default).
        scratch: optional contiguous int16 CPU tensor of the volume's shape for the
            partial sums (reuse it between frames: a fresh volume-sized allocation costs
            a page fault per 4 KiB on first touch, tens of milliseconds per frame).

    Returns:
        The :class:`~kestrel_core.stereo.refinement.Selection` (CPU tensors) that
        :class:`~kestrel_core.stereo.refinement.SelectionCollector` gives for the same
        volume through the torch reference.
    """
    if not available():
        raise KernelUnavailable(_failure or "numba is not installed; use kestrel_core.stereo.aggregation")
    if not cost.is_contiguous() or cost.ndim != 3 or cost.device.type != "cpu":
        raise ValueError("aggregate_and_select needs a contiguous (H, W, D) CPU tensor")
    height, width, ndisp = cost.shape
    volume = cost.numpy()
    if scratch is None:
        scratch = torch.empty((height, width, ndisp), dtype=torch.int16)
    if scratch.shape != cost.shape or scratch.dtype != torch.int16 or not scratch.is_contiguous():
        raise ValueError("scratch must be a contiguous int16 tensor of the shape of cost")
    total = scratch.numpy()
    index = np.empty((height, width), dtype=np.int32)
    planes = np.empty((4, height, width), dtype=np.float32)
    diagonal = num_paths == 8
    with _ONE_AT_A_TIME:
        previous = numba.get_num_threads()
        if threads > 0:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            _horizontal(volume, total, p1, p2)
            _row_pass(volume, total, p1, p2, diagonal, False, index, planes)
            _row_pass(volume, total, p1, p2, diagonal, True, index, planes)
        except numba.core.errors.NumbaError as error:
            _give_up(f"numba {numba.__version__} could not compile the SGM kernels "
                     f"({type(error).__name__}); using the torch reference")
            raise KernelUnavailable(_failure) from error
        finally:
            numba.set_num_threads(previous)
    index_t = torch.from_numpy(index)
    cost_t, below, above, second = torch.from_numpy(planes).unbind(0)
    return Selection(
        index=index_t, disparity=largest_disparity - index_t, cost=cost_t, below=below, above=above,
        second=second,
    )


def _give_up(reason: str) -> None:
    """Stop using the kernels in this process, with one warning."""
    global _failure
    _failure = reason
    warnings.warn(reason, RuntimeWarning, stacklevel=3)


if numba is not None:

    @njit(cache=True, nogil=True, fastmath=True, boundscheck=False, inline="always")
    def _advance(before, before_min, costs, after, p1, p2):  # pragma: no cover - compiled
        """One path step: ``after[1 + k]`` from the predecessor ``before`` (both ``D + 2``
        int16 with padded ends) and ``costs`` (``D``); returns the new minimum."""
        ndisp = costs.shape[0]
        ceiling = np.int16(before_min + p2)
        lowest = np.int16(_BIG)
        for k in range(ndisp):
            value = min(np.int16(min(before[k], before[k + 2]) + p1), before[k + 1])
            value = np.int16(min(value, ceiling) - before_min + costs[k])
            after[k + 1] = value
            lowest = min(lowest, value)
        return lowest

    @njit(cache=True, nogil=True, parallel=True, fastmath=True, boundscheck=False)
    def _horizontal(cost, total, p1, p2):  # pragma: no cover - compiled
        """Both horizontal paths of every row (rows in parallel), summed into ``total``."""
        height, width, ndisp = cost.shape
        pen1 = np.int16(p1)
        pen2 = np.int16(p2)
        for y in prange(height):
            state = np.empty((2, ndisp + 2), dtype=np.int16)
            for backward in range(2):
                state[:, 0] = _BIG
                state[:, ndisp + 1] = _BIG
                state[0, 1:ndisp + 1] = 0
                before_min = np.int16(0)
                for step in range(width):
                    x = width - 1 - step if backward else step
                    before = state[step % 2]
                    after = state[1 - step % 2]
                    before_min = _advance(before, before_min, cost[y, x], after, pen1, pen2)
                    out = total[y, x]
                    if backward:
                        for k in range(ndisp):
                            out[k] += after[k + 1]
                    else:
                        for k in range(ndisp):
                            out[k] = after[k + 1]

    @njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
    def _finish_pixel(partial, fresh, summed, ks, bits, index, planes, y, x):  # pragma: no cover
        """Selection statistics of pixel ``x``: its aggregated costs are ``partial`` (``D``,
        the paths already summed) plus the new states ``fresh`` (``(directions, D + 2)``);
        ``summed`` (int32 ``D``) is scratch. Writes ``index[x]`` (the pixel's row) and
        ``planes[:, y, x]``."""
        ndisp = partial.shape[0]
        for k in range(ndisp):
            summed[k] = np.int32(partial[k]) + np.int32(fresh[0, k + 1])
        for direction in range(1, fresh.shape[0]):
            for k in range(ndisp):
                summed[k] += np.int32(fresh[direction, k + 1])
        # arg-min (smallest k on ties) as the minimum of the cost packed with k
        shift = np.int32(bits)
        best_key = np.int32(0x7FFFFFFF)
        for k in range(ndisp):
            best_key = min(best_key, (summed[k] << shift) | ks[k])
        best = best_key & ((1 << bits) - 1)
        index[x] = best
        planes[0, y, x] = summed[best]
        planes[1, y, x] = summed[best - 1] if best > 0 else np.inf
        planes[2, y, x] = summed[best + 1] if best < ndisp - 1 else np.inf
        # the second best lies outside best -+ 1: mask those, then one full minimum
        for k in range(max(0, best - 1), min(ndisp, best + 2)):
            summed[k] = np.int32(0x7FFFFFFF)
        second = np.int32(0x7FFFFFFF)
        for k in range(ndisp):
            second = min(second, summed[k])
        planes[3, y, x] = second if second != 0x7FFFFFFF else np.inf

    @njit(cache=True, nogil=True, parallel=True, fastmath=True, boundscheck=False)
    def _row_pass(cost, total, p1, p2, diagonal, upward, index, planes):  # pragma: no cover
        """The vertical path (and the two diagonals when ``diagonal``) downward, added to
        ``total``; or upward, finishing every pixel into ``index`` and ``planes`` (cost,
        below, above, second; see Selection).

        Without diagonals the columns are independent: slices of ``_CHUNK`` columns run
        in parallel, each over all rows (one parallel region, no per-row barrier, which
        on shared cores would stall every row). Diagonals link neighbouring columns, so
        with them the pass runs on one thread.
        """
        height, width, ndisp = cost.shape
        pen1 = np.int16(p1)
        pen2 = np.int16(p2)
        directions = 3 if diagonal else 1
        # states[parity, 1 + x, direction, 1 + k] for the rows y (parity) and y -+ 1:
        # a pixel's states are one C-contiguous (directions, D + 2) block
        states = np.zeros((2, width + 2, directions, ndisp + 2), dtype=np.int16)
        states[:, :, :, 0] = _BIG
        states[:, :, :, ndisp + 1] = _BIG
        mins = np.zeros((2, width + 2, directions), dtype=np.int16)
        bits = 1
        while (1 << bits) < ndisp:
            bits += 1
        ks = np.arange(ndisp).astype(np.int32)  # int32 indices keep the arg-min loop in int32 lanes
        span = width if diagonal else _CHUNK
        chunks = (width + span - 1) // span
        for chunk in prange(chunks):
            summed = np.empty(ndisp, dtype=np.int32)
            for step in range(height):
                y = height - 1 - step if upward else step
                now = step % 2
                before = 1 - now
                for x in range(chunk * span, min(width, (chunk + 1) * span)):
                    costs = cost[y, x]
                    for direction in range(directions):
                        # direction 0 straight, 1 and 2 the predecessor one column left/right
                        source = x + (1 if direction == 0 else (0 if direction == 1 else 2))
                        mins[now, x + 1, direction] = _advance(
                            states[before, source, direction], mins[before, source, direction],
                            costs, states[now, x + 1, direction], pen1, pen2,
                        )
                    out = total[y, x]
                    if upward:
                        _finish_pixel(out, states[now, x + 1], summed, ks, bits, index[y], planes, y, x)
                    else:
                        for direction in range(directions):
                            fresh = states[now, x + 1, direction]
                            for k in range(ndisp):
                                out[k] += fresh[k + 1]
