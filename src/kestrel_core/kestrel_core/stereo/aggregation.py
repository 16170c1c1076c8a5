"""Semi-global matching path aggregation in torch, for any cost volume on any device.

Each path ``r`` runs the recurrence of Hirschmüller (2008)::

    L_r(p, d) = C(p, d) + min(L_r(p-r, d),
                              L_r(p-r, d-1) + P1, L_r(p-r, d+1) + P1,
                              min_k L_r(p-r, k) + P2) - min_k L_r(p-r, k)

and the aggregated volume is ``S(p, d) = sum_r L_r(p, d)``. Each ``L_r`` lies in
``[min(C), max(C) + P2]``, so small integer volumes are aggregated exactly in narrow
integer types: the path costs in uint8 when ``max(C) + P1 + P2 <= 255`` (CPU vector
units process twice as many uint8 lanes as int16 ones), their sum in int16.

Implementation notes (why it looks the way it does):

* The volume is kept as ``(H, W, D)`` with ``D`` contiguous, so one scan step reads a
  whole image row or column of costs as a ``(cross, D)`` slab and ``min_k`` is a
  contiguous reduction.
* The only Python loop is over scanline positions. Opposite directions (left->right with
  right->left, top->bottom with bottom->top, and for 8 paths the four diagonals with
  them) are batched into one set of tensor ops per step.
* Path states are written into a small block buffer of ``block`` consecutive positions;
  the block is added to the output once per block instead of once per step, and for the
  horizontal scan the costs of the next block are staged into a contiguous buffer first.
  This keeps every per-step op on cache-resident memory.
* A step is seven tensor ops: neighbour min, ``+P1``, min with the centre, ``-min_k``,
  clamp to ``P2``, ``+C`` and the new ``min_k``.
* The horizontal scan runs first and only copies into the output; the row scan (vertical
  and diagonals) runs last, so finished rows can be handed to a ``finalize`` callback
  (the pipeline selects disparities there) while they are still in cache.
* On a CPU, independent slices run on worker threads with one intra-op thread each
  (rows of the horizontal scan; columns of the vertical one without diagonals), see
  :mod:`kestrel_core.parallel`: one join per scan instead of a thread barrier
  in every one of the thousands of small ops.

On CUDA the same code runs, but each step is a handful of small kernel launches, so it
is launch-bound (about ``8 * (H + W)`` launches per frame); a fused kernel would be the
next step there. On a CPU the pipeline uses :mod:`kestrel_core.stereo.compiled` instead
wherever it applies: the same recurrence as compiled loops, with identical results and
about three times faster; this module stays the reference that every device can run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from kestrel_core.parallel import run_parallel, split_range, worker_count
from kestrel_core.stereo.workspace import Workspace

__all__ = ["aggregate_costs", "aggregate_hwd", "aggregation_dtypes", "working_dtype", "VALID_NUM_PATHS"]

VALID_NUM_PATHS = (4, 8)
_BLOCK = 8
_INT16_BIG = 16384  # padding value for the d-neighbours of int16 states; BIG + P1 must fit
_UINT8_MAX = 255


def aggregate_costs(
    cost: torch.Tensor, p1: float, p2: float, num_paths: int = 4
) -> torch.Tensor:
    """Sum of SGM path costs over ``num_paths`` directions.

    Args:
        cost: ``(D, H, W)`` matching cost, lower is better, on any device. Any memory
            layout is accepted; a view whose ``permute(1, 2, 0)`` is contiguous (as
            returned by :func:`kestrel_core.stereo.compute_matching_cost`) is used
            without a copy. Values must be finite.
        p1: penalty for a disparity change of one between neighbours (``>= 0``).
        p2: penalty for larger changes (``>= p1``).
        num_paths: 4 (horizontal and vertical) or 8 (plus the diagonals).

    Returns:
        ``(D, H, W)`` aggregated cost on the same device, a permuted view of an
        ``(H, W, D)``-contiguous tensor (see :func:`aggregation_dtypes` for its dtype):
        floating volumes keep their dtype (float16/bfloat16 become float32); integer
        volumes with integer penalties are aggregated exactly, in int16 when the sums
        fit (uint8 paths when they fit too), else in int32 (float64 beyond 2**20);
        integer volumes with fractional penalties are aggregated in float32. Runs under
        ``torch.inference_mode()``.

    Raises:
        ValueError: on a bad shape, dtype, penalty or path count, or non-finite costs.
    """
    if not isinstance(cost, torch.Tensor):
        raise ValueError(f"cost must be a torch.Tensor, got {type(cost).__name__}")
    if cost.ndim != 3 or min(cost.shape) < 1:
        raise ValueError(f"cost must have shape (D, H, W) with D, H, W >= 1, got {tuple(cost.shape)}")
    _check_penalties(p1, p2, num_paths)
    if cost.dtype == torch.bool or cost.is_complex():
        raise ValueError(f"cost dtype {cost.dtype} is not supported; use a real dtype")

    with torch.inference_mode():
        hwd = cost.permute(1, 2, 0)
        if cost.dtype.is_floating_point and not bool(torch.isfinite(hwd).all()):
            raise ValueError("cost contains NaN or inf; mark invalid matches with a large finite cost")
        path_dtype, _ = aggregation_dtypes(hwd, p1, p2, num_paths)
        hwd = hwd.to(path_dtype).contiguous()
        return aggregate_hwd(hwd, p1, p2, num_paths).permute(2, 0, 1)


def working_dtype(cost: torch.Tensor, p1: float, p2: float, num_paths: int) -> torch.dtype:
    """The dtype of the aggregated volume :func:`aggregate_costs` returns for ``cost``
    (the second item of :func:`aggregation_dtypes`)."""
    return aggregation_dtypes(cost, p1, p2, num_paths)[1]


def aggregation_dtypes(
    cost: torch.Tensor,
    p1: float,
    p2: float,
    num_paths: int,
    cost_range: tuple[int, int] | None = None,
) -> tuple[torch.dtype, torch.dtype]:
    """``(path_dtype, sum_dtype)``: the dtypes of the path costs ``L_r`` and of their
    sum for a volume like ``cost``.

    Integer costs with integer penalties are aggregated exactly:

    * the sum in int16 when the costs are non-negative, below 4096 and
      ``num_paths * (max + p2) < 16320`` (each path is bounded by ``max + p2``; the
      d-neighbour padding of int16 states, 16384, stays above every state and
      ``16384 + p1`` fits), else in int32 (float64 beyond ``2**20``);
    * the paths in uint8 when the sum is int16 and ``max + p1 + p2 <= 255`` (the
      padding ``255 - p1`` is then above every state), else in the sum's dtype.

    Fractional penalties give float32; floating volumes keep their dtype (float16 and
    bfloat16 become float32). Integer costs are scanned for their range (one pass over
    the volume) unless ``cost_range = (min, max)`` is given.
    """
    if cost.dtype.is_floating_point:
        dtype = torch.float32 if cost.dtype in (torch.float16, torch.bfloat16) else cost.dtype
        return dtype, dtype
    if not (float(p1).is_integer() and float(p2).is_integer()):
        return torch.float32, torch.float32
    lo, hi = cost_range if cost_range is not None else (int(cost.min()), int(cost.max()))
    if lo >= 0 and hi < 4096 and num_paths * (hi + int(p2)) < _INT16_BIG - 64:
        narrow = hi + int(p1) + int(p2) <= _UINT8_MAX
        return (torch.uint8 if narrow else torch.int16), torch.int16
    if lo >= -(2**20) and hi < 2**20 and p2 < 2**20:
        return torch.int32, torch.int32
    return torch.float64, torch.float64


def _check_penalties(p1: float, p2: float, num_paths: int) -> None:
    if num_paths not in VALID_NUM_PATHS:
        raise ValueError(f"num_paths must be 4 or 8, got {num_paths}")
    if not (p1 >= 0):
        raise ValueError(f"p1 must be >= 0, got {p1}")
    if not (p2 >= p1):
        raise ValueError(f"p2 must be >= p1, got p1={p1}, p2={p2}")


def aggregate_hwd(
    cost: torch.Tensor,
    p1: float,
    p2: float,
    num_paths: int = 4,
    *,
    out: torch.Tensor | None = None,
    workspace: Workspace | None = None,
    finalize: Callable[[int, int, torch.Tensor], None] | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Aggregate a contiguous ``(H, W, D)`` volume into an ``(H, W, D)`` tensor.

    The fast path behind :func:`aggregate_costs`, without validation or conversion. The
    path costs are computed in the dtype of ``cost``; the result has that dtype too,
    except for uint8 costs, whose paths are summed in int16. The caller guarantees the
    bounds of :func:`aggregation_dtypes`: ``num_paths * (max(cost) + p2) < 16320`` for
    int16 and uint8, and also ``max(cost) + p1 + p2 <= 255`` for uint8. ``out``
    (contiguous, same shape, result dtype) receives the result if given; ``workspace``
    supplies the scratch buffers.

    ``finalize(row, column, block)``, if given, is called once for every block of
    pixels whose aggregated cost is complete, with ``block`` an ``(n, w, D)`` scratch
    tensor holding the result for rows ``row .. row + n - 1`` and columns ``column ..
    column + w - 1``, while it is still in cache. Every pixel is passed exactly once;
    those pixels are then *not* stored in ``out`` (which saves writing the volume back
    to memory). ``finalize`` may modify ``block``. With several workers it is called
    from several threads at once (on disjoint blocks).

    ``workers`` independent slices are aggregated concurrently (see
    :mod:`kestrel_core.parallel`): rows for the horizontal paths, and columns
    for the vertical ones when there are no diagonal paths. None picks
    :func:`~kestrel_core.parallel.worker_count`. Results do not depend on it.
    """
    _check_penalties(p1, p2, num_paths)
    if not cost.is_contiguous() or cost.ndim != 3:
        raise ValueError("aggregate_hwd needs a contiguous (H, W, D) tensor")
    height, width, ndisp = cost.shape
    sum_dtype = torch.int16 if cost.dtype == torch.uint8 else cost.dtype
    if cost.dtype.is_floating_point:
        big: float | int = float("inf")
        pen1: float | int = float(p1)
        pen2: float | int = float(p2)
    else:
        pen1, pen2 = int(p1), int(p2)
        big = {torch.uint8: _UINT8_MAX - pen1, torch.int16: _INT16_BIG}.get(cost.dtype, 2**30)
    if out is None:
        total = torch.empty(cost.shape, dtype=sum_dtype, device=cost.device)
    else:
        if out.shape != cost.shape or out.dtype != sum_dtype or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous {sum_dtype} tensor of the shape of cost")
        total = out
    ws = workspace if workspace is not None else Workspace()
    # Horizontal first: it only copies into ``total``; its rows are independent. The
    # row scan (vertical and, for 8 paths, diagonal) comes last: it adds whole rows and
    # hands the finished blocks to ``finalize``; its columns are independent unless
    # diagonal paths link them.
    parts = workers if workers is not None else worker_count(cost.device, min(height, width))
    tasks = [
        partial(_scan, cost[r0:r1], total[r0:r1], width, ndisp, r1 - r0, width * ndisp, (0,),
                pen1, pen2, big, stage_cost=True, initialise=True, workspace=ws, name=f"sgm_h{i}_")
        for i, (r0, r1) in enumerate(split_range(height, parts))
    ]
    run_parallel(tasks)
    shifts = (0,) if num_paths == 4 else (-1, 0, 1)
    column_parts = split_range(width, parts if num_paths == 4 else 1)
    tasks = [
        partial(_scan, cost[:, c0:c1], total[:, c0:c1], height, width * ndisp, c1 - c0, ndisp, shifts,
                pen1, pen2, big, stage_cost=False, initialise=False, workspace=ws, name=f"sgm_v{i}_",
                finalize=None if finalize is None else partial(_at_column, finalize, c0))
        for i, (c0, c1) in enumerate(column_parts)
    ]
    run_parallel(tasks)
    return total


def _at_column(
    finalize: Callable[[int, int, torch.Tensor], None], column: int, row: int, block: torch.Tensor
) -> None:
    finalize(row, column, block)


def _scan(
    cost: torch.Tensor,
    total: torch.Tensor,
    length: int,
    scan_stride: int,
    cross: int,
    cross_stride: int,
    shifts: tuple[int, ...],
    p1: float | int,
    p2: float | int,
    big: float | int,
    *,
    stage_cost: bool,
    initialise: bool,
    workspace: Workspace | None = None,
    name: str = "sgm_",
    finalize: Callable[[int, torch.Tensor], None] | None = None,
) -> None:
    """Run the forward and the backward scan along one image axis, batched.

    ``cost`` and ``total`` are ``(H, W, D)`` views of contiguous volumes (the strides
    below are used, not theirs); ``name`` prefixes the workspace buffers. The scan axis has ``length``
    positions ``scan_stride`` elements apart; each position is a slab of ``cross``
    lines ``cross_stride`` apart, each line ``D`` contiguous disparities. ``shifts``
    lists, per batched direction, the cross offset of the predecessor as consecutive
    integers (``(0,)`` for the straight paths, ``(-1, 0, 1)`` for straight plus both
    diagonals). Group 0 scans forward, group 1 backward. Results are added to ``total``,
    or copied into it where this scan writes first when ``initialise``. ``finalize(pos, block)`` receives the
    positions both groups have written (see :func:`aggregate_hwd`).
    """
    device, dtype = cost.device, cost.dtype
    ndisp = cost.shape[-1]
    nk = len(shifts)
    pad = 1 if any(shifts) else 0
    block = min(_BLOCK, length)
    line = cross + 2 * pad
    ws = workspace if workspace is not None else Workspace()

    # states[g, slot, k, c, 1 + d]; slot 0 (group 0) / slot bs (group 1) carry the state
    # into a block, the other slots receive the block's new states. The d-pads hold
    # ``big``; the line pads (diagonals only) hold the zero state that starts a path.
    # Memory order follows ``total``: when the scan axis is the inner one (horizontal
    # scan), consecutive slots of a line are adjacent, so that writing a block back, and
    # staging its costs, stream whole runs of ``block * D`` elements.
    slot_inner = scan_stride < cross_stride
    tag = name  # separate buffers per scan and worker: shapes differ
    if slot_inner:
        shape = (2, nk, line, block + 1, ndisp + 2)
        states = ws.get(tag + "states", shape, dtype, device).permute(0, 3, 1, 2, 4)
    else:
        states = ws.get(tag + "states", (2, block + 1, nk, line, ndisp + 2), dtype, device)
    states.zero_()
    states[..., 0] = big
    states[..., -1] = big
    # mins[g, k, c] = min_d of the state at line c, padded like the states
    mins = ws.get(tag + "mins", (2, nk, line, 1), dtype, device)
    mins.zero_()
    work = ws.get(tag + "work", (2, nk, cross, ndisp), dtype, device)
    staged = None
    if stage_cost:
        if slot_inner:
            staged = ws.get(tag + "staged", (2, cross, block, ndisp), dtype, device).permute(0, 2, 1, 3)
        else:
            staged = ws.get(tag + "staged", (2, block, cross, ndisp), dtype, device)
    widen = dtype != total.dtype  # uint8 paths, int16 sum
    summed = None
    if nk > 1 or widen:
        summed = ws.get(tag + "summed", (block, cross, ndisp), total.dtype, device)
    finished = None
    if finalize is not None:
        finished = ws.get(tag + "finished", (block, cross, ndisp), total.dtype, device)
    pen1 = torch.tensor(p1, dtype=dtype, device=device)
    pen2 = torch.tensor(p2, dtype=dtype, device=device)

    m_g, m_k, m_c, _ = mins.stride()
    # predecessor view of ``mins`` (shifted like the predecessor states) and the new ones
    prev_mins = mins.as_strided((2, nk, cross, 1), (m_g, m_k + pad * m_c, m_c, 1), (pad + shifts[0]) * m_c)
    new_mins = mins[:, :, pad:pad + cross]
    c_off = cost.storage_offset()
    t_off = total.storage_offset()
    # positions this scan has written: [0, lo_done) by group 0, [hi_done, length) by 1
    lo_done, hi_done = 0, length
    views: dict[int, list] = {}
    # bound once: the step loop below is dispatch-bound for small images
    minimum, add, amin = torch.minimum, torch.add, torch.amin
    work_add_, work_sub_, work_clamp_ = work.add_, work.sub_, work.clamp_

    for start in range(0, length, block):
        bs = min(block, length - start)
        a0, b0 = start, length - 1 - start  # first position of each group in this block
        if start > 0:
            # carry the last states of the previous block into the read slots
            states[0, 0].copy_(states[0, block])
            states[1, bs].copy_(states[1, 0])
        if staged is not None:
            for g, first in ((0, a0), (1, b0 - bs + 1)):
                source = cost.as_strided(
                    (bs, cross, ndisp), (scan_stride, cross_stride, 1), c_off + first * scan_stride
                )
                staged[g, :bs].copy_(source)
        if bs not in views:
            views[bs] = [_step_views(states, staged, j, bs, nk, cross, pad, shifts[0]) for j in range(bs)]
        for j, (old_lo, old_hi, old_mid, new, cur) in enumerate(views[bs]):
            # L_new = C + min(min(L[d-1], L[d+1]) + P1, L[d], min_k L + P2) - min_k L
            minimum(old_lo, old_hi, out=work)
            work_add_(pen1)
            minimum(work, old_mid, out=work)
            work_sub_(prev_mins)
            work_clamp_(max=pen2)
            if cur is None:
                pa, pb = a0 + j, b0 - j
                if pa > pb:  # past the middle the backward position is the lower one
                    for g, pos in ((0, pa), (1, pb)):
                        offset = c_off + pos * scan_stride
                        row = cost.as_strided((nk, cross, ndisp), (0, cross_stride, 1), offset)
                        add(work[g], row, out=new[g])
                    amin(new, dim=-1, keepdim=True, out=new_mins)
                    continue
                strides = ((pb - pa) * scan_stride, 0, cross_stride, 1)
                cur = cost.as_strided((2, nk, cross, ndisp), strides, c_off + pa * scan_stride)
            add(work, cur, out=new)
            amin(new, dim=-1, keepdim=True, out=new_mins)

        # write the block's states into ``total``
        for g, first_pos, first_slot in ((0, a0, 1), (1, b0 - bs + 1, 0)):
            block_states = states[g, first_slot:first_slot + bs, :, pad:pad + cross, 1:-1]
            if nk == 1 and not widen:
                value = block_states[:, 0]
            elif not widen:
                value = torch.sum(block_states, dim=1, out=summed[:bs])
            else:
                # widen once, in cache: mixed-dtype ops (and sums with dtype=) are slow
                value = summed[:bs]
                value.copy_(block_states[:, 0])
                for k in range(1, nk):
                    value.add_(block_states[:, k])
            lo_done, hi_done = _write_back(
                total, value, first_pos, scan_stride, cross_stride, t_off, lo_done, hi_done, g,
                initialise, finalize, finished,
            )


def _step_views(
    states: torch.Tensor,
    staged: torch.Tensor | None,
    j: int,
    bs: int,
    nk: int,
    cross: int,
    pad: int,
    shift0: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Views used by step ``j`` of a block of ``bs`` steps.

    Group 0 reads slot ``j`` and writes slot ``j + 1``; group 1 reads slot ``bs - j`` and
    writes ``bs - 1 - j``. Both groups are one view whose group stride is the distance
    between the two slots (always positive). Returns the predecessor states at ``d - 1``,
    ``d + 1`` and ``d`` (each ``(2, nk, cross, D)``), the new-state view and the staged
    cost view (or None).
    """
    s_g, s_slot, s_k, s_c, _ = states.stride()
    ndisp = states.shape[-1] - 2
    off = states.storage_offset()
    old = states.as_strided(
        (2, nk, cross, ndisp + 2),
        (s_g + (bs - 2 * j) * s_slot, s_k + pad * s_c, s_c, 1),
        off + j * s_slot + (pad + shift0) * s_c,
    )
    new = states.as_strided(
        (2, nk, cross, ndisp),
        (s_g + (bs - 2 - 2 * j) * s_slot, s_k, s_c, 1),
        off + (j + 1) * s_slot + pad * s_c + 1,
    )
    cur = None
    if staged is not None:
        sg, ss, sc, _ = staged.stride()
        strides = (sg + (bs - 1 - 2 * j) * ss, 0, sc, 1)
        cur = staged.as_strided((2, nk, cross, ndisp), strides, staged.storage_offset() + j * ss)
    return old[..., :-2], old[..., 2:], old[..., 1:-1], new, cur


def _write_back(
    total: torch.Tensor,
    value: torch.Tensor,
    first: int,
    scan_stride: int,
    cross_stride: int,
    offset: int,
    lo_done: int,
    hi_done: int,
    group: int,
    initialise: bool,
    finalize: Callable[[int, torch.Tensor], None] | None,
    scratch: torch.Tensor | None,
) -> tuple[int, int]:
    """Accumulate ``value`` (``(count, cross, D)``) into positions ``[first, first +
    count)`` of ``total``.

    This scan has written ``[0, lo_done)`` (group 0) and ``[hi_done, length)`` (group 1).
    Positions the other group has written are complete after this write: with a
    ``finalize`` their sum is formed in ``scratch`` (``(>= count, cross, D)``) and handed
    to it, without being stored in ``total``; otherwise they are added. The remaining
    positions are copied when ``initialise`` (nothing is in ``total`` yet), added
    otherwise. Returns the updated bounds.
    """
    count, cross, ndisp = value.shape
    last = first + count
    # the other group's part of [first, last)
    if group == 0:
        both = (min(last, max(first, hi_done)), last)
    else:
        both = (first, max(first, min(last, lo_done)))
    for lo, hi in ((first, both[0]), both, (both[1], last)):
        if hi <= lo:
            continue
        strides = (scan_stride, cross_stride, 1)
        dst = total.as_strided((hi - lo, cross, ndisp), strides, offset + lo * scan_stride)
        src = value[lo - first:hi - first]
        complete = (lo, hi) == both
        if complete and finalize is not None:
            # the finished sum goes to the (cache-resident) scratch, not back to memory
            done = torch.add(dst, src, out=scratch[: hi - lo])
            finalize(lo, done)
        elif initialise and not complete:
            dst.copy_(src)
        else:
            dst.add_(src)
    if group == 0:
        lo_done = max(lo_done, last)
    else:
        hi_done = min(hi_done, first)
    return lo_done, hi_done
