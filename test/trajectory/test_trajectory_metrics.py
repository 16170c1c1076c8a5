"""ATE and RPE give the known error of known perturbations of the real trajectories."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from trajectory_data import NAMES, random_pose, real

from kestrel_tools.trajectory import Trajectory, ate_rmse, delta_pairs, evaluate, rpe_rmse


@pytest.mark.parametrize("name", NAMES)
def test_a_constant_offset_of_10_cm_is_an_ate_of_10_cm_without_alignment(name):
    ref = real(name)
    offset = np.array([2.0, -1.0, 2.0]) / 3.0 * 0.1  # norm 0.1 m
    est = Trajectory(ref.times, ref.positions + offset, ref.quaternions)
    assert ate_rmse(est.positions, ref.positions, "none") == pytest.approx(0.1, abs=1e-12)
    errors = evaluate(est, ref, "none")
    assert errors.ate_rmse == pytest.approx(0.1, abs=1e-12)
    assert errors.rpe_rmse < 1e-9  # a constant offset leaves relative poses alone
    assert evaluate(est, ref, "se3").ate_rmse < 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_isotropic_noise_gives_an_ate_of_sqrt3_sigma(name):
    ref = real(name)
    sigma = 0.05
    noise = np.random.default_rng(42).normal(0.0, sigma, ref.positions.shape)
    ate = ate_rmse(ref.positions + noise, ref.positions, "none")
    # |noise|^2 / sigma^2 is chi-square with 3 degrees of freedom (variance 6), so the mean of
    # N of them is 3 +- sqrt(6 / N) and ATE / (sqrt(3) sigma) is 1 +- 1 / sqrt(6 N).
    tolerance = 5.0 / np.sqrt(6 * len(ref))
    assert abs(ate / (np.sqrt(3) * sigma) - 1.0) < tolerance
    aligned = ate_rmse(ref.positions + noise, ref.positions, "se3")
    assert aligned <= ate and abs(aligned / (np.sqrt(3) * sigma) - 1.0) < tolerance


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("frames", [1, 5])
def test_a_constant_velocity_drift_is_the_rpe(name, frames):
    ref = real(name)
    drift = np.array([0.003, -0.004, 0.0])  # 5 mm per frame, in the world frame
    est = Trajectory(ref.times, ref.positions + np.arange(len(ref))[:, None] * drift,
                     ref.quaternions)
    result = rpe_rmse(est, ref, frames, "frames")
    assert result.trans_rmse == pytest.approx(0.005 * frames, rel=1e-9)
    assert result.rot_rmse_deg < 1e-9 and result.pairs == len(ref) - frames
    # RPE ignores where the estimate's world frame is.
    rotation, translation = random_pose(seed=11)
    moved = rpe_rmse(est.transformed(rotation, translation), ref, frames, "frames")
    assert moved.trans_rmse == pytest.approx(0.005 * frames, rel=1e-9)


@pytest.mark.parametrize("name", ["fr1_xyz", "kitti_00"])
def test_a_constant_rotation_drift_is_the_rotational_rpe(name):
    ref = real(name)
    step = np.radians(0.2)
    drift = Rotation.from_rotvec(np.outer(np.arange(len(ref)), [0.0, 0.0, step]))
    est = Trajectory(ref.times, ref.positions, (drift * ref.rotations).as_quat())
    assert rpe_rmse(est, ref).rot_rmse_deg == pytest.approx(0.2, rel=1e-9)


def test_delta_in_metres_and_seconds():
    n = 200
    times = np.arange(n) * 0.25  # 4 Hz
    positions = np.column_stack([np.arange(n) * 0.125, np.zeros(n), np.zeros(n)])  # 0.5 m/s
    ref = Trajectory(times, positions, np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)))
    for delta, unit in ((1.0, "m"), (2.0, "s"), (8, "frames")):
        first, second = delta_pairs(ref, delta, unit)
        np.testing.assert_array_equal(second - first, 8)
        assert first.size == n - 8
    drift = np.array([0.0, 0.01, 0.0])
    est = Trajectory(times, positions + np.arange(n)[:, None] * drift, ref.quaternions)
    assert rpe_rmse(est, ref, 1.0, "m").trans_rmse == pytest.approx(0.08, rel=1e-12)
    with pytest.raises(ValueError, match="no two poses are 1000.0 m apart"):
        rpe_rmse(est, ref, 1000.0, "m")
    with pytest.raises(ValueError, match="whole number"):
        delta_pairs(ref, 1.5, "frames")


def test_sim3_alignment_rescales_before_rpe():
    ref = real("fr1_xyz")
    est = ref.transformed(np.eye(3), np.zeros(3), 3.0)
    assert evaluate(est, ref, "se3").rpe_rmse > 1e-3
    assert evaluate(est, ref, "sim3").rpe_rmse < 1e-9
