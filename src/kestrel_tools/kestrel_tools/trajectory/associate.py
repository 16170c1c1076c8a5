"""One-to-one association of two trajectories' poses by nearest timestamp."""

from __future__ import annotations

import numpy as np

from kestrel_tools.trajectory.types import Trajectory

def _first_of_each(values: np.ndarray) -> np.ndarray:
    """(K,) bool: True at the first occurrence of each value."""
    first = np.zeros(values.shape, dtype=bool)
    first[np.unique(values, return_index=True)[1]] = True
    return first


def associate_times(est_times: np.ndarray, ref_times: np.ndarray,
                    max_diff: float = 0.02) -> np.ndarray:
    """Pair each estimated time with a distinct reference time at most ``max_diff`` away.

    The result is the greedy matching that repeatedly takes the closest remaining pair (as
    TUM's associate.py does), computed in vectorized rounds: ``np.searchsorted`` lists the
    reference times within ``max_diff`` of each estimated one, and each round keeps every
    pair that is the closest remaining one for both its poses (a handful of rounds on real
    clocks). Memory grows with the number of such candidate pairs.

    Args:
        est_times: (N,) non-decreasing seconds.
        ref_times: (M,) non-decreasing seconds.
        max_diff: largest accepted time difference, seconds.

    Returns:
        (K, 2) int64 index pairs (estimate, reference), both columns increasing.
    """
    est_times = np.asarray(est_times, dtype=np.float64)
    ref_times = np.asarray(ref_times, dtype=np.float64)
    if max_diff < 0:
        raise ValueError(f"max_diff must be >= 0, got {max_diff}")
    if est_times.size == 0 or ref_times.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    # Every reference time within max_diff of each estimated time, as flat index pairs.
    low = np.searchsorted(ref_times, est_times - max_diff, side="left")
    high = np.searchsorted(ref_times, est_times + max_diff, side="right")
    counts = high - low
    est_idx = np.repeat(np.arange(est_times.size), counts)
    starts = np.repeat(low - (np.cumsum(counts) - counts), counts)
    ref_idx = starts + np.arange(est_idx.size)
    signed = ref_times[ref_idx] - est_times[est_idx]
    close = np.abs(signed) <= max_diff
    est_idx, ref_idx, signed = est_idx[close], ref_idx[close], signed[close]
    # Closest first; at equal distance the reference after the estimate wins. Both poses of a
    # tied pair agree on that rule, so exact ties (synthetic clocks) never chain into rounds.
    order = np.lexsort((ref_idx, est_idx, -signed, np.abs(signed)))
    est_idx, ref_idx = est_idx[order], ref_idx[order]

    taken_est, taken_ref = [], []
    while est_idx.size:
        take = _first_of_each(est_idx) & _first_of_each(ref_idx)
        taken_est.append(est_idx[take])
        taken_ref.append(ref_idx[take])
        free = ~np.isin(est_idx, est_idx[take]) & ~np.isin(ref_idx, ref_idx[take])
        est_idx, ref_idx = est_idx[free], ref_idx[free]
    if not taken_est:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.column_stack([np.concatenate(taken_est), np.concatenate(taken_ref)])
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")].astype(np.int64)
    # Keep both sides in time order: drop a pair whose reference pose precedes an earlier
    # pair's (possible only when max_diff exceeds the sampling interval).
    earlier = np.maximum.accumulate(np.concatenate([[-1], pairs[:-1, 1]]))
    return pairs[pairs[:, 1] > earlier]


def associate(est: Trajectory, ref: Trajectory, max_diff: float = 0.02) -> np.ndarray:
    """(K, 2) index pairs (estimate, reference) by nearest timestamp; see ``associate_times``."""
    return associate_times(est.times, ref.times, max_diff)
