"""Validated depth-image input for nodes: a depth image and its CameraInfo become 3D points,
and every conversion problem becomes a dropped-frame cause."""

from __future__ import annotations

import numpy as np
import torch
from sensor_msgs.msg import CameraInfo, Image

from kestrel_core.mapping.egocentric import depth_to_points
from kestrel_ros.conversions.camera_info import CameraInfoError, CameraModelCache
from kestrel_ros.conversions.image import ImageEncodingError, ImageLayoutError, image_to_numpy
from kestrel_ros.diagnostics import BadInput

DEPTH_ENCODINGS = ("32FC1", "16UC1")


def read_depth_points(image: Image, info: CameraInfo, cameras: CameraModelCache) -> np.ndarray:
    """(N, 3) float32 points of the valid pixels of a rectified depth image, optical frame.

    32FC1 is metres, 16UC1 millimetres; NaN, inf and values <= 0 are pixels without a
    return. The back-projection uses the rectified intrinsics ``P[:, :3]``.

    Raises:
        BadInput: ``unsupported_encoding``, ``malformed_image``, ``bad_camera_info``,
            ``image_camera_info_mismatch`` (sizes differ) or ``no_valid_depth`` (no pixel
            has a return).
    """
    if image.encoding not in DEPTH_ENCODINGS:
        raise BadInput("unsupported_encoding",
                       f"depth encoding {image.encoding!r} is not one of {', '.join(DEPTH_ENCODINGS)}")
    try:
        depth = image_to_numpy(image).astype(np.float32)
        camera = cameras.get(info)
    except ImageEncodingError as err:
        raise BadInput("unsupported_encoding", str(err)) from err
    except ImageLayoutError as err:
        raise BadInput("malformed_image", str(err)) from err
    except CameraInfoError as err:
        raise BadInput("bad_camera_info", str(err)) from err
    if (image.width, image.height) != (camera.width, camera.height):
        raise BadInput("image_camera_info_mismatch", f"depth is {image.width}x{image.height} but "
                                                     f"camera_info says {camera.width}x{camera.height}")
    if image.encoding == "16UC1":
        depth /= 1000.0
    if not (np.isfinite(depth) & (depth > 0)).any():
        raise BadInput("no_valid_depth", "every depth pixel is NaN, inf or <= 0")
    return depth_to_points(torch.from_numpy(depth), camera.P[:, :3], np.eye(4)).numpy()
