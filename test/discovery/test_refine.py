"""Edge-aware refinement of token masks against a pixel-exact synthetic object."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kestrel_core.discovery.evaluation import mask_iou
from kestrel_core.discovery.refine import RefineConfig, guided_filter, refine_to_instances, upsample_to_instances

PATCH = 16


def disc_scene(height: int = 160, width: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """A textured grey background with a red disc whose edge crosses patches obliquely."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(110, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((height, width), np.uint8)
    cv2.circle(truth, (97, 75), 43, 1, -1)
    image[truth.astype(bool)] = (200, 40, 30)
    return image, truth.astype(bool)


def token_mask(truth: np.ndarray) -> np.ndarray:
    """``(1, h, w)`` majority vote of the truth per patch (what a perfect MaskCut gives)."""
    h, w = truth.shape[0] // PATCH, truth.shape[1] // PATCH
    share = truth.reshape(h, PATCH, w, PATCH).mean(axis=(1, 3))
    return (share >= 0.5)[None]


def test_guided_filter_keeps_a_constant_source():
    image, truth = disc_scene()
    constant = np.full((*truth.shape, 1), 0.7, np.float32)
    out = guided_filter(image.astype(np.float32) / 255, constant, 8, 1e-2)
    np.testing.assert_allclose(out, 0.7, atol=1e-4)


def test_refined_mask_beats_plain_upsampling():
    image, truth = disc_scene()
    tokens = token_mask(truth)
    plain = upsample_to_instances(tokens, *truth.shape) == 1
    refined = refine_to_instances(tokens, image, RefineConfig()) == 1
    assert mask_iou(refined, truth) > mask_iou(plain, truth)
    assert mask_iou(refined, truth) > 0.95


def test_overlapping_objects_become_a_disjoint_instance_map():
    image, truth = disc_scene()
    tokens = np.concatenate([token_mask(truth), np.zeros_like(token_mask(truth))])
    tokens[1, :, :3] = True                                    # a second object on the left
    instances = refine_to_instances(tokens, image)
    assert instances.dtype == np.int32 and set(np.unique(instances)) == {0, 1, 2}
    assert (instances[truth] == 1).mean() > 0.95
    assert (instances[:, :PATCH * 2] == 2).mean() > 0.9


def test_no_masks_give_background_only():
    image, _ = disc_scene()
    assert not refine_to_instances(np.zeros((0, 10, 14), bool), image).any()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        refine_to_instances(np.zeros((1, 2, 2), bool), np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="threshold"):
        RefineConfig(threshold=1.0)


def test_fast_guided_filter_matches_the_full_one():
    image, truth = disc_scene()
    soft = cv2.resize(token_mask(truth)[0].astype(np.float32), truth.shape[::-1], interpolation=cv2.INTER_LINEAR)
    guide = image.astype(np.float32) / 255
    full = guided_filter(guide, soft[..., None], 16, 1e-2)[..., 0] >= 0.5
    fast = guided_filter(guide, soft[..., None], 16, 1e-2, subsample=4)[..., 0] >= 0.5
    assert mask_iou(fast, full) > 0.98
