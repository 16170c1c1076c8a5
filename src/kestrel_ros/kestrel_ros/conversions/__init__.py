"""Messages <-> numpy/torch: the only place in Kestrel where messages meet arrays.

* :mod:`.image`: ``sensor_msgs/Image`` (zero-copy reads, every common encoding).
* :mod:`.camera_info`: ``sensor_msgs/CameraInfo`` <-> ``PinholeCamera``/``StereoRig``, with caches.
* :mod:`.pointcloud2`: ``sensor_msgs/PointCloud2`` <-> structured arrays.
* :mod:`.point_cloud2_compat`: ``sensor_msgs_py.point_cloud2`` or Kestrel's stand-in.
* :mod:`.disparity`: ``stereo_msgs/DisparityImage`` (stereo_image_proc conventions).
* :mod:`.occupancy_grid`: ``nav_msgs/OccupancyGrid`` <-> ``(H, W) int8`` grids.
* :mod:`.feature_map`: ``kestrel_interfaces/FeatureMap`` and ``Embedding`` <-> arrays.
* :mod:`.planar`: SE(2) poses <-> ``geometry_msgs`` poses, transforms and covariances.
* :mod:`.detections3d`: upright 3D boxes <-> ``vision_msgs/Detection3D``.
* :mod:`.markers`, :mod:`.place_graph`: boxes and place graphs -> ``visualization_msgs/MarkerArray``.

torch is imported only by the functions that return or take tensors.
"""

from kestrel_ros.conversions.camera_info import (
    CameraInfoError,
    CameraModelCache,
    StereoRigCache,
    camera_info_to_model,
    model_to_camera_info,
    stereo_rig_from_camera_infos,
)
from kestrel_ros.conversions.disparity import disparity_image_to_numpy, make_disparity_image
from kestrel_ros.conversions.image import (
    ENCODINGS,
    ImageEncodingError,
    ImageLayoutError,
    image_to_numpy,
    image_to_tensor,
    numpy_to_image,
    tensor_to_image,
    to_gray_float,
    to_rgb8,
)
from kestrel_ros.conversions.pointcloud2 import (
    PointCloudLayoutError,
    array_to_pointcloud2,
    make_xyz_intensity_cloud,
    make_xyz_rgb_cloud,
    pointcloud2_to_array,
    rgb_float_to_uint8,
    rgb_uint8_to_float,
    xyz_array,
)

__all__ = [
    "ENCODINGS",
    "CameraInfoError",
    "CameraModelCache",
    "ImageEncodingError",
    "ImageLayoutError",
    "PointCloudLayoutError",
    "StereoRigCache",
    "array_to_pointcloud2",
    "camera_info_to_model",
    "disparity_image_to_numpy",
    "image_to_numpy",
    "image_to_tensor",
    "make_disparity_image",
    "make_xyz_intensity_cloud",
    "make_xyz_rgb_cloud",
    "model_to_camera_info",
    "numpy_to_image",
    "pointcloud2_to_array",
    "rgb_float_to_uint8",
    "rgb_uint8_to_float",
    "stereo_rig_from_camera_infos",
    "tensor_to_image",
    "to_gray_float",
    "to_rgb8",
    "xyz_array",
]
