"""Trajectory loaders on the real files, the TUM writer, and line-numbered errors."""

import numpy as np
import pytest
from trajectory_data import EUROC_V102, FR1_XYZ, KITTI_00, KITTI_00_TIMES, real

from kestrel_tools.trajectory import (Trajectory, load_euroc_csv, load_kitti, load_trajectory,
                                      load_tum, save_tum)


def first_data_line(path, sep=None):
    line = next(x for x in path.read_text().splitlines() if x.strip() and not x.startswith("#"))
    return np.array([float(v) for v in line.split(sep)])


@pytest.mark.parametrize("name, poses", [("fr2_desk", 20957), ("fr1_xyz", 3000),
                                         ("euroc_v102", 16702), ("kitti_00", 4541)])
def test_real_files_load_with_unit_quaternions_and_ordered_times(name, poses):
    trajectory = real(name)
    assert len(trajectory) == poses
    assert trajectory.positions.shape == (poses, 3) and trajectory.quaternions.shape == (poses, 4)
    np.testing.assert_allclose(np.linalg.norm(trajectory.quaternions, axis=1), 1.0, atol=1e-12)
    assert np.all(np.diff(trajectory.times) >= 0)


def test_tum_columns_are_time_position_then_xyzw():
    values = first_data_line(FR1_XYZ)
    trajectory = real("fr1_xyz")
    assert trajectory.times[0] == values[0]
    np.testing.assert_array_equal(trajectory.positions[0], values[1:4])
    np.testing.assert_allclose(trajectory.quaternions[0], values[4:8] / np.linalg.norm(values[4:8]))


def test_euroc_nanoseconds_and_w_first_quaternions():
    values = first_data_line(EUROC_V102, ",")
    trajectory = real("euroc_v102")
    assert trajectory.times[0] == pytest.approx(1403715524.907143168, abs=1e-6)
    np.testing.assert_array_equal(trajectory.positions[0], values[1:4])
    w, x, y, z = values[4:8]
    np.testing.assert_allclose(trajectory.quaternions[0], np.array([x, y, z, w])
                               / np.linalg.norm([x, y, z, w]))
    assert np.median(np.diff(trajectory.times)) == pytest.approx(0.005, abs=1e-6)  # 200 Hz


def test_kitti_matrices_and_times():
    trajectory = real("kitti_00")
    values = np.loadtxt(KITTI_00, max_rows=3).reshape(3, 3, 4)
    np.testing.assert_allclose(trajectory.matrices()[:3, :3, :], values, atol=1e-6)
    np.testing.assert_array_equal(trajectory.times[:3], np.loadtxt(KITTI_00_TIMES, max_rows=3))
    untimed = load_kitti(KITTI_00)
    np.testing.assert_array_equal(untimed.times, np.arange(4541.0))
    np.testing.assert_array_equal(untimed.positions, trajectory.positions)


def test_save_tum_round_trip(tmp_path):
    original = real("fr2_desk")
    save_tum(tmp_path / "out.txt", original)
    loaded = load_trajectory(tmp_path / "out.txt", "tum")
    np.testing.assert_allclose(loaded.times, original.times, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(loaded.positions, original.positions)
    np.testing.assert_allclose(loaded.quaternions, original.quaternions, rtol=0, atol=1e-15)


TUM_LINES = ["# header", "1.0 0 0 0 0 0 0 1", "", "1.1 0 0 0 0 0 0 1"]


@pytest.mark.parametrize("bad_line, reason", [
    ("1.2 0 0 zero 0 0 0 1", "'zero' is not a finite number"),
    ("1.2 0 0 0 0 0 1", "expected 8 values (t tx ty tz qx qy qz qw), found 7"),
    ("1.2 0 0 nan 0 0 0 1", "'nan' is not a finite number"),
    ("1.0 0 0 0 0 0 0 1", "time goes backwards"),
    ("1.2 0 0 0 0 0 0 0", "the quaternion has zero norm"),
])
def test_bad_tum_lines_name_the_file_and_line(tmp_path, bad_line, reason):
    path = tmp_path / "traj.txt"
    path.write_text("\n".join(TUM_LINES + [bad_line, "1.3 0 0 0 0 0 0 1"]) + "\n")
    with pytest.raises(ValueError) as caught:
        load_tum(path)
    assert str(caught.value) == f"{path}:5: {reason}"


def test_bad_euroc_and_kitti_files(tmp_path):
    euroc = tmp_path / "gt.csv"
    header = EUROC_V102.read_text().splitlines()[0]
    euroc.write_text(header + "\n1,2,3,4,1,0,0,0\n2,3,4\n")
    with pytest.raises(ValueError, match=rf"{euroc}:3: expected 8 values \(EuRoC csv\), found 3"):
        load_euroc_csv(euroc)
    bare_header = "timestamp,p_RS_R_x,p_RS_R_y,p_RS_R_z,q_RS_x,q_RS_y,q_RS_z,q_RS_w"
    euroc.write_text(f"{bare_header}\n5000000000,1,2,3,0,0,0,1\n")  # columns by name
    np.testing.assert_array_equal(load_euroc_csv(euroc).quaternions, [[0.0, 0.0, 0.0, 1.0]])
    assert load_euroc_csv(euroc).times[0] == 5.0
    euroc.write_text("#timestamp, p_RS_R_x [m], p_RS_R_y [m], q_RS_w []\n1,2,3,4\n")
    with pytest.raises(ValueError, match=f"{euroc}: the header lacks p_RS_R_z, q_RS_x"):
        load_euroc_csv(euroc)
    kitti = tmp_path / "poses.txt"
    kitti.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n2 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(ValueError, match=f"{kitti}:2: the 3x3 part is not a rotation"):
        load_kitti(kitti)
    times = tmp_path / "times.txt"
    times.write_text("0.0\n")
    with pytest.raises(ValueError, match=f"{times}: 1 times for 2 poses"):
        load_kitti(kitti, times)
    with pytest.raises(FileNotFoundError, match="no such trajectory file"):
        load_tum(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="unknown trajectory format 'ply'"):
        load_trajectory(kitti, "ply")


def test_trajectory_checks_its_arrays():
    with pytest.raises(ValueError, match=r"positions \(N, 3\)"):
        Trajectory(np.zeros(3), np.zeros((3, 2)), np.tile([0, 0, 0, 1.0], (3, 1)))
    with pytest.raises(ValueError, match="times decrease at pose 2"):
        Trajectory(np.array([0, 1, 0.5]), np.zeros((3, 3)), np.tile([0, 0, 0, 1.0], (3, 1)))
