"""SGM path aggregation against a slow, literal reference and a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.stereo import aggregate_costs
from kestrel_core.stereo.aggregation import aggregate_hwd, aggregation_dtypes, working_dtype

STRAIGHT = {
    "left_to_right": (0, 1), "right_to_left": (0, -1), "top_to_bottom": (1, 0), "bottom_to_top": (-1, 0)
}
DIAGONAL = {"tl_to_br": (1, 1), "tr_to_bl": (1, -1), "bl_to_tr": (-1, 1), "br_to_tl": (-1, -1)}


def reference_path(cost: np.ndarray, p1: float, p2: float, step: tuple[int, int]) -> np.ndarray:
    """One SGM path, written literally from Hirschmueller's recurrence (loops only).

    ``cost`` is ``(D, H, W)``; ``step = (dy, dx)`` is the direction of travel, so the
    predecessor of pixel ``(y, x)`` is ``(y - dy, x - dx)``.
    """
    ndisp, height, width = cost.shape
    dy, dx = step
    out = np.zeros(cost.shape, dtype=np.float64)
    rows = range(height) if dy >= 0 else range(height - 1, -1, -1)
    cols = list(range(width)) if dx >= 0 else list(range(width - 1, -1, -1))
    for y in rows:
        for x in cols:
            py, px = y - dy, x - dx
            if not (0 <= py < height and 0 <= px < width):
                out[:, y, x] = cost[:, y, x]  # a path starts at the border
                continue
            prev = out[:, py, px]
            best = prev.min()
            for d in range(ndisp):
                options = [prev[d], best + p2]
                if d > 0:
                    options.append(prev[d - 1] + p1)
                if d < ndisp - 1:
                    options.append(prev[d + 1] + p1)
                out[d, y, x] = cost[d, y, x] + min(options) - best
    return out


def reference(cost: np.ndarray, p1: float, p2: float, num_paths: int) -> np.ndarray:
    steps = list(STRAIGHT.values()) + (list(DIAGONAL.values()) if num_paths == 8 else [])
    return sum(reference_path(cost, p1, p2, s) for s in steps)


def test_hand_worked_example():
    """One row, two pixels, three disparities, P1 = 1, P2 = 3 (worked on paper).

    Left-to-right: L(x=1) = C(1) + min(L(0)[d], L(0)[d+-1] + 1, 0 + 3) = [4, 1, 12];
    right-to-left: L(x=0) = [1, 5, 10]; the vertical paths are just C (one row).
    """
    cost = torch.tensor([[[0.0, 4.0]], [[5.0, 0.0]], [[9.0, 9.0]]])  # (D=3, H=1, W=2)
    total = aggregate_costs(cost, 1, 3, 4)
    expected = torch.tensor([[[1.0, 16.0]], [[20.0, 1.0]], [[37.0, 39.0]]])
    assert torch.equal(total, expected)


@pytest.mark.parametrize("shape", [(4, 5, 6), (3, 1, 19), (5, 21, 1), (6, 18, 35), (1, 4, 4), (2, 37, 17)])
@pytest.mark.parametrize("num_paths", [4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int16, torch.int32])
def test_matches_reference(shape, num_paths, dtype, device):
    rng = np.random.default_rng(sum(shape) + num_paths)
    cost = rng.integers(0, 25, size=shape).astype(np.float64)
    expected = reference(cost, 3, 11, num_paths)
    total = aggregate_costs(torch.from_numpy(cost).to(dtype).to(device), 3, 11, num_paths)
    assert total.shape == shape and total.device.type == device
    np.testing.assert_allclose(total.double().cpu().numpy(), expected, atol=1e-3)


# Where each direction's path *ends*, every other direction of the same set *starts*
# (its predecessor is outside the image), contributing exactly C. That isolates one
# direction inside the batched sum: (volume shape, end pixel (y, x), paths).
ISOLATION = {
    "left_to_right": ((6, 1, 13), (0, 12), 4),
    "right_to_left": ((6, 1, 13), (0, 0), 4),
    "top_to_bottom": ((6, 11, 1), (10, 0), 4),
    "bottom_to_top": ((6, 11, 1), (0, 0), 4),
    "tl_to_br": ((6, 9, 12), (8, 11), 8),
    "tr_to_bl": ((6, 9, 12), (8, 0), 8),
    "bl_to_tr": ((6, 9, 12), (0, 11), 8),
    "br_to_tl": ((6, 9, 12), (0, 0), 8),
}


@pytest.mark.parametrize("direction", list(ISOLATION))
def test_each_direction_against_reference(direction):
    """Each path direction of the batched implementation, isolated at the pixel where it
    ends (it depends on the whole scanline or diagonal there)."""
    shape, (y, x), num_paths = ISOLATION[direction]
    rng = np.random.default_rng(len(direction))
    cost = rng.integers(0, 30, size=shape).astype(np.float64)
    total = aggregate_costs(torch.from_numpy(cost), 2, 9, num_paths).numpy()
    here = cost[:, y, x]
    if num_paths == 4:
        isolated = total[:, y, x] - 3 * here  # the three other straight paths start here
    else:
        straight = aggregate_costs(torch.from_numpy(cost), 2, 9, 4).numpy()
        isolated = total[:, y, x] - straight[:, y, x] - 3 * here  # three diagonals start here
    expected = reference_path(cost, 2, 9, {**STRAIGHT, **DIAGONAL}[direction])[:, y, x]
    np.testing.assert_allclose(isolated, expected)
    # the path carried information: it differs from the bare cost somewhere
    assert not np.array_equal(expected, here)


def test_accepts_any_layout_and_returns_permuted_view():
    rng = np.random.default_rng(3)
    hwd = torch.from_numpy(rng.integers(0, 20, size=(7, 9, 5)).astype(np.float32))
    as_dhw_view = hwd.permute(2, 0, 1)  # (D, H, W) view of (H, W, D) memory, no copy
    contiguous = as_dhw_view.contiguous()
    a = aggregate_costs(as_dhw_view, 2, 8, 4)
    b = aggregate_costs(contiguous, 2, 8, 4)
    assert torch.equal(a, b)
    assert a.permute(1, 2, 0).is_contiguous()


def test_integer_volume_keeps_exact_integer_arithmetic():
    cost = torch.randint(0, 50, (16, 12, 20), dtype=torch.int16)
    total = aggregate_costs(cost, 7, 60, 8)
    assert total.dtype == torch.int16
    expected = aggregate_costs(cost.double(), 7, 60, 8)
    assert torch.equal(total.double(), expected)
    # fractional penalties on an integer volume fall back to float32, same values
    frac = aggregate_costs(cost, 7.5, 60.25, 4)
    assert frac.dtype == torch.float32
    torch.testing.assert_close(frac.double(), aggregate_costs(cost.double(), 7.5, 60.25, 4))


def test_large_integer_costs_use_int32():
    cost = torch.randint(0, 20000, (4, 6, 7), dtype=torch.int32)
    total = aggregate_costs(cost, 100, 5000, 4)
    assert total.dtype == torch.int32
    np.testing.assert_allclose(total.numpy(), reference(cost.double().numpy(), 100, 5000, 4))


@pytest.mark.parametrize("num_paths, workers", [(8, 1), (4, 1), (4, 3)])
def test_finalize_sees_every_pixel_once_with_the_final_sum(num_paths, workers):
    cost = torch.randint(0, 30, (45, 23, 6), dtype=torch.int16)  # (H, W, D)
    expected = aggregate_hwd(cost, 3, 20, num_paths, workers=1)
    seen = torch.zeros(45, 23, dtype=torch.int64)
    got = torch.zeros_like(expected)

    def finalize(row: int, column: int, block: torch.Tensor) -> None:
        rows, columns = slice(row, row + block.shape[0]), slice(column, column + block.shape[1])
        seen[rows, columns] += 1
        got[rows, columns] = block

    aggregate_hwd(cost, 3, 20, num_paths, finalize=finalize, workers=workers)
    assert torch.equal(seen, torch.ones_like(seen))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("num_paths", [4, 8])
@pytest.mark.parametrize("p1, p2, high", [(3, 11, 24), (10, 110, 40), (7, 60, 188)])
def test_uint8_paths_equal_the_reference(num_paths, p1, p2, high):
    """Costs with ``max + p1 + p2 <= 255`` are aggregated with uint8 paths and an int16
    sum; the last case sits exactly on that bound (every state and the padding
    ``255 - p1`` then use the whole uint8 range)."""
    rng = np.random.default_rng(high + num_paths)
    cost = rng.integers(0, high + 1, size=(9, 14, 17))
    cost[0, 0, 0], cost[1, 1, 1] = 0, high  # the range is attained
    volume = torch.from_numpy(cost).to(torch.int16)
    assert aggregation_dtypes(volume, p1, p2, num_paths) == (torch.uint8, torch.int16)
    total = aggregate_costs(volume, p1, p2, num_paths)
    assert total.dtype == torch.int16
    np.testing.assert_array_equal(total.numpy(), reference(cost.astype(np.float64), p1, p2, num_paths))


def test_uint8_hwd_kernel_equals_the_int16_kernel():
    """The uint8 kernel against the int16 one (the previous implementation) on a volume
    of Motorcycle-like size ratios, one and several workers, with and without diagonals."""
    cost = torch.randint(0, 41, (37, 53, 24), dtype=torch.int16)
    for num_paths in (4, 8):
        wide = aggregate_hwd(cost, 10, 110, num_paths, workers=1)
        for workers in (1, 2, 3):
            narrow = aggregate_hwd(cost.to(torch.uint8), 10, 110, num_paths, workers=workers)
            assert narrow.dtype == torch.int16
            assert torch.equal(narrow, wide)


def test_aggregation_dtypes():
    int16 = torch.tensor([0, 40], dtype=torch.int16)
    assert aggregation_dtypes(int16, 10, 110, 4) == (torch.uint8, torch.int16)
    assert aggregation_dtypes(int16, 10, 205, 4) == (torch.uint8, torch.int16)  # 40 + 10 + 205 = 255
    assert aggregation_dtypes(int16, 10, 206, 4) == (torch.int16, torch.int16)
    assert aggregation_dtypes(int16, 10, 206, 4, cost_range=(0, 39)) == (torch.uint8, torch.int16)
    assert aggregation_dtypes(int16, 10.5, 110, 4) == (torch.float32, torch.float32)
    assert aggregation_dtypes(torch.tensor([-1, 40]), 10, 110, 4) == (torch.int32, torch.int32)
    assert aggregation_dtypes(torch.zeros(2, dtype=torch.float16), 1, 2, 4) == (torch.float32, torch.float32)
    assert working_dtype(int16, 10, 110, 4) == torch.int16


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(p1=-1.0, p2=3.0, num_paths=4), "p1"),
        (dict(p1=5.0, p2=3.0, num_paths=4), "p2"),
        (dict(p1=1.0, p2=3.0, num_paths=6), "num_paths"),
    ],
)
def test_rejects_bad_penalties(kwargs, message):
    with pytest.raises(ValueError, match=message):
        aggregate_costs(torch.zeros(3, 4, 5), **kwargs)


def test_rejects_bad_volumes():
    with pytest.raises(ValueError, match="shape"):
        aggregate_costs(torch.zeros(4, 5), 1, 2, 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        aggregate_costs(torch.full((3, 4, 5), float("nan")), 1, 2, 4)
    with pytest.raises(ValueError, match="torch.Tensor"):
        aggregate_costs(np.zeros((3, 4, 5)), 1, 2, 4)
