"""Row/column parallelism of the stereo pipeline: helpers, and identical results with
any worker count."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from stereo_scenes import layered_scene
from kestrel_core.stereo import SGMConfig, compute_disparity
from kestrel_core.stereo.cost import cost_volume_hwd
from kestrel_core.parallel import run_parallel, serial_ops, split_range, worker_count
from kestrel_core.stereo.refinement import SelectionCollector, select


@pytest.mark.parametrize("length, parts", [(10, 3), (7, 7), (3, 5), (500, 2), (1, 1)])
def test_split_range_covers_the_range_in_near_equal_parts(length, parts):
    ranges = split_range(length, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:]))
    sizes = [hi - lo for lo, hi in ranges]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert len(ranges) == min(length, parts)


def test_worker_count_follows_torch_threads_on_cpu_only():
    assert worker_count(torch.device("cpu"), 10_000) == torch.get_num_threads()
    assert worker_count(torch.device("cpu"), 40) == 1  # too few lines to split
    assert worker_count(torch.device("cuda", 0), 10_000) == 1


def test_run_parallel_runs_every_task_with_one_thread_and_restores_the_callers():
    caller = torch.get_num_threads()
    seen: dict[int, tuple[int, bool]] = {}
    lock = threading.Lock()

    def task(i: int) -> None:
        with lock:
            seen[i] = (torch.get_num_threads(), torch.is_inference_mode_enabled())

    with torch.inference_mode():
        run_parallel([lambda i=i: task(i) for i in range(3)])
    assert seen == {i: (1, True) for i in range(3)}
    assert torch.get_num_threads() == caller


def test_run_parallel_reraises_a_task_error():
    def failing() -> None:
        raise RuntimeError("task failed")

    with pytest.raises(RuntimeError, match="task failed"):
        run_parallel([lambda: None, failing])


@pytest.mark.parametrize("cost_type", ["ad_gradient", "census"])
def test_cost_volume_in_uint8_and_in_row_ranges_equals_int16(cost_type):
    rng = np.random.default_rng(5)
    left = torch.from_numpy(rng.uniform(0, 255, (97, 61)).astype(np.float32))
    right = torch.roll(left, -3, dims=1) + torch.from_numpy(rng.normal(0, 2, (97, 61)).astype(np.float32))
    config = SGMConfig(max_disparity=24, min_disparity=-2, cost=cost_type)
    wide = cost_volume_hwd(left, right, config)
    narrow = cost_volume_hwd(left, right, config, out=torch.empty(wide.shape, dtype=torch.uint8))
    assert wide.dtype == torch.int16 and int(wide.max()) <= config.max_cost
    assert torch.equal(narrow.to(torch.int16), wide)


def test_selection_collector_accepts_column_blocks_from_threads():
    total = torch.randint(0, 300, (12, 40, 9), dtype=torch.int16)
    expected = select(total.clone(), 8)
    collector = SelectionCollector(tuple(total.shape), 8, total.device)
    blocks = [(r, c) for r in (0, 5) for c in (0, 17)]

    def collect(row: int, column: int) -> None:
        rows, columns = slice(row, row + 5 if row == 0 else 12), slice(column, column + 17 if column == 0 else 40)
        collector(row, column, total[rows, columns].clone())

    with pytest.raises(RuntimeError, match="never finalized"):
        collector.result()
    run_parallel([lambda b=b: collect(*b) for b in blocks])
    got = collector.result()
    for name in ("index", "disparity", "cost", "below", "above", "second"):
        assert torch.equal(getattr(got, name), getattr(expected, name)), name


def test_serial_ops_yields_the_callers_threads_and_restores_them():
    caller = torch.get_num_threads()
    with serial_ops(torch.device("cpu")) as threads:
        assert threads == caller
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == caller


@pytest.mark.parametrize("num_paths", [4, 8])
def test_disparity_does_not_depend_on_the_thread_budget(num_paths):
    """One worker against three (row and column slices of 200x150 pixels)."""
    scene = layered_scene(height=150, width=200, foreground=12, columns=(60, 130))
    left, right = scene.left, scene.right
    config = SGMConfig(max_disparity=32, num_paths=num_paths)
    caller = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            results.append(compute_disparity(left, right, config, "cpu"))
    finally:
        torch.set_num_threads(caller)
    single, several = results
    visible = torch.from_numpy(~scene.occluded)
    error = (single.disparity - torch.from_numpy(scene.disparity)).abs()[visible]
    assert float((error <= 1.0).float().mean()) > 0.9  # NaN (invalid) counts as wrong
    assert torch.equal(single.disparity.nan_to_num(-1.0), several.disparity.nan_to_num(-1.0))
    assert torch.equal(single.confidence, several.confidence)
