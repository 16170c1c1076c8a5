"""The compiled CPU kernels of SGM give the torch reference's results bit for bit.

The torch reference (:mod:`kestrel_core.stereo.aggregation`) is itself checked against a
literal loop implementation of the recurrence in ``test_sgm_aggregation.py``; here every
statistic the selection produces is compared exactly, on random volumes chosen to hit the
edges of the kernels (widths around the 32-column parallel slices, one to three
disparities, zero and equal penalties) and on the real Motorcycle pair.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.stereo import SGMConfig, compiled, compute_disparity, disparity_from_cost_volume
from kestrel_core.stereo.aggregation import aggregate_hwd, aggregation_dtypes
from kestrel_core.stereo.refinement import Selection, SelectionCollector

pytestmark = pytest.mark.skipif(not compiled.available(), reason="numba is not installed")

FIELDS = ("index", "disparity", "cost", "below", "above", "second")


def torch_selection(cost: torch.Tensor, p1: int, p2: int, num_paths: int, largest: int) -> Selection:
    """The reference: torch aggregation with the selection collector."""
    total = torch.empty(cost.shape, dtype=torch.int16)
    collector = SelectionCollector(tuple(cost.shape), largest, cost.device)
    with torch.inference_mode():
        aggregate_hwd(cost, p1, p2, num_paths, out=total, finalize=collector)
    return collector.result()


def assert_same_selection(actual: Selection, expected: Selection) -> None:
    for field in FIELDS:
        a, e = getattr(actual, field), getattr(expected, field)
        assert a.dtype == e.dtype and a.shape == e.shape, field
        mismatched = int((a != e).sum())
        assert mismatched == 0, f"{field}: {mismatched} pixels differ"


@pytest.mark.parametrize("num_paths", [4, 8])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16])
@pytest.mark.parametrize(
    "shape, p1, p2",
    [
        ((9, 31, 16), 10, 110),  # narrower than one parallel slice
        ((11, 65, 24), 10, 110),  # two full slices and one column
        ((6, 40, 1), 3, 9),  # a single disparity: no neighbours, no second best
        ((5, 33, 2), 3, 9),
        ((7, 20, 3), 0, 0),  # no smoothness at all
        ((8, 12, 37), 7, 7),  # P2 = P1
    ],
)
def test_random_volumes_equal_the_torch_reference(shape, p1, p2, dtype, num_paths):
    generator = np.random.default_rng(sum(shape) + p1 + num_paths)
    cost = torch.from_numpy(generator.integers(0, 60, shape).astype(np.int16)).to(dtype)
    largest = shape[2] + 4
    expected = torch_selection(cost, p1, p2, num_paths, largest)
    actual = compiled.aggregate_and_select(cost.contiguous(), p1, p2, num_paths, largest)
    assert_same_selection(actual, expected)


def test_ties_pick_the_smallest_index():
    """A flat volume: every disparity ties; both kernels must report index 0."""
    cost = torch.full((4, 50, 8), 5, dtype=torch.uint8)
    selection = compiled.aggregate_and_select(cost, 2, 20, 4, 7)
    assert int(selection.index.max()) == 0
    assert torch.equal(selection.disparity, torch.full((4, 50), 7, dtype=torch.int32))
    assert_same_selection(selection, torch_selection(cost, 2, 20, 4, 7))


@pytest.mark.parametrize("num_paths", [4, 8])
@pytest.mark.parametrize("cost_type", ["ad_gradient", "census"])
def test_motorcycle_disparity_is_identical_with_either_kernel(motorcycle_crop, cost_type, num_paths):
    left, right = motorcycle_crop
    config = SGMConfig(max_disparity=64, cost=cost_type, num_paths=num_paths)
    fast = compute_disparity(left, right, config, "cpu")
    reference = compute_disparity(left, right, config, "cpu", kernel="torch")
    assert torch.equal(fast.disparity.isnan(), reference.disparity.isnan())
    valid = ~reference.disparity.isnan()
    assert valid.float().mean() > 0.5  # a real result, not an empty one
    assert torch.equal(fast.disparity[valid], reference.disparity[valid])
    assert torch.equal(fast.confidence, reference.confidence)


def test_integer_cost_volume_entry_point_uses_the_same_results():
    generator = np.random.default_rng(3)
    cost = torch.from_numpy(generator.integers(0, 50, (24, 20, 70)).astype(np.int16))  # (D, H, W)
    config = SGMConfig(max_disparity=24)
    fast = disparity_from_cost_volume(cost, config)
    reference = disparity_from_cost_volume(cost, config, kernel="torch")
    assert torch.equal(fast.disparity.isnan(), reference.disparity.isnan())
    assert torch.equal(torch.nan_to_num(fast.disparity), torch.nan_to_num(reference.disparity))


def test_supports_only_narrow_integer_cpu_volumes():
    def supported(volume: torch.Tensor, p1: float, num_paths: int, max_cost: int) -> bool:
        _, sum_dtype = aggregation_dtypes(volume, p1, 110, num_paths, (0, max_cost))
        return compiled.supports(volume, num_paths, sum_dtype)

    small = torch.zeros((4, 4, 8), dtype=torch.uint8)
    assert supported(small, 10, 4, max_cost=60)
    assert supported(small.to(torch.int16), 10, 8, max_cost=60)
    assert not supported(small.float(), 10, 4, max_cost=60)  # floating costs
    assert not supported(small.to(torch.int32), 10, 4, max_cost=60)
    assert not supported(small, 10.5, 4, max_cost=60)  # fractional penalty
    assert not supported(small, 10, 4, max_cost=5000)  # the sum overflows int16
    assert not supported(small.to("meta"), 10, 4, max_cost=60)  # not a CPU tensor


def test_floating_cost_volume_falls_back_to_the_reference():
    generator = np.random.default_rng(4)
    cost = torch.from_numpy(generator.random((16, 12, 40), dtype=np.float32))
    config = SGMConfig(max_disparity=16, p1=0.1, p2=0.8)
    auto = disparity_from_cost_volume(cost, config)
    reference = disparity_from_cost_volume(cost, config, kernel="torch")
    assert torch.equal(torch.nan_to_num(auto.disparity, -1.0), torch.nan_to_num(reference.disparity, -1.0))


def test_without_numba_the_reference_runs(monkeypatch, motorcycle_crop):
    left, right = motorcycle_crop
    config = SGMConfig(max_disparity=32)
    expected = compute_disparity(left, right, config, "cpu")
    monkeypatch.setattr(compiled, "numba", None)
    assert not compiled.available()
    without = compute_disparity(left, right, config, "cpu")
    assert torch.equal(torch.nan_to_num(without.disparity), torch.nan_to_num(expected.disparity))


def test_a_kernel_that_fails_to_compile_falls_back_to_the_reference(monkeypatch, motorcycle_crop):
    """An older system numba may fail to compile the kernels: warn once, then use torch."""
    import numba

    left, right = motorcycle_crop
    config = SGMConfig(max_disparity=32)
    expected = compute_disparity(left, right, config, "cpu", kernel="torch")
    monkeypatch.setattr(compiled, "_failure", None)  # restored after the test

    def cannot_compile(*_args):
        raise numba.core.errors.TypingError("simulated failure")

    monkeypatch.setattr(compiled, "_horizontal", cannot_compile)
    with pytest.warns(RuntimeWarning, match="could not compile the SGM kernels"):
        first = compute_disparity(left, right, config, "cpu")
    assert not compiled.available()
    second = compute_disparity(left, right, config, "cpu")  # no second warning, same result
    for result in (first, second):
        assert torch.equal(torch.nan_to_num(result.disparity), torch.nan_to_num(expected.disparity))


def test_bad_arguments_are_rejected(motorcycle_crop):
    left, right = motorcycle_crop
    with pytest.raises(ValueError, match="kernel must be one of"):
        compute_disparity(left, right, SGMConfig(max_disparity=16), "cpu", kernel="numba")
    cost = torch.zeros((4, 5, 6), dtype=torch.uint8)
    with pytest.raises(ValueError, match="scratch"):
        compiled.aggregate_and_select(cost, 1, 2, 4, 5, scratch=torch.zeros((4, 5, 7), dtype=torch.int16))
    with pytest.raises(ValueError, match="contiguous"):
        compiled.aggregate_and_select(cost.permute(1, 0, 2), 1, 2, 4, 5)


@pytest.fixture(scope="module")
def motorcycle_crop() -> tuple[np.ndarray, np.ndarray]:
    """A 96x200 grey crop of the real Middlebury Motorcycle pair."""
    from kestrel_tools.datasets import load_middlebury_motorcycle

    sample = load_middlebury_motorcycle()
    rows, cols = slice(200, 296), slice(300, 500)
    return sample.left[rows, cols].copy(), sample.right[rows, cols].copy()
