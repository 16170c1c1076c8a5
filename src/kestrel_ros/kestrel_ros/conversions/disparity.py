"""``stereo_msgs/DisparityImage`` to and from ``(H, W) float32`` disparity maps.

Conventions (those of image_pipeline's ``stereo_image_proc``):

* ``image`` is ``32FC1``; ``f`` is the rectified focal length in pixels and ``t`` the
  baseline in metres, so depth is ``Z = f * t / d`` for a value ``d`` of ``image``.
* The values in ``image`` already include the principal-point offset
  ``doffs = cx_right - cx_left``: stereo_image_proc stores ``d_match + doffs`` so that
  ``Z = f * t / d`` holds for any rig. Kestrel callers pass that shifted disparity.
* Invalid pixels are stored as a value **below** ``min_disparity``, which
  ``stereo_image_proc``'s point cloud node and ``image_view``'s ``disparity_view``
  (which clamps to the range, and would index its colour map with NaN) both read as
  "no data". Kestrel writes exactly ``min_disparity - 1`` (what OpenCV's block matchers
  produce) and maps it back to NaN on reading; NaN is never put on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header
from stereo_msgs.msg import DisparityImage

from kestrel_ros.conversions._buffers import make_header
from kestrel_ros.conversions.image import ImageEncodingError, image_to_numpy, numpy_to_image

__all__ = [
    "DEFAULT_DELTA_D",
    "INVALID_OFFSET",
    "disparity_image_to_numpy",
    "make_disparity_image",
]

#: Default ``delta_d``: the 1/16 px fixed-point step of OpenCV's StereoBM/StereoSGBM.
DEFAULT_DELTA_D: float = 1.0 / 16.0
#: Invalid pixels are written as ``min_disparity - INVALID_OFFSET``.
INVALID_OFFSET: float = 1.0


def _bounding_box(valid: np.ndarray) -> RegionOfInterest:
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return RegionOfInterest()
    return RegionOfInterest(
        x_offset=int(cols[0]),
        y_offset=int(rows[0]),
        width=int(cols[-1] - cols[0] + 1),
        height=int(rows[-1] - rows[0] + 1),
        do_rectify=False,
    )


def _as_roi(window: RegionOfInterest | Sequence[int], height: int, width: int) -> RegionOfInterest:
    if isinstance(window, RegionOfInterest):
        roi = window
    else:
        x, y, w, h = (int(v) for v in window)
        roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False)
    if roi.x_offset + roi.width > width or roi.y_offset + roi.height > height:
        raise ValueError(
            f"valid_window (x={roi.x_offset}, y={roi.y_offset}, w={roi.width}, h={roi.height}) "
            f"exceeds the {width}x{height} disparity image"
        )
    return roi


def make_disparity_image(
    disparity: np.ndarray,
    header: Header | None,
    focal: float,
    baseline: float,
    min_disparity: float,
    max_disparity: float,
    delta_d: float = DEFAULT_DELTA_D,
    valid_window: RegionOfInterest | Sequence[int] | None = None,
) -> DisparityImage:
    """Build a DisparityImage.

    Args:
        disparity: ``(H, W)`` float disparity in pixels of the left image, NaN (or inf)
            where invalid. When the rectified principal points differ it must already be
            shifted: pass ``d + doffs`` with ``doffs = cx_right - cx_left``
            (:attr:`StereoRig.doffs`), so that ``Z = focal * baseline / value``. The values
            are used as given.
        header: header of the message and of its image (normally the left image's).
        focal: rectified focal length ``f`` in pixels (> 0).
        baseline: baseline ``t`` in metres (> 0).
        min_disparity, max_disparity: range of the values in ``disparity`` (the search
            range plus ``doffs`` if shifted). Non-finite pixels and finite values below
            ``min_disparity`` are written as ``min_disparity - 1``, the "invalid" marker.
        delta_d: smallest disparity increment (default 1/16 px, OpenCV's fixed point).
        valid_window: region where disparities may be valid, as a RegionOfInterest or
            ``(x_offset, y_offset, width, height)``. Default: the bounding box of the
            valid pixels (all zeros when there are none).

    Returns:
        DisparityImage whose ``image`` is ``32FC1`` in host byte order.
    """
    disparity = np.asarray(disparity)
    if disparity.ndim != 2 or disparity.dtype.kind != "f":
        raise ValueError(
            f"disparity must be a (H, W) float array, got {disparity.dtype} {disparity.shape}"
        )
    if not (np.isfinite(focal) and focal > 0 and np.isfinite(baseline) and baseline > 0):
        raise ValueError(f"focal ({focal}) and baseline ({baseline}) must be positive and finite")
    if not (
        np.isfinite(min_disparity) and np.isfinite(max_disparity) and max_disparity > min_disparity
    ):
        raise ValueError(
            f"need finite min_disparity < max_disparity, got {min_disparity} and {max_disparity}"
        )
    if not delta_d > 0:
        raise ValueError(f"delta_d must be positive, got {delta_d}")
    values = disparity.astype(np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        valid = values >= np.float32(min_disparity)  # False for NaN
    valid &= np.isfinite(values)
    values[~valid] = np.float32(min_disparity - INVALID_OFFSET)
    height, width = values.shape
    msg = DisparityImage()
    msg.header = make_header(header, None)
    msg.image = numpy_to_image(values, "32FC1", msg.header)
    msg.f = float(focal)
    msg.t = float(baseline)
    msg.min_disparity = float(min_disparity)
    msg.max_disparity = float(max_disparity)
    msg.delta_d = float(delta_d)
    msg.valid_window = (
        _bounding_box(valid) if valid_window is None else _as_roi(valid_window, height, width)
    )
    return msg


def disparity_image_to_numpy(msg: DisparityImage) -> np.ndarray:
    """Disparity of a DisparityImage as a new ``(H, W) float32`` array.

    Values below ``msg.min_disparity`` and non-finite values become NaN; the others are
    returned as stored (including any ``doffs`` shift, see the module docstring).

    Raises:
        ImageEncodingError: ``image`` is not ``32FC1``.
        ImageLayoutError: inconsistent image layout.
    """
    if msg.image.encoding != "32FC1":
        raise ImageEncodingError(f"DisparityImage.image must be 32FC1, got {msg.image.encoding!r}")
    values = np.array(image_to_numpy(msg.image), dtype=np.float32, order="C", copy=True)
    with np.errstate(invalid="ignore"):
        invalid = ~(values >= np.float32(msg.min_disparity))
    invalid |= ~np.isfinite(values)
    values[invalid] = np.nan
    return values
