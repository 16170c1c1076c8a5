"""The sample recording: a small, deterministic rosbag2 bag made from ``../shared/data``.

``kestrel bag make-sample`` writes it (``out/sample_bag`` by default, MCAP or sqlite3); the
demo replays it and ``kestrel eval BAG --task ...`` scores the core against its ground truth.
Every stamp is fixed (the bag starts at t = 1.7e9 s) and every message has its header stamp
as its receive time. With the default :class:`SampleConfig`:

| topic | type | frame | messages |
|---|---|---|---|
| ``/stereo/left/image_rect``, ``/stereo/right/image_rect`` | sensor_msgs/Image | ``camera_*_optical`` (rgb8), ``oakd_*_optical`` (mono8) | 4 each: Middlebury Motorcycle downscaled to 640x432 at 0.5 s, then 3 OAK-D 640x480 pairs, one a second |
| ``/stereo/left/camera_info``, ``/stereo/right/camera_info`` | sensor_msgs/CameraInfo | as the images | 4 each, stamped like the images |
| ``/ground_truth/disparity`` | sensor_msgs/Image 32FC1 | ``camera_left_optical`` | 1 (Motorcycle): pixels, NaN unknown, stamped like the left image |
| ``/ground_truth/depth`` | sensor_msgs/Image 32FC1 | ``camera_left_optical`` | 1: metres, ``fx B / (d + doffs)`` |
| ``/lidar/points`` | sensor_msgs/PointCloud2 (x, y, z float32) | ``lidar`` | 1: a 64-beam scan simulated from the Motorcycle true depth |
| ``/camera/image`` | sensor_msgs/Image rgb8 | ``video_optical`` | 16: vtest.avi frames 0-15 at 320x240, 10 Hz from 0 s |
| ``/tf_static`` | tf2_msgs/TFMessage | | 1: ``base_link -> lidar -> camera_left_optical -> camera_right_optical``, ``base_link -> oakd_left_optical -> oakd_right_optical``, ``car/base_link -> car/scan`` |
| ``/tf`` | tf2_msgs/TFMessage | ``odom -> base_link`` | 100 Hz: odometry with a 3 % scale error and 2 deg/s yaw drift (see ``motion``) |
| ``/ground_truth/pose`` | geometry_msgs/PoseStamped | ``world`` | 100 Hz: TUM RGB-D fr1_xyz ground truth |
| ``/mapping/points`` | sensor_msgs/PointCloud2 (x, y, z float32) | ``car/scan`` | ~10 Hz for 30 s (290): a simulated planar 360-beam LiDAR, returned beams only |
| ``/mapping/odom`` | nav_msgs/Odometry | ``car/odom -> car/base_link`` | with every scan: the true drive with seeded drift (``mapping_eval`` drift model), starting at the true first pose |
| ``/mapping/ground_truth/pose`` | geometry_msgs/PoseStamped | ``car/world`` | with every scan: the real KITTI 00 drive (first 30 s, on the ground plane) |
| ``/mapping/ground_truth/map`` | nav_msgs/OccupancyGrid | ``car/world`` | 1 at 0 s: the simulated street world (100 walls and boxes, 0 free), 0.25 m cells |

``/mapping/*`` is a second vehicle with frames of its own (``/tf_static`` also holds
``car/base_link -> car/scan``, 1.5 m up). Only its path is real: the world of walls and boxes,
the scans and the odometry drift are simulated along it with :mod:`kestrel_tools.mapping_eval`
(seeded), as the mapping evaluation protocol prescribes; see :mod:`kestrel_tools.sample.mapping`.

The bag is about 12 MB (the mapping stream adds 2 MB). The OAK-D pairs have no ground truth;
they exercise the stereo node on a second camera.
"""

from kestrel_tools.sample.builder import SampleSummary, build_sample_bag
from kestrel_tools.sample.config import SampleConfig

__all__ = ["SampleConfig", "SampleSummary", "build_sample_bag"]
