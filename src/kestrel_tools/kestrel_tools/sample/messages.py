"""rosbags message dataclasses built from numpy arrays (no rclpy, no Python lists of pixels).

Every builder takes the ``Typestore`` that will serialize the message (``BagWriter.types.store``)
so the dataclasses match the bag's type definitions.
"""

from __future__ import annotations

import numpy as np
from rosbags.typesys.store import Typestore
from scipy.spatial.transform import Rotation

from kestrel_core.geometry.camera import PinholeCamera

IMAGE_ENCODINGS = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "rgb8",
                   (np.dtype(np.float32), 1): "32FC1"}
POINTFIELD_FLOAT32 = 7


def header(store: Typestore, stamp_ns: int, frame_id: str) -> object:
    """``std_msgs/Header`` at ``stamp_ns`` nanoseconds since the epoch."""
    types = store.types
    stamp = types["builtin_interfaces/msg/Time"](sec=int(stamp_ns // 1_000_000_000),
                                                 nanosec=int(stamp_ns % 1_000_000_000))
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image(store: Typestore, stamp_ns: int, frame_id: str, pixels: np.ndarray) -> object:
    """``sensor_msgs/Image`` of ``(H, W)`` mono8 / 32FC1 or ``(H, W, 3)`` rgb8 pixels."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    encoding = IMAGE_ENCODINGS.get((pixels.dtype, channels))
    if encoding is None:
        raise ValueError(f"no image encoding for {pixels.dtype} with {channels} channel(s)")
    data = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)
    height, width = pixels.shape[:2]
    return store.types["sensor_msgs/msg/Image"](
        header=header(store, stamp_ns, frame_id), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=width * channels * pixels.dtype.itemsize, data=data)


def camera_info(store: Typestore, stamp_ns: int, camera: PinholeCamera) -> object:
    """``sensor_msgs/CameraInfo`` of a camera model; the frame is ``camera.frame_id``."""
    types = store.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                     do_rectify=False)
    return types["sensor_msgs/msg/CameraInfo"](
        header=header(store, stamp_ns, camera.frame_id), height=camera.height,
        width=camera.width, distortion_model=camera.distortion_model,
        d=np.array(camera.D, dtype=np.float64), k=camera.K.reshape(-1).copy(),
        r=camera.R.reshape(-1).copy(), p=camera.P.reshape(-1).copy(), binning_x=0,
        binning_y=0, roi=roi)


def xyz_cloud(store: Typestore, stamp_ns: int, frame_id: str, points: np.ndarray) -> object:
    """Unorganized ``sensor_msgs/PointCloud2`` with float32 x, y, z from ``(N, 3)`` points."""
    types = store.types
    xyz = np.ascontiguousarray(points, dtype=np.float32)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {xyz.shape}")
    fields = [types["sensor_msgs/msg/PointField"](name=name, offset=4 * axis,
                                                   datatype=POINTFIELD_FLOAT32, count=1)
              for axis, name in enumerate("xyz")]
    return types["sensor_msgs/msg/PointCloud2"](
        header=header(store, stamp_ns, frame_id), height=1, width=len(xyz), fields=fields,
        is_bigendian=False, point_step=12, row_step=12 * len(xyz),
        data=xyz.reshape(-1).view(np.uint8), is_dense=bool(np.isfinite(xyz).all()))


def _vector_and_quaternion(store: Typestore, matrix: np.ndarray,
                           vector_type: str) -> tuple[object, object]:
    types = store.types
    x, y, z = (float(v) for v in matrix[:3, 3])
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(matrix[:3, :3]).as_quat())
    return (types[vector_type](x=x, y=y, z=z),
            types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw))


def transform_stamped(store: Typestore, stamp_ns: int, parent: str, child: str,
                      parent_from_child: np.ndarray) -> object:
    """``geometry_msgs/TransformStamped``: the ``(4, 4)`` pose of ``child`` in ``parent``."""
    types = store.types
    translation, rotation = _vector_and_quaternion(store, parent_from_child,
                                                   "geometry_msgs/msg/Vector3")
    return types["geometry_msgs/msg/TransformStamped"](
        header=header(store, stamp_ns, parent), child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](translation=translation,
                                                       rotation=rotation))


def tf_message(store: Typestore, transforms: list[object]) -> object:
    """``tf2_msgs/TFMessage`` holding ``transforms``."""
    return store.types["tf2_msgs/msg/TFMessage"](transforms=transforms)


def pose_stamped(store: Typestore, stamp_ns: int, frame_id: str, pose: np.ndarray) -> object:
    """``geometry_msgs/PoseStamped`` of a ``(4, 4)`` pose in ``frame_id``."""
    types = store.types
    position, orientation = _vector_and_quaternion(store, pose, "geometry_msgs/msg/Point")
    return types["geometry_msgs/msg/PoseStamped"](
        header=header(store, stamp_ns, frame_id),
        pose=types["geometry_msgs/msg/Pose"](position=position, orientation=orientation))


def odometry(store: Typestore, stamp_ns: int, frame_id: str, child_frame_id: str,
             pose: np.ndarray, twist: np.ndarray) -> object:
    """``nav_msgs/Odometry``: the ``(4, 4)`` pose of ``child_frame_id`` in ``frame_id`` and a
    ``(6,)`` twist (linear x, y, z in m/s then angular x, y, z in rad/s, in the child frame).
    Covariances are left zero (unknown)."""
    types = store.types
    position, orientation = _vector_and_quaternion(store, pose, "geometry_msgs/msg/Point")
    vector = types["geometry_msgs/msg/Vector3"]
    linear, angular = (vector(x=float(v[0]), y=float(v[1]), z=float(v[2]))
                       for v in (twist[:3], twist[3:]))
    return types["nav_msgs/msg/Odometry"](
        header=header(store, stamp_ns, frame_id), child_frame_id=child_frame_id,
        pose=types["geometry_msgs/msg/PoseWithCovariance"](
            pose=types["geometry_msgs/msg/Pose"](position=position, orientation=orientation),
            covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](linear=linear, angular=angular),
            covariance=np.zeros(36)))


def occupancy_grid(store: Typestore, stamp_ns: int, frame_id: str, values: np.ndarray,
                   origin: tuple[float, float], resolution: float) -> object:
    """``nav_msgs/OccupancyGrid`` of ``(H, W)`` int8 values (100 occupied, 0 free, -1 unknown),
    row 0 at ``origin`` (x0, y0) metres, rows along y, no rotation."""
    if values.ndim != 2 or values.dtype != np.int8:
        raise ValueError(f"values must be (H, W) int8, got {values.shape} {values.dtype}")
    types = store.types
    stamp = header(store, stamp_ns, frame_id)
    height, width = values.shape
    origin_pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=float(origin[0]), y=float(origin[1]), z=0.0),
        orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
    info = types["nav_msgs/msg/MapMetaData"](map_load_time=stamp.stamp, resolution=resolution,
                                             width=width, height=height, origin=origin_pose)
    return types["nav_msgs/msg/OccupancyGrid"](header=stamp, info=info,
                                               data=np.ascontiguousarray(values).reshape(-1))
