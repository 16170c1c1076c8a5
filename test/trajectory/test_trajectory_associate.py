"""Association by timestamp: time offsets, different rates, ties and the greedy optimum."""

import numpy as np
import pytest
from trajectory_data import real

from kestrel_tools.trajectory import Trajectory, associate, associate_times, evaluate


@pytest.mark.parametrize("offset", [-0.003, 0.0, 0.003])
def test_a_small_clock_offset_pairs_each_pose_with_itself(offset):
    ref = real("fr1_xyz")  # 100 Hz, gaps from 7.7 ms: 3 ms is nearer than any other pose
    est = Trajectory(ref.times + offset, ref.positions, ref.quaternions)
    pairs = associate(est, ref, max_diff=0.02)
    np.testing.assert_array_equal(pairs, np.column_stack([np.arange(len(ref))] * 2))
    errors = evaluate(est, ref, "none")
    assert errors.pairs == len(ref) and errors.ate_rmse == 0.0


def test_an_offset_beyond_max_diff_pairs_nothing():
    ref = real("fr1_xyz")
    late = Trajectory(ref.times + 100.0, ref.positions, ref.quaternions)
    assert associate(late, ref).shape == (0, 2)
    with pytest.raises(ValueError, match="no pose pairs within 0.02 s"):
        evaluate(late, ref)


def test_a_slower_estimate_finds_its_own_poses_in_the_reference():
    ref = real("euroc_v102")  # 200 Hz
    est = ref.take(np.arange(0, len(ref), 10))  # 20 Hz
    est = Trajectory(est.times + 0.0015, est.positions, est.quaternions)
    pairs = associate(est, ref, max_diff=0.02)
    np.testing.assert_array_equal(pairs[:, 1], pairs[:, 0] * 10)
    assert len(pairs) == len(est)


def test_a_faster_estimate_is_paired_one_to_one():
    ref = real("fr1_xyz").take(np.arange(0, 3000, 3))  # about 33 Hz
    est = real("fr1_xyz")  # 100 Hz
    pairs = associate(est, ref, max_diff=0.02)
    assert len(np.unique(pairs[:, 1])) == len(pairs) == len(ref)
    assert np.all(np.diff(pairs, axis=0) > 0)
    assert np.abs(est.times[pairs[:, 0]] - ref.times[pairs[:, 1]]).max() <= 0.02


def test_duplicate_timestamps_in_fr2_desk_keep_their_own_partners():
    ref = real("fr2_desk")
    assert (np.diff(ref.times) == 0).sum() == 1
    pairs = associate(ref, ref)
    np.testing.assert_array_equal(pairs, np.column_stack([np.arange(len(ref))] * 2))


def test_exact_half_period_ties_resolve_in_one_direction():
    times = np.arange(1000) * 0.5
    pairs = associate_times(times + 0.25, times, max_diff=0.3)
    np.testing.assert_array_equal(pairs[:, 1] - pairs[:, 0], 1)  # the later reference wins
    assert len(pairs) == 999


def greedy(est_times, ref_times, max_diff):
    """TUM associate.py's rule, by brute force: closest remaining pair first."""
    candidates = sorted((abs(r - e), -(r - e), i, j) for i, e in enumerate(est_times)
                        for j, r in enumerate(ref_times) if abs(r - e) <= max_diff)
    used_est, used_ref, pairs = set(), set(), []
    for *_, i, j in candidates:
        if i not in used_est and j not in used_ref:
            used_est.add(i)
            used_ref.add(j)
            pairs.append((i, j))
    pairs.sort()
    kept, last = [], -1
    for i, j in pairs:  # keep time order on both sides, as associate_times does
        if j > last:
            kept.append((i, j))
            last = j
    return kept


def test_matches_the_brute_force_greedy_matching():
    rng = np.random.default_rng(5)
    for trial in range(60):
        est = np.sort(rng.uniform(0.0, 1.0, rng.integers(1, 30)))
        ref = np.sort(rng.uniform(0.0, 1.0, rng.integers(1, 30)))
        if trial % 3 == 0:  # many exact ties and duplicates
            est, ref = np.round(est, 1), np.round(ref, 1)
        max_diff = rng.uniform(0.0, 0.1)
        assert [tuple(p) for p in associate_times(est, ref, max_diff)] == \
            greedy(est, ref, max_diff)
