"""The offline mapping task on the reduced sample bag: the core mapper on ``/mapping/*``."""

from __future__ import annotations

import pytest

from kestrel_tools.bags import open_bag
from kestrel_tools.evaluation import EvalOptions
from kestrel_tools.evaluation.mapping import RPE_DELTA_M
from kestrel_tools.evaluation.runner import _usable_for_all, evaluate_bag
from kestrel_tools.evaluation.trajectory import read_trajectory
from kestrel_tools.mapping_eval.run import METHODS
from kestrel_tools.sample import topics
from kestrel_tools.trajectory import evaluate


@pytest.fixture(scope="module")
def mapping(sample_bag):
    return evaluate_bag(sample_bag, ["mapping"])[0]


def test_the_sample_bag_has_what_the_mapping_task_needs(sample_bag):
    with open_bag(sample_bag) as bag:
        assert _usable_for_all("mapping", bag, EvalOptions())


def test_raw_odometry_is_scored_as_the_odometry_itself(sample_bag, mapping):
    """Without localization the mapper's poses are the odometry's, so its ATE is the ATE of the
    bag's odometry topic against the truth."""
    with open_bag(sample_bag) as bag:
        truth = read_trajectory(bag, topics.MAPPING_GT_POSE)
        odometry = read_trajectory(bag, topics.MAPPING_ODOM)
        scans = bag.message_count(topics.MAPPING_POINTS)
    expected = evaluate(odometry, truth, "se3", 1e-3, RPE_DELTA_M, "m")
    assert mapping.summary["scans"] == scans == len(truth)
    assert mapping.summary["ate_odometry"] == pytest.approx(expected.ate_rmse, rel=1e-6)
    assert [row["method"] for row in mapping.rows] == list(METHODS)


def test_maps_overlap_the_world(mapping):
    """A few seconds of drive with centimetres of drift: every method's walls meet the world's."""
    for key in ("odometry", "localization", "loop_closure"):
        assert 0.3 < mapping.summary[f"iou_{key}"] <= 1.0
        assert mapping.summary[f"ate_{key}"] < 0.2
