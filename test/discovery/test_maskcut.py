"""MaskCut on planted objects, on a constant input, and on real Motorcycle features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.discovery import DiscoveryConfig, MaskCutConfig, discover_objects, maskcut
from kestrel_core.discovery.evaluation import best_iou, foreground_from_disparity
from kestrel_tools.datasets import load_middlebury_motorcycle

from discovery_synthetic import planted_keys


def three_objects(h: int = 18, w: int = 24) -> np.ndarray:
    regions = np.zeros((h, w), np.int64)
    regions[2:8, 3:10] = 1      # 42 tokens
    regions[10:16, 14:22] = 2   # 48 tokens
    regions[3:6, 16:20] = 3     # 12 tokens
    return regions


def test_planted_objects_are_found_one_by_one(device):
    regions = three_objects()
    result = maskcut(planted_keys(regions, noise=0.1).to(device), regions.shape, MaskCutConfig(max_objects=5, tau=0.3))
    found = {int(regions[mask][0]) for mask in result.masks}
    assert found == {1, 2, 3}
    for mask in result.masks:
        label = int(regions[mask][0])
        np.testing.assert_array_equal(mask, regions == label)
    assert not np.any(result.masks.sum(axis=0) > 1)             # disjoint
    scores = result.score_array()
    assert scores.dtype == np.float32 and np.all((scores > 0.5) & (scores <= 1.0))
    assert result.descriptors.shape == (result.count, 32)


def test_max_objects_limits_the_count():
    regions = three_objects()
    result = maskcut(planted_keys(regions), regions.shape, MaskCutConfig(max_objects=1, tau=0.3))
    assert result.count == 1


def test_identical_keys_give_an_empty_result():
    result = maskcut(torch.full((12 * 16, 8), 0.7), (12, 16))
    assert result.count == 0 and result.masks.shape == (0, 12, 16) and result.score_array().shape == (0,)


def test_contrast_score_orders_a_weak_object_below_a_strong_one():
    regions = three_objects()
    keys = planted_keys(regions, noise=0.1)
    weak = torch.as_tensor(regions.ravel() == 3)
    keys[weak] = 0.6 * keys[weak] + 0.4 * keys[torch.as_tensor(regions.ravel() == 0)].mean(dim=0)
    result = maskcut(keys, regions.shape, MaskCutConfig(max_objects=5, tau=0.3))
    by_label = {int(regions[m][0]): s.contrast for m, s in zip(result.masks, result.scores)}
    assert by_label[3] < by_label[1] and by_label[3] < by_label[2]


@pytest.fixture(scope="module")
def pretrained_model():
    from kestrel_core.features.checkpoint import load_feature_model

    try:
        model = load_feature_model(None, "cpu")
    except RuntimeError as err:
        pytest.skip(f"no pretrained feature model installed: {err}")
    if "dinov2" not in model.model_id:
        pytest.skip(f"the best installed model {model.model_id!r} is not the pretrained ViT")
    return model


def test_motorcycle_is_discovered(pretrained_model):
    """CorLoc idea: some discovered mask overlaps the object derived from real depth."""
    sample = load_middlebury_motorcycle()
    truth = foreground_from_disparity(sample.ground_truth)
    assert 0.15 < truth.mean() < 0.6                         # a plausible object, not the scene
    found = discover_objects(sample.left, pretrained_model, DiscoveryConfig(size=480))
    assert found.instances.shape == truth.shape and found.instances.dtype == np.int32
    assert 1 <= found.count <= 3
    iou, _ = best_iou(found.instances, truth)
    assert iou >= 0.5


def test_constant_image_gives_no_objects(tiny_checkpoint):
    from kestrel_core.features.checkpoint import load_feature_model

    model = load_feature_model(tiny_checkpoint, "cpu")
    found = discover_objects(np.full((64, 80, 3), 128, np.uint8), model)
    assert found.count == 0 and found.scores.shape == (0,)
    assert found.instances.shape == (64, 80) and not found.instances.any()


def test_image_smaller_than_a_patch_is_rejected(tiny_checkpoint):
    from kestrel_core.features.checkpoint import load_feature_model

    model = load_feature_model(tiny_checkpoint, "cpu")
    with pytest.raises(ValueError, match="smaller than one 16x16 patch"):
        discover_objects(np.zeros((10, 40, 3), np.uint8), model)
    with pytest.raises(ValueError, match="grey uint8 array"):
        discover_objects(np.zeros((40, 40, 3), np.float32), model)
    with pytest.raises(ValueError, match="grey uint8 array"):
        discover_objects(np.zeros((40, 40, 4), np.uint8), model)
