"""Validated image input for nodes: one place maps conversion problems to dropped-frame causes."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from kestrel_ros.conversions.image import ImageEncodingError, ImageLayoutError, image_to_numpy, to_rgb8
from kestrel_ros.diagnostics import BadInput

# Colour encodings handed to the core as RGB (its grey conversion weights assume RGB).
NON_RGB_COLOUR = ("bgr8", "rgba8", "bgra8")


def read_image(msg: Image, supported: tuple[str, ...]) -> np.ndarray:
    """(H, W) or (H, W, C) pixels of ``msg`` (a read-only view where possible).

    Raises:
        BadInput: ``unsupported_encoding`` (not in ``supported`` or unknown),
            ``malformed_image`` (data shorter than step * height, bad step) or
            ``non_finite_pixels`` (NaN or inf in a float image).
    """
    if msg.encoding not in supported:
        raise BadInput("unsupported_encoding",
                       f"encoding {msg.encoding!r} is not one of {', '.join(supported)}")
    try:
        pixels = image_to_numpy(msg)
    except ImageEncodingError as err:
        raise BadInput("unsupported_encoding", str(err)) from err
    except ImageLayoutError as err:
        raise BadInput("malformed_image", str(err)) from err
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise BadInput("non_finite_pixels", "the float image contains NaN or inf")
    return pixels


def in_rgb_order(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Colour pixels reordered to RGB for the core; grey and RGB images unchanged."""
    return to_rgb8(pixels, encoding) if encoding in NON_RGB_COLOUR else pixels
