"""Image-guided classical depth completion and the see-through (occlusion) point test:
closed-form synthetic scenes, then the simulated 32-beam LiDAR of the real Motorcycle."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.fusion import complete_depth_classical
from kestrel_core.fusion.guided_completion import GuidedCompletionConfig, complete_depth_guided, nearest_fill
from kestrel_core.fusion.occlusion import OcclusionFilterConfig, remove_occluded_points

HEIGHT, WIDTH, EDGE = 96, 128, 61  # the depth and image edge lies between columns 60 and 61


def scan_mask(row_step: int = 8, col_step: int = 3, row_offset: int = 2) -> np.ndarray:
    """``(HEIGHT, WIDTH)`` bool: LiDAR-like samples, dense along scan lines, sparse across."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[row_offset::row_step, ::col_step] = True
    return mask


@pytest.fixture
def two_planes() -> tuple[np.ndarray, np.ndarray]:
    """A tilted near plane left of ``EDGE`` and a far plane right of it, as ``depth (H, W)``,
    and an RGB image whose only edge is the depth edge (with mild texture on both sides)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    depth = np.where(cols < EDGE, 2.0 + 0.004 * cols + 0.002 * rows, 4.5 - 0.003 * cols + 0.001 * rows)
    rng = np.random.default_rng(0)
    image = np.where((cols < EDGE)[..., None], np.array([200, 60, 40]), np.array([40, 90, 200]))
    image = np.clip(image + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)
    return depth.astype(np.float32), image


def test_guided_completion_recovers_a_depth_edge_aligned_with_an_image_edge(two_planes):
    depth, image = two_planes
    # scan columns every 3 px starting at 0 put samples at 60 and 63: the edge falls between
    sparse = np.where(scan_mask(), depth, np.nan).astype(np.float32)
    dense, confidence = complete_depth_guided(sparse, image)
    nearest = nearest_fill(sparse)
    band = np.zeros_like(sparse, bool)
    band[:, EDGE - 3 : EDGE + 3] = True
    empty = ~np.isfinite(sparse)
    step = float(np.min(np.abs(depth[:, EDGE] - depth[:, EDGE - 1])))  # the depth jump, about 2 m
    guided_error = np.abs(dense - depth)
    # nearest-neighbour filling copies the far plane onto near pixels (and back) at the edge:
    assert np.abs(nearest - depth)[band & empty].max() > 0.9 * step
    # the guided diffusion stops at the image edge: within 2 % of the jump next to it ...
    assert guided_error[band & empty].max() < 0.02 * step
    # ... and planes are harmonic, so between scan lines it interpolates them almost exactly
    # (away from the image border, where the free boundary bends the solution slightly)
    interior = empty.copy()
    interior[:4], interior[-8:] = False, False
    assert np.median(guided_error[interior]) < 0.005 and guided_error[interior].max() < 0.05
    measured = ~empty
    np.testing.assert_array_equal(dense[measured], sparse[measured])
    assert (confidence[measured] == 1).all() and 0 <= confidence.min() and (confidence[empty] < 1).all()
    # the confidence is lowest next to the depth edge, where the measured depths disagree
    assert confidence[band & empty].mean() < confidence[~band & empty].mean()


def test_occlusion_test_removes_exactly_the_planted_see_through_points(two_planes):
    depth, image = two_planes
    sparse = np.where(scan_mask(row_step=6, col_step=2, row_offset=0), 6.0, np.nan).astype(np.float32)
    foreground = np.zeros_like(sparse, bool)
    foreground[30:66, 40:90] = True
    sparse[foreground & np.isfinite(sparse)] = 2.0
    # background points seen "through" the foreground by an offset LiDAR, inside its outline
    planted = np.zeros_like(sparse, bool)
    planted[[36, 42, 48, 54, 60], [50, 62, 70, 80, 44]] = True
    assert np.isfinite(sparse[planted]).all()
    sparse[planted] = 6.0
    filtered, removed = remove_occluded_points(sparse, OcclusionFilterConfig())
    np.testing.assert_array_equal(removed, planted)  # background right beside the edges survives
    assert np.isnan(filtered[planted]).all()
    kept = np.isfinite(sparse) & ~planted
    np.testing.assert_array_equal(filtered[kept], sparse[kept])
    # completion with the test fills the foreground with its own depth, without it does not
    truth = np.where(foreground, 2.0, 6.0)
    rows, cols = np.nonzero(planted)
    image = np.where(foreground[..., None], 220, 30).astype(np.uint8).repeat(3, axis=2)
    with_test, _ = complete_depth_guided(sparse, image)
    without, _ = complete_depth_guided(sparse, image, GuidedCompletionConfig(occlusion=None))
    np.testing.assert_allclose(with_test[rows, cols], truth[rows, cols], atol=0.01)
    assert (np.abs(without[rows, cols] - truth[rows, cols]) > 3.0).all()


def test_motorcycle_32_beams_guided_meets_the_30_percent_target(motorcycle):
    from kestrel_tools.training.depth_completion import motorcycle_scene, simulated_sparse_depth

    image, depth, camera = motorcycle_scene()
    sparse = simulated_sparse_depth(depth, camera, 32)
    evaluated = np.isfinite(depth) & ~np.isfinite(sparse)
    guided, confidence = complete_depth_guided(sparse, image)
    assert guided.shape == depth.shape and guided.dtype == np.float32 and np.isfinite(guided).all()

    def errors(dense: np.ndarray) -> tuple[float, float]:
        error = dense[evaluated] - depth[evaluated]
        return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))

    ours, nearest, morphological = errors(guided), errors(nearest_fill(sparse)), errors(complete_depth_classical(sparse)[0])
    print(f"\n32 beams RMSE / MAE: guided {ours}, nearest {nearest}, morphological {morphological}")
    # the target: at least 30 % below nearest-neighbour filling in RMSE
    assert ours[0] <= 0.70 * nearest[0]
    assert ours[0] < morphological[0] and ours[1] < morphological[1]
    # the confidence ranks the errors: the more confident half has a smaller mean error
    error = np.abs(guided - depth)[evaluated]
    confident = confidence[evaluated] > np.median(confidence[evaluated])
    assert error[confident].mean() < 0.5 * error[~confident].mean()


def test_guided_edge_cases_and_validation():
    image = np.zeros((9, 11, 3), np.uint8)
    dense, confidence = complete_depth_guided(np.full((9, 11), np.nan, np.float32), image)
    assert np.isnan(dense).all() and (confidence == 0).all()
    sparse = np.full((9, 11), np.nan, np.float32)
    sparse[4, 5] = 3.0
    dense, _ = complete_depth_guided(sparse, image[..., 0])  # grey image, one point: constant
    np.testing.assert_allclose(dense, 3.0)
    with pytest.raises(ValueError, match="image"):
        complete_depth_guided(sparse, np.zeros((9, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        complete_depth_guided(sparse[None], image)
    for kwargs in (dict(colour_sigma=0.0), dict(levels=0), dict(iterations=0), dict(confidence_window=4)):
        with pytest.raises(ValueError):
            GuidedCompletionConfig(**kwargs)
    for kwargs in (dict(half_width=0), dict(relative_gap=1.0), dict(band=5)):
        with pytest.raises(ValueError):
            OcclusionFilterConfig(**kwargs)
