"""Pseudo-labels of the discovery head on synthetic cases whose patches are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery.pseudo_labels import (ClusterEvidence, PatchTargets, PseudoLabelConfig,
                                                  box_targets, cluster_patch_masks, pseudo_labels,
                                                  targets_from_predictions)
from kestrel_core.geometry.camera import PinholeCamera

GRID = (8, 10)                                   # token grid; each patch is 10x10 pixels
CAMERA = PinholeCamera(width=100, height=80, K=np.array([[50.0, 0, 49.5], [0, 50.0, 39.5], [0, 0, 1]]))


def patch_points(cells: list[tuple[int, int]], depth: float = 5.0, per_patch: int = 3) -> np.ndarray:
    """``(N, 3)`` points in the camera frame that project into the given ``(row, col)``
    patches (``per_patch`` points each, inside the patch)."""
    offsets = np.array([2.0, 5.0, 8.0])[:per_patch]
    pixels = np.array([(10 * c + o, 10 * r + o) for r, c in cells for o in offsets])
    x = (pixels[:, 0] - 49.5) * depth / 50.0
    y = (pixels[:, 1] - 39.5) * depth / 50.0
    return np.stack([x, y, np.full(len(pixels), depth)], axis=1)


def evidence_of(points: np.ndarray, noise: int = 4) -> ClusterEvidence:
    """One cluster (label 0), plus ``noise`` unclustered points (label -1) and a NaN point;
    the LiDAR frame is the camera frame."""
    extra = np.vstack([patch_points([(0, 9)])[:1].repeat(noise, axis=0), np.full((1, 3), np.nan)])
    labels = np.concatenate([np.zeros(len(points), np.int64), np.full(noise + 1, -1)])
    return ClusterEvidence(np.vstack([points, extra]), labels, np.eye(4), CAMERA)


def box(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(GRID, bool)
    mask[rows, cols] = True
    return mask


def test_projected_cluster_covers_exactly_its_patches_with_beam_gaps_closed():
    # Points on rows 5 and 7 only (a gap between LiDAR beams), columns 1..3.
    cells = [(r, c) for r in (5, 7) for c in (1, 2, 3)]
    masks = cluster_patch_masks(evidence_of(patch_points(cells)), GRID, PseudoLabelConfig(closing=1))
    assert masks.shape == (1, *GRID)
    np.testing.assert_array_equal(masks[0], box(slice(5, 8), slice(1, 4)))
    unclosed = cluster_patch_masks(evidence_of(patch_points(cells)), GRID, PseudoLabelConfig(closing=0))
    beam_gap = box(slice(6, 7), slice(0, 10))
    np.testing.assert_array_equal(unclosed[0], box(slice(5, 8), slice(1, 4)) & ~beam_gap)


def test_round_one_merges_confident_masks_and_a_cluster_and_ignores_the_rest():
    confident, unsure = box(slice(1, 4), slice(1, 4)), box(slice(5, 7), slice(6, 9))
    masks, scores = np.stack([confident, unsure]), np.array([0.9, 0.1], np.float32)
    cluster_cells = [(r, c) for r in (5, 6) for c in (1, 2, 3)]
    targets = pseudo_labels(masks, scores, PseudoLabelConfig(min_mask_score=0.3, boundary_ignore=1),
                            evidence_of(patch_points(cluster_cells)))
    expected = np.zeros(GRID, np.int32)
    expected[confident] = 1
    expected[box(slice(5, 7), slice(1, 4))] = 2                            # the cluster's own object
    np.testing.assert_array_equal(targets.instances, expected)
    np.testing.assert_array_equal(targets.objectness, (expected > 0).astype(np.float32))
    ring = box(slice(0, 5), slice(0, 5)) | box(slice(4, 8), slice(0, 5))   # objects dilated by 1
    np.testing.assert_array_equal(targets.valid, (expected > 0) | ~(ring | unsure))


def test_a_cluster_confirms_a_low_score_mask_and_joins_it():
    low = box(slice(5, 7), slice(6, 9))
    masks, scores = low[None], np.array([0.1], np.float32)
    cells = [(r, c) for r in (5, 6) for c in (6, 7, 8, 9)]               # the mask and one column more
    targets = pseudo_labels(masks, scores, PseudoLabelConfig(boundary_ignore=0),
                            evidence_of(patch_points(cells)))
    np.testing.assert_array_equal(targets.instances, box(slice(5, 7), slice(6, 10)).astype(np.int32))
    assert targets.valid.all()
    without_scan = pseudo_labels(masks, scores, PseudoLabelConfig(boundary_ignore=0))
    assert not without_scan.objectness.any()
    np.testing.assert_array_equal(without_scan.valid, ~low)


def test_touching_objects_are_kept_apart_by_background_contact_patches():
    left, right = box(slice(2, 5), slice(1, 4)), box(slice(2, 5), slice(4, 7))
    targets = pseudo_labels(np.stack([left, right]), np.array([0.8, 0.8], np.float32),
                            PseudoLabelConfig(boundary_ignore=0))
    expected = np.zeros(GRID, np.int32)
    expected[2:5, 1:3], expected[2:5, 5:7] = 1, 2
    np.testing.assert_array_equal(targets.instances, expected)
    assert targets.valid.all()


def test_masks_over_most_of_the_image_or_several_corners_are_background():
    background = ~box(slice(2, 4), slice(2, 4))
    targets = pseudo_labels(background[None], np.array([0.9], np.float32),
                            PseudoLabelConfig(max_area=0.5, boundary_ignore=0))
    assert not targets.objectness.any() and targets.valid.all()            # negatives, not ignored
    floor = box(slice(6, 8), slice(0, 10))                                 # 20 %, both bottom corners
    corner = box(slice(6, 8), slice(0, 3))                                 # one corner only
    targets = pseudo_labels(np.stack([floor]), np.array([0.9], np.float32),
                            PseudoLabelConfig(max_corners=1, boundary_ignore=0))
    assert not targets.objectness.any() and targets.valid.all()
    targets = pseudo_labels(corner[None], np.array([0.9], np.float32), PseudoLabelConfig(boundary_ignore=0))
    np.testing.assert_array_equal(targets.instances, corner.astype(np.int32))


def test_round_two_targets_are_the_confident_predictions():
    probability = np.full(GRID, 0.1, np.float32)
    probability[1:4, 1:4] = 0.95                  # object
    probability[6, 8] = 0.9                       # one patch only: below min_patches
    probability[5:7, 2:4] = 0.5                   # unsure band
    targets = targets_from_predictions(probability, PseudoLabelConfig(high=0.7, low=0.3, min_patches=2))
    np.testing.assert_array_equal(targets.instances, box(slice(1, 4), slice(1, 4)).astype(np.int32))
    unsure = box(slice(5, 7), slice(2, 4)) | box(slice(6, 7), slice(8, 9))
    np.testing.assert_array_equal(targets.valid, ~unsure)


def test_round_two_keeps_the_round_one_objects_the_head_misses():
    probability = np.full(GRID, 0.1, np.float32)
    probability[1:4, 1:4] = 0.95                  # predicted: 9 patches
    probability[5, 1:3] = 0.95                    # predicted: 2 patches
    previous = np.zeros(GRID, np.int32)
    previous[1:3, 1:4] = 1                        # all predicted: nothing to add
    previous[5:7, 6:9] = 2                        # none predicted: kept
    previous[5:7, 1:3] = 3                        # half predicted (not below keep_overlap): not added
    earlier = PatchTargets.from_instances(previous, np.zeros(GRID, bool), 0)
    targets = targets_from_predictions(probability, PseudoLabelConfig(keep_overlap=0.5), earlier)
    expected = np.zeros(GRID, np.int32)
    expected[1:4, 1:4], expected[5, 1:3], expected[5:7, 6:9] = 1, 2, 3
    np.testing.assert_array_equal(targets.instances, expected)
    assert targets.valid.all()
    alone = targets_from_predictions(probability, PseudoLabelConfig(keep_overlap=0.5))
    np.testing.assert_array_equal(alone.instances, np.where(expected == 3, 0, expected))


def test_box_targets_are_log_distances_to_the_object_box():
    instances = np.zeros(GRID, np.int32)
    instances[2:5, 3:7] = 1
    targets = box_targets(instances)
    assert np.isnan(targets[:, 0, 0]).all()
    # patch (2, 3): centre (3.5, 2.5); box x 3..7, y 2..5
    np.testing.assert_allclose(np.exp(targets[:, 2, 3]), [0.5, 0.5, 3.5, 2.5])
    np.testing.assert_allclose(np.exp(targets[:, 4, 6]), [3.5, 2.5, 0.5, 0.5])


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="low < high"):
        PseudoLabelConfig(high=0.3, low=0.6)
    with pytest.raises(ValueError, match="max_area"):
        PseudoLabelConfig(max_area=0.0)
    with pytest.raises(ValueError, match="masks must be"):
        pseudo_labels(np.zeros(GRID, bool), np.zeros(1, np.float32))
