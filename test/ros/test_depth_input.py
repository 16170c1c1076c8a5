"""Depth images to points: closed-form back-projection, millimetres, and each bad-input cause."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_ros.conversions.camera_info import CameraModelCache, model_to_camera_info
from kestrel_ros.conversions.image import numpy_to_image
from kestrel_ros.depth_input import read_depth_points
from kestrel_ros.diagnostics import BadInput

CAMERA = PinholeCamera(8, 6, np.array([[10.0, 0.0, 3.5], [0.0, 12.0, 2.5], [0.0, 0.0, 1.0]]))


def points(depth: np.ndarray, encoding: str, camera: PinholeCamera = CAMERA) -> np.ndarray:
    return read_depth_points(numpy_to_image(depth, encoding), model_to_camera_info(camera), CameraModelCache())


def test_a_plane_back_projects_through_the_intrinsics():
    depth = np.full((6, 8), 2.0, np.float32)
    depth[0, 0] = np.nan  # no return
    xyz = points(depth, "32FC1")
    v, u = np.divmod(np.arange(1, 48), 8)
    np.testing.assert_allclose(xyz, np.column_stack([(u - 3.5) / 10.0 * 2.0, (v - 2.5) / 12.0 * 2.0,
                                                     np.full(47, 2.0)]), rtol=1e-6)


def test_millimetres_equal_metres():
    millimetres = np.arange(500, 3380, 60, dtype=np.uint16).reshape(6, 8)
    np.testing.assert_allclose(points(millimetres, "16UC1"), points(millimetres / np.float32(1000), "32FC1"),
                               rtol=1e-6)


@pytest.mark.parametrize("cause, depth, encoding, camera", [
    ("unsupported_encoding", np.zeros((6, 8, 3), np.uint8), "rgb8", CAMERA),
    ("image_camera_info_mismatch", np.ones((6, 8), np.float32), "32FC1", dataclasses.replace(CAMERA, width=4)),
    ("no_valid_depth", np.full((6, 8), np.nan, np.float32), "32FC1", CAMERA),
    ("no_valid_depth", np.zeros((6, 8), np.uint16), "16UC1", CAMERA),
])
def test_bad_depth_is_named(cause, depth, encoding, camera):
    with pytest.raises(BadInput) as error:
        points(depth, encoding, camera)
    assert error.value.cause == cause
