"""Umeyama alignment recovers known transforms of the real trajectories."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from trajectory_data import NAMES, random_pose, real

from kestrel_tools.trajectory import align, apply_alignment, ate_rmse, evaluate


@pytest.mark.parametrize("name", NAMES)
def test_se3_undoes_a_known_rigid_motion(name):
    ref = real(name)
    rotation, translation = random_pose(seed=len(name))
    est = ref.transformed(rotation, translation)
    r, t, s = align(est.positions, ref.positions, "se3")
    np.testing.assert_allclose(r, rotation.T, atol=1e-9)  # the inverse motion
    np.testing.assert_allclose(t, -rotation.T @ translation, atol=1e-7)
    assert s == 1.0
    assert ate_rmse(est.positions, ref.positions, "se3") < 1e-6
    errors = evaluate(est, ref, "se3")
    assert errors.ate_rmse < 1e-6 and errors.rpe_rmse < 1e-6 and errors.rpe_rot_deg < 1e-6
    assert errors.pairs == len(ref)


@pytest.mark.parametrize("name, scale", [("fr2_desk", 0.37), ("fr1_xyz", 2.5),
                                         ("euroc_v102", 4.0), ("kitti_00", 0.02)])
def test_sim3_undoes_a_known_similarity(name, scale):
    ref = real(name)
    rotation, translation = random_pose(seed=7)
    est = ref.transformed(rotation, translation, scale)
    r, t, s = align(est.positions, ref.positions, "sim3")
    assert s == pytest.approx(1 / scale, rel=1e-9)
    np.testing.assert_allclose(r, rotation.T, atol=1e-9)
    np.testing.assert_allclose(apply_alignment(est.positions, r, t, s), ref.positions, atol=1e-6)
    errors = evaluate(est, ref, "sim3")
    assert errors.ate_rmse < 1e-6 and errors.scale == pytest.approx(1 / scale, rel=1e-9)
    assert ate_rmse(est.positions, ref.positions, "se3") > 1e-3  # a rigid fit cannot scale


def test_se3_rotation_matches_scipy_kabsch_on_noisy_points():
    ref = real("fr1_xyz")
    rotation, translation = random_pose(seed=3)
    noisy = ref.positions @ rotation.T + translation
    noisy += np.random.default_rng(0).normal(0.0, 0.02, noisy.shape)
    r, t, _ = align(noisy, ref.positions, "se3")
    centred_est, centred_ref = noisy - noisy.mean(0), ref.positions - ref.positions.mean(0)
    kabsch, _ = Rotation.align_vectors(centred_ref, centred_est)
    np.testing.assert_allclose(r, kabsch.as_matrix(), atol=1e-9)
    np.testing.assert_allclose(t, ref.positions.mean(0) - r @ noisy.mean(0), atol=1e-9)


def test_a_mirrored_estimate_still_gets_a_proper_rotation():
    ref = real("fr1_xyz").positions
    r, _, _ = align(ref * np.array([1.0, 1.0, -1.0]), ref, "se3")
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_modes_and_degenerate_inputs():
    points = real("fr1_xyz").positions[:10]
    r, t, s = align(points, points + 1.0, "none")
    np.testing.assert_array_equal(r, np.eye(3))
    assert (t == 0).all() and s == 1.0
    with pytest.raises(ValueError, match="at least 3 pose pairs"):
        align(points[:2], points[:2], "se3")
    line = np.outer(np.arange(10.0), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="lie on a line"):
        align(line, line, "sim3")
    with pytest.raises(ValueError, match="align mode must be one of se3, sim3, none"):
        align(points, points, "affine")
