"""Trajectory files: TUM RGB-D, EuRoC ground-truth csv and KITTI odometry poses.

Every loader raises ``ValueError`` naming the file and the line for a line it cannot use,
and ``FileNotFoundError`` for a missing file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kestrel_tools.trajectory.types import Trajectory

FORMATS = ("tum", "euroc", "kitti")
EUROC_COLUMNS = ("timestamp", "p_RS_R_x", "p_RS_R_y", "p_RS_R_z",
                 "q_RS_w", "q_RS_x", "q_RS_y", "q_RS_z")


def _data_lines(path: Path) -> tuple[list[int], list[str], list[str]]:
    """(line numbers, data lines, comment lines) of a text file; blank lines are dropped."""
    if not path.is_file():
        raise FileNotFoundError(f"no such trajectory file: {path}")
    numbers, lines, comments = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped)
        elif stripped:
            numbers.append(number)
            lines.append(stripped)
    if not lines:
        raise ValueError(f"{path}: no poses in the file")
    return numbers, lines, comments


def _parse(path: Path, numbers: list[int], lines: list[str], columns: int, layout: str,
           delimiter: str | None = None, exact: bool = True) -> np.ndarray:
    """(N, C) float64 table with C == columns (or C >= columns when not exact).

    Raises:
        ValueError: naming the first line with a wrong count of values or a non-number.
    """
    try:
        table = np.loadtxt(lines, delimiter=delimiter, ndmin=2)
        width_ok = table.shape[1] == columns if exact else table.shape[1] >= columns
        if width_ok and np.isfinite(table).all():
            return table
    except ValueError:
        pass
    width = columns if exact else max(columns, len(lines[0].split(delimiter)))
    for number, line in zip(numbers, lines):  # only on failure: find the line to blame
        fields = [field.strip() for field in line.split(delimiter)]
        if len(fields) != width:
            raise ValueError(f"{path}:{number}: expected {width} values ({layout}), "
                             f"found {len(fields)}")
        for field in fields:
            try:
                if not np.isfinite(float(field)):
                    raise ValueError
            except ValueError:
                raise ValueError(f"{path}:{number}: {field!r} is not a finite number") from None
    raise ValueError(f"{path}: cannot read the table ({layout})")


def _build(path: Path, numbers: list[int], times: np.ndarray, positions: np.ndarray,
           quaternions: np.ndarray) -> Trajectory:
    """A Trajectory, with time order and quaternion norms checked against line numbers."""
    backwards = np.flatnonzero(np.diff(times) < 0)
    if backwards.size:
        raise ValueError(f"{path}:{numbers[backwards[0] + 1]}: time goes backwards")
    zero = np.flatnonzero(np.linalg.norm(quaternions, axis=1) < 1e-6)
    if zero.size:
        raise ValueError(f"{path}:{numbers[zero[0]]}: the quaternion has zero norm")
    return Trajectory(times, positions, quaternions)


def load_tum(path: Path | str) -> Trajectory:
    """A TUM RGB-D file: one pose a line, ``t tx ty tz qx qy qz qw``; '#' starts a comment."""
    path = Path(path)
    numbers, lines, _ = _data_lines(path)
    table = _parse(path, numbers, lines, 8, "t tx ty tz qx qy qz qw")
    return _build(path, numbers, table[:, 0], table[:, 1:4], table[:, 4:8])


def load_euroc_csv(path: Path | str) -> Trajectory:
    """A EuRoC ground-truth csv: nanosecond timestamps, ``p_RS_R_*`` metres, ``q_RS_*``.

    Columns are found by the names in the header line ('#' optional); without a header, the
    first eight columns are taken as timestamp, p x y z, q w x y z. EuRoC quaternions are
    scalar first; the trajectory stores them scalar last.
    """
    path = Path(path)
    numbers, lines, comments = _data_lines(path)
    columns = list(range(len(EUROC_COLUMNS)))
    header = next((line for line in comments[:1] + lines[:1] if "p_RS_R_x" in line), None)
    if header is not None and header == lines[0]:  # a header written without '#'
        numbers, lines = numbers[1:], lines[1:]
        if not lines:
            raise ValueError(f"{path}: no poses in the file")
    if header is not None:
        names = [field.strip().lstrip("#").split(" ")[0] for field in header.split(",")]
        missing = [name for name in EUROC_COLUMNS if name not in names]
        if missing:
            raise ValueError(f"{path}: the header lacks {', '.join(missing)}")
        columns = [names.index(name) for name in EUROC_COLUMNS]
    table = _parse(path, numbers, lines, max(columns) + 1, "EuRoC csv", delimiter=",",
                   exact=False)
    table = table[:, columns]
    quaternions = table[:, [5, 6, 7, 4]]  # w x y z -> x y z w
    return _build(path, numbers, table[:, 0] * 1e-9, table[:, 1:4], quaternions)


def load_kitti(path: Path | str, times_path: Path | str | None = None) -> Trajectory:
    """KITTI odometry poses: 12 values a line, the 3x4 matrix ``[R | p]`` row by row.

    Args:
        path: the poses file.
        times_path: one time in seconds a line (KITTI's times.txt), as many lines as poses.
            Without it pose k gets time k, so two such trajectories associate frame by frame.
    """
    path = Path(path)
    numbers, lines, _ = _data_lines(path)
    table = _parse(path, numbers, lines, 12, "a 3x4 pose matrix, row by row")
    if times_path is None:
        times = np.arange(len(table), dtype=np.float64)
    else:
        times_path = Path(times_path)
        time_numbers, time_lines, _ = _data_lines(times_path)
        times = _parse(times_path, time_numbers, time_lines, 1, "a time in seconds")[:, 0]
        if len(times) != len(table):
            raise ValueError(f"{times_path}: {len(times)} times for {len(table)} poses in {path}")
    matrices = table[:, :12].reshape(-1, 3, 4)
    determinants = np.linalg.det(matrices[:, :, :3])
    bad = np.flatnonzero(np.abs(determinants - 1.0) > 1e-2)
    if bad.size:
        raise ValueError(f"{path}:{numbers[bad[0]]}: the 3x3 part is not a rotation "
                         f"(determinant {determinants[bad[0]]:.4g})")
    trajectory = Trajectory.from_matrices(times, matrices)
    return _build(path, numbers, trajectory.times, trajectory.positions, trajectory.quaternions)


def save_tum(path: Path | str, trajectory: Trajectory) -> None:
    """Write a TUM file: times with nanosecond resolution, poses losslessly (17 digits)."""
    table = np.column_stack([trajectory.times, trajectory.positions, trajectory.quaternions])
    np.savetxt(Path(path), table, fmt=["%.9f"] + ["%.17g"] * 7,
               header="timestamp tx ty tz qx qy qz qw")


def load_trajectory(path: Path | str, fmt: str, times_path: Path | str | None = None) -> Trajectory:
    """Load by format name: ``tum``, ``euroc`` or ``kitti`` (``times_path`` only for kitti)."""
    if fmt == "tum":
        return load_tum(path)
    if fmt == "euroc":
        return load_euroc_csv(path)
    if fmt == "kitti":
        return load_kitti(path, times_path)
    raise ValueError(f"unknown trajectory format {fmt!r}; one of {', '.join(FORMATS)}")
