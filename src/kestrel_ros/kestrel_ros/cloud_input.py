"""Validated point-cloud input for nodes: conversion problems become dropped-frame causes."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2

from kestrel_ros.conversions.pointcloud2 import PointCloudLayoutError, pointcloud2_to_array, xyz_array
from kestrel_ros.diagnostics import BadInput


def read_cloud(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
    """Every point of ``msg``: the ``(N,)`` structured array with all its fields, and the
    ``(N, 3)`` float32 coordinates (NaN and inf rows kept).

    Raises:
        BadInput: ``empty_cloud`` (no points) or ``cloud_without_xyz`` (no x/y/z fields, or
            fields, steps and data that do not fit together).
    """
    if msg.width * msg.height == 0:
        raise BadInput("empty_cloud", "the point cloud has no points")
    try:
        points = pointcloud2_to_array(msg).reshape(-1)
        return points, xyz_array(points)
    except (PointCloudLayoutError, ValueError) as err:
        raise BadInput("cloud_without_xyz", str(err)) from err


def read_xyz(msg: PointCloud2) -> np.ndarray:
    """``(N, 3)`` float32 coordinates of every point of ``msg`` (NaN and inf rows kept);
    raises :class:`BadInput` as :func:`read_cloud` does."""
    return read_cloud(msg)[1]


def finite_rows(xyz: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the rows of ``(N, 3)`` points with finite coordinates.

    Raises:
        BadInput: ``no_finite_points`` when no row is finite.
    """
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.any():
        raise BadInput("no_finite_points", f"all {len(xyz)} points are NaN or inf")
    return finite


def split_finite(xyz: np.ndarray) -> tuple[np.ndarray, int]:
    """The finite rows of ``(N, 3)`` points and the number of rows dropped (NaN or inf);
    raises :class:`BadInput` as :func:`finite_rows` does."""
    finite = finite_rows(xyz)
    return xyz[finite], int(len(xyz) - finite.sum())
