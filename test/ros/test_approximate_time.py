"""The message_filters stand-in's matching policy, without a ROS graph."""

import random

import pytest

from kestrel_ros.compat.approximate_time import ApproximateTimePolicy

MS = 1_000_000


def feed(policy, events):
    out = []
    for index, stamp in events:
        out += policy.add(index, stamp, (index, stamp))
    return [tuple(s for _, s in match) for match in out]


def test_exact_pairs_are_matched_in_order():
    policy = ApproximateTimePolicy(2, queue_size=5, slop=0.001)
    events = [(i % 2, (i // 2) * 100 * MS) for i in range(10)]
    assert feed(policy, events) == [(k * 100 * MS, k * 100 * MS) for k in range(5)]
    assert policy.dropped == [0, 0]


def test_jittered_pairs_within_slop_match_and_outside_do_not():
    policy = ApproximateTimePolicy(2, queue_size=5, slop=0.010)
    matches = feed(policy, [(0, 0), (1, 4 * MS), (0, 100 * MS), (1, 125 * MS), (0, 200 * MS),
                            (1, 203 * MS)])
    assert matches == [(0, 4 * MS), (200 * MS, 203 * MS)]
    assert sum(policy.dropped) == 2  # 100 ms and 125 ms could never pair


def test_unmatched_stream_is_bounded_by_queue_size():
    policy = ApproximateTimePolicy(2, queue_size=3, slop=0.001)
    assert feed(policy, [(0, k * MS) for k in range(10)]) == []
    assert policy.dropped[0] == 7


def test_late_message_is_sorted_into_place():
    policy = ApproximateTimePolicy(2, queue_size=5, slop=0.001)
    assert feed(policy, [(0, 20 * MS), (0, 10 * MS), (1, 10 * MS), (1, 20 * MS)]) == [
        (10 * MS, 10 * MS), (20 * MS, 20 * MS)]


def test_random_streams_obey_the_contract():
    rng = random.Random(4)
    policy = ApproximateTimePolicy(3, queue_size=8, slop=0.005)
    events = []
    for frame in range(200):
        for index in range(3):
            if rng.random() < 0.9:
                events.append((index, frame * 33 * MS + rng.randint(-2, 2) * MS))
    events.sort(key=lambda e: e[1] + rng.randint(0, 3) * MS)
    matches = feed(policy, events)
    assert len(matches) > 100
    for match in matches:
        assert max(match) - min(match) <= 5 * MS
    for index in range(3):
        used = [m[index] for m in matches]
        assert used == sorted(used) and len(set(used)) == len(used)


@pytest.mark.parametrize("args", [(1, 5, 0.1), (2, 0, 0.1), (2, 5, -1.0)])
def test_invalid_arguments_are_rejected(args):
    with pytest.raises(ValueError):
        ApproximateTimePolicy(*args)
