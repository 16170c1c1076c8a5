"""``kestrel eval trajectory``: real files in, a summary and a JSON last line out.

Needs ``eval`` in ``kestrel_tools.cli.COMMANDS``. Two tests run the ``kestrel`` executable as
a user does; the rest call ``cli.main`` in-process (each ``kestrel`` start imports torch).
"""

import json
import subprocess

import numpy as np
import pytest
from trajectory_data import EUROC_V102, FR1_XYZ, KITTI_00, KITTI_00_TIMES, random_pose, real

from kestrel_tools import cli
from kestrel_tools.trajectory import Trajectory, save_tum


def kestrel(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["kestrel", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def run_main(capsys, *args) -> tuple[int, str, str]:
    try:
        code = cli.main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sim3_against_euroc_ground_truth_as_a_user_runs_it(tmp_path):
    rotation, translation = random_pose(seed=5)
    est = real("euroc_v102").transformed(rotation, translation, 0.5)
    save_tum(tmp_path / "est.txt", est)
    result = kestrel("eval", "trajectory", tmp_path / "est.txt", EUROC_V102,
                     "--ref-format", "euroc", "--align", "sim3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("ATE RMSE") for line in lines[:-1])
    summary = json.loads(lines[-1])
    assert summary["pairs"] == 16702 and summary["align"] == "sim3"
    assert summary["scale"] == pytest.approx(2.0, rel=1e-6)
    assert summary["ate_rmse"] < 1e-6 and summary["rpe_rmse"] < 1e-6
    assert summary["rpe_rot_deg"] < 1e-6


def test_a_bad_line_is_one_line_on_stderr_naming_file_and_line(tmp_path):
    lines = FR1_XYZ.read_text().splitlines()
    lines[10] = lines[10].replace(" ", " x", 1)
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    result = kestrel("eval", "trajectory", bad, FR1_XYZ)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"kestrel eval: error: {bad}:11: 'x{lines[10].split()[1][1:]}' is not a finite number"]


def test_kitti_with_times_and_a_known_offset_unaligned(tmp_path, capsys):
    ref = real("kitti_00")
    matrices = ref.matrices()[:, :3, :]
    matrices[:, :, 3] += np.array([0.0, 0.06, 0.08])  # 10 cm
    np.savetxt(tmp_path / "est.txt", matrices.reshape(-1, 12), fmt="%.17g")
    code, out, err = run_main(capsys, "eval", "trajectory", tmp_path / "est.txt", KITTI_00,
                              "--format", "kitti", "--ref-times", KITTI_00_TIMES,
                              "--align", "none")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ate_rmse"] == pytest.approx(0.1, abs=1e-9)
    assert summary["pairs"] == 4541 and summary["scale"] == 1.0
    assert summary["rpe_rmse"] < 1e-9


def test_a_clock_offset_and_a_drift_per_frame(tmp_path, capsys):
    ref = real("fr1_xyz")
    drift = np.arange(len(ref))[:, None] * np.array([0.0, 0.0, 0.001])
    save_tum(tmp_path / "est.txt", Trajectory(ref.times + 0.003, ref.positions + drift,
                                              ref.quaternions))
    code, out, err = run_main(capsys, "eval", "trajectory", tmp_path / "est.txt", FR1_XYZ,
                              "--align", "none", "--delta", "1", "--delta-unit", "frames")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["pairs"] == 3000 and summary["rpe_rmse"] == pytest.approx(0.001, rel=1e-9)


@pytest.mark.parametrize("args, reason", [
    (["missing.txt", FR1_XYZ], "kestrel eval: error: no such trajectory file: missing.txt"),
    ([FR1_XYZ, EUROC_V102, "--ref-format", "euroc"], "no pose pairs within 0.02 s"),
    ([FR1_XYZ, FR1_XYZ, "--ref-times", KITTI_00_TIMES], "--ref-times applies to the kitti"),
    ([FR1_XYZ, FR1_XYZ, "--max-diff", "-1"], "--max-diff must be >= 0"),
    ([FR1_XYZ, FR1_XYZ, "--align", "affine"], "argument --align: invalid choice: 'affine'"),
    ([FR1_XYZ, FR1_XYZ, "--delta", "100000", "--delta-unit", "s"], "no two poses are"),
])
def test_bad_inputs_exit_non_zero_with_one_line(capsys, args, reason):
    code, out, err = run_main(capsys, "eval", "trajectory", *args)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and reason in err
