"""``sensor_msgs/CameraInfo`` to and from :class:`kestrel_core.geometry.camera.PinholeCamera`.

Nodes receive a CameraInfo with every frame but it rarely changes, so the caches here
rebuild the camera model (and stereo rig) only when the calibration content changes; the
per-frame cost is one comparison of a small tuple of raw field bytes.

``binning_x``/``binning_y`` and ``roi`` are not applied: the model describes the full
resolution calibration, which is what rectified image topics carry.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from kestrel_core.geometry.camera import PinholeCamera, StereoRig
from kestrel_ros.conversions._buffers import make_header

__all__ = [
    "CameraInfoError",
    "CameraModelCache",
    "StereoRigCache",
    "camera_info_to_model",
    "model_to_camera_info",
    "stereo_rig_from_camera_infos",
]


class CameraInfoError(ValueError):
    """A CameraInfo that cannot describe a calibrated camera (or stereo pair)."""


def _matrix(values: object, size: int, name: str, msg: CameraInfo) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != size:
        raise CameraInfoError(f"CameraInfo {name} has {arr.size} values, expected {size}")
    if not np.all(np.isfinite(arr)):
        raise CameraInfoError(
            f"CameraInfo {name} of frame {msg.header.frame_id!r} contains NaN or inf: "
            f"{arr.tolist()}"
        )
    return arr


def camera_info_to_model(msg: CameraInfo) -> PinholeCamera:
    """Build the camera model of a CameraInfo.

    ``K``, ``R`` become ``(3, 3)``, ``P`` ``(3, 4)``, ``D`` ``(N,)``; ``frame_id`` comes from
    the header. An all-zero ``R`` (left unset by some monocular drivers) is read as the
    identity.

    Raises:
        CameraInfoError: all-zero ``K`` or ``P`` (an uncalibrated camera), NaN/inf
            values, non-positive size or focal length, or an unsupported distortion model.
    """
    k = _matrix(msg.k, 9, "K", msg)
    p = _matrix(msg.p, 12, "P", msg)
    r = _matrix(msg.r, 9, "R", msg)
    d = _matrix(msg.d, np.asarray(msg.d).size, "D", msg)
    frame = msg.header.frame_id
    if not np.any(k):
        raise CameraInfoError(
            f"CameraInfo of frame {frame!r} has an all-zero K: camera is not calibrated"
        )
    if not np.any(p):
        raise CameraInfoError(
            f"CameraInfo of frame {frame!r} has an all-zero P: camera is not calibrated"
        )
    if not np.any(r):
        r = np.eye(3).reshape(-1)
    try:
        return PinholeCamera(
            width=int(msg.width),
            height=int(msg.height),
            K=k.reshape(3, 3),
            D=d,
            R=r.reshape(3, 3),
            P=p.reshape(3, 4),
            distortion_model=msg.distortion_model,
            frame_id=frame,
        )
    except ValueError as err:
        raise CameraInfoError(f"invalid CameraInfo of frame {frame!r}: {err}") from err


def _content_key(msg: CameraInfo) -> tuple:
    """The CameraInfo fields the model depends on, as cheap-to-compare immutables."""
    return (
        int(msg.width),
        int(msg.height),
        msg.distortion_model,
        msg.header.frame_id,
        np.asarray(msg.k, dtype=np.float64).tobytes(),
        np.asarray(msg.d, dtype=np.float64).tobytes(),
        np.asarray(msg.r, dtype=np.float64).tobytes(),
        np.asarray(msg.p, dtype=np.float64).tobytes(),
    )


class CameraModelCache:
    """Keeps the model of the last CameraInfo seen; rebuilds it only when it changes.

    Attributes:
        rebuilds: how many times a model was built (``get`` of an unchanged CameraInfo
            does not count).
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._model: PinholeCamera | None = None
        self.rebuilds = 0

    @property
    def model(self) -> PinholeCamera | None:
        """The current model, ``None`` before the first successful ``get``."""
        return self._model

    def get(self, msg: CameraInfo) -> PinholeCamera:
        """Model of ``msg``; raises :class:`CameraInfoError` (and keeps the old model) if
        ``msg`` is invalid."""
        key = _content_key(msg)
        if self._model is None or key != self._key:
            model = camera_info_to_model(msg)
            self._key, self._model = key, model
            self.rebuilds += 1
        return self._model


def stereo_rig_from_camera_infos(left_msg: CameraInfo, right_msg: CameraInfo) -> StereoRig:
    """Stereo rig of a rectified pair.

    The baseline comes from the right camera's ``P[0, 3] = -fx * baseline`` and
    ``doffs = cx_right - cx_left``.

    Raises:
        CameraInfoError: either CameraInfo is invalid, the sizes differ, or the baseline
            is not positive (e.g. the right CameraInfo has ``P[0, 3] = 0``).
    """
    return _make_rig(camera_info_to_model(left_msg), camera_info_to_model(right_msg))


def _make_rig(left: PinholeCamera, right: PinholeCamera) -> StereoRig:
    try:
        return StereoRig(left, right)
    except ValueError as err:
        raise CameraInfoError(
            f"invalid stereo pair (left frame {left.frame_id!r}, right frame "
            f"{right.frame_id!r}): {err}"
        ) from err


class StereoRigCache:
    """Stereo rig from the last left/right CameraInfo pair; rebuilt only on change.

    Attributes:
        rebuilds: how many times a rig was built.
    """

    def __init__(self) -> None:
        self._left = CameraModelCache()
        self._right = CameraModelCache()
        self._rig: StereoRig | None = None
        self.rebuilds = 0

    @property
    def rig(self) -> StereoRig | None:
        """The current rig, ``None`` before the first successful ``get``."""
        return self._rig

    def get(self, left_msg: CameraInfo, right_msg: CameraInfo) -> StereoRig:
        """Rig of the pair; raises :class:`CameraInfoError` like
        :func:`stereo_rig_from_camera_infos`."""
        left = self._left.get(left_msg)
        right = self._right.get(right_msg)
        rig = self._rig
        if rig is None or rig.left is not left or rig.right is not right:
            self._rig = _make_rig(left, right)
            self.rebuilds += 1
        return self._rig


def model_to_camera_info(
    model: PinholeCamera,
    header: Header | None = None,
    frame_id: str | None = None,
) -> CameraInfo:
    """CameraInfo describing ``model`` (no binning, full-image ROI).

    The header is ``header`` (its stamp) with ``frame_id`` if given, else
    ``header.frame_id``, else ``model.frame_id``.
    """
    if frame_id is None and (header is None or not header.frame_id):
        frame_id = model.frame_id
    msg = CameraInfo()
    msg.header = make_header(header, frame_id)
    msg.width = int(model.width)
    msg.height = int(model.height)
    msg.distortion_model = model.distortion_model
    msg.d = array.array("d", np.asarray(model.D, dtype=np.float64).tobytes())
    msg.k = np.array(model.K, dtype=np.float64).reshape(9)
    msg.r = np.array(model.R, dtype=np.float64).reshape(9)
    msg.p = np.array(model.P, dtype=np.float64).reshape(12)
    return msg
