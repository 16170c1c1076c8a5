"""Stereo metrics in closed form."""

import numpy as np
import pytest

from kestrel_tools.metrics import stereo_metrics


def test_metrics_on_a_hand_made_case():
    truth = np.array([[10.0, 10.0, 10.0, np.nan], [20.0, 20.0, 20.0, np.inf]])
    predicted = np.array([[10.5, 11.5, 12.5, 3.0], [20.0, np.nan, 23.0, 1.0]])
    scores = stereo_metrics(predicted, truth)
    # six ground-truth pixels; errors 0.5, 1.5, 2.5, 0, invalid, 3.0
    assert scores["bad1"] == pytest.approx(4 / 6)
    assert scores["bad2"] == pytest.approx(3 / 6)
    assert scores["epe"] == pytest.approx((0.5 + 1.5 + 2.5 + 0 + 3.0) / 5)
    assert scores["density"] == pytest.approx(5 / 6)


def test_metrics_refuse_bad_shapes_and_empty_truth():
    with pytest.raises(ValueError, match="ground truth"):
        stereo_metrics(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no valid pixel"):
        stereo_metrics(np.zeros((2, 2)), np.full((2, 2), np.nan))
