"""``kestrel_interfaces/FeatureMap`` and ``Embedding`` to and from numpy arrays.

A FeatureMap holds ``C`` feature channels on an ``h x w`` grid, ``data`` in row-major
``(C, h, w)`` order. Image-aligned maps (ViT patch features) set ``stride`` (pixels per
cell: cell ``(i, j)`` covers pixels ``[i*stride, (i+1)*stride)`` along rows and columns);
metric grids set ``resolution`` (metres per cell) and ``origin``.

Reading is zero-copy: :func:`feature_map_to_numpy` and :func:`embedding_to_numpy` return
read-only views of ``msg.data``. Writing copies the array's bytes into the message once,
into an ``array.array('f')``, which the generated setter takes with one ``memcpy`` (the
same fast path as :mod:`kestrel_ros.conversions._buffers` uses for ``uint8[]``).
"""

from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import Pose
from kestrel_interfaces.msg import Embedding, FeatureMap
from std_msgs.msg import Header

from kestrel_ros.conversions._buffers import make_header

__all__ = [
    "FeatureMapLayoutError",
    "embedding_to_numpy",
    "feature_map_to_numpy",
    "numpy_to_embedding",
    "numpy_to_feature_map",
]


class FeatureMapLayoutError(ValueError):
    """The array or the message fields do not describe a consistent feature layout."""


def _float32_field(arr: np.ndarray) -> array.array:
    """Copy ``arr`` (any shape, real float dtype, C order) into a new ``array.array('f')``."""
    values = np.ascontiguousarray(arr, dtype=np.float32)  # native byte order
    out = array.array("f")
    out.frombytes(values.reshape(-1).view(np.uint8))
    return out


def _float32_view(data: object) -> np.ndarray:
    """A read-only ``(N,) float32`` view of a ``float32[]`` field, without copying.

    Works on ``array.array('f')`` (rclpy) and float32 numpy arrays (e.g. ``rosbags``);
    anything else, such as a list, is converted (one copy).
    """
    if isinstance(data, array.array) and data.typecode == "f":
        view = np.frombuffer(data, dtype=np.float32)
    else:
        view = np.asarray(data, dtype=np.float32).reshape(-1)
    view.flags.writeable = False
    return view


def _check_float_array(arr: np.ndarray, ndim: int, layout: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim:
        raise FeatureMapLayoutError(f"expected an array of shape {layout}, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise FeatureMapLayoutError(
            f"expected a floating-point array, got dtype {arr.dtype.name}; features are float32")
    return arr


def numpy_to_feature_map(
    features: np.ndarray,
    model_id: str,
    stride: int = 0,
    resolution: float = 0.0,
    origin: Pose | None = None,
    header: Header | None = None,
    frame_id: str | None = None,
) -> FeatureMap:
    """Build a FeatureMap from a ``(C, h, w)`` array; the values are copied once as float32.

    Args:
        features: ``(C, h, w)`` real floating-point array (float16/64 are converted).
        model_id: the model that produced the features.
        stride: pixels per cell for an image-aligned map, else 0.
        resolution: metres per cell for a metric grid, else 0.
        origin: pose of the metric grid's cell ``(0, 0)`` corner; identity when omitted.
        header: used as is (shared) unless ``frame_id`` is given.
        frame_id: overrides ``header.frame_id`` (the stamp is kept) in a new header.

    Raises:
        FeatureMapLayoutError: wrong rank or dtype, a negative stride or resolution, or both
            a stride and a resolution.
    """
    features = _check_float_array(features, 3, "(C, h, w)")
    if stride < 0 or not resolution >= 0.0:
        raise FeatureMapLayoutError(
            f"stride ({stride}) and resolution ({resolution}) must not be negative")
    if stride > 0 and resolution > 0.0:
        raise FeatureMapLayoutError(
            "a feature map is either image-aligned (stride) or metric (resolution), not both")
    channels, height, width = features.shape
    msg = FeatureMap()
    msg.header = make_header(header, frame_id)
    msg.model_id = str(model_id)
    msg.stride = int(stride)
    msg.resolution = float(resolution)
    if origin is not None:
        msg.origin = origin
    msg.channels, msg.height, msg.width = int(channels), int(height), int(width)
    msg.data = _float32_field(features)
    return msg


def feature_map_to_numpy(msg: FeatureMap) -> np.ndarray:
    """View the values of a FeatureMap as a read-only ``(C, h, w)`` float32 array.

    The array is a zero-copy view of ``msg.data`` (for messages from rclpy); call
    ``.copy()`` for a writable array.

    Raises:
        FeatureMapLayoutError: ``len(data) != channels * height * width``.
    """
    values = _float32_view(msg.data)
    shape = (int(msg.channels), int(msg.height), int(msg.width))
    expected = shape[0] * shape[1] * shape[2]
    if values.size != expected:
        raise FeatureMapLayoutError(
            f"FeatureMap of {shape[0]} channels on a {shape[1]}x{shape[2]} grid needs "
            f"{expected} values, data has {values.size}")
    return values.reshape(shape)


def numpy_to_embedding(
    vector: np.ndarray,
    model_id: str,
    header: Header | None = None,
    frame_id: str | None = None,
) -> Embedding:
    """Build an Embedding from a ``(D,)`` real floating-point array (copied once as float32).

    Raises:
        FeatureMapLayoutError: not one-dimensional or not floating point.
    """
    vector = _check_float_array(vector, 1, "(D,)")
    msg = Embedding()
    msg.header = make_header(header, frame_id)
    msg.model_id = str(model_id)
    msg.data = _float32_field(vector)
    return msg


def embedding_to_numpy(msg: Embedding) -> np.ndarray:
    """View the values of an Embedding as a read-only ``(D,)`` float32 array (zero-copy)."""
    return _float32_view(msg.data)
