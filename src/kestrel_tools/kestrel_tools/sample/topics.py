"""Topic and frame names of the sample bag, shared by its builder, ``kestrel eval`` and the demo."""

LEFT_IMAGE = "/stereo/left/image_rect"
RIGHT_IMAGE = "/stereo/right/image_rect"
LEFT_INFO = "/stereo/left/camera_info"
RIGHT_INFO = "/stereo/right/camera_info"
VIDEO_IMAGE = "/camera/image"
LIDAR_POINTS = "/lidar/points"
TF = "/tf"
TF_STATIC = "/tf_static"
GT_DISPARITY = "/ground_truth/disparity"
GT_DEPTH = "/ground_truth/depth"
GT_POSE = "/ground_truth/pose"
MAPPING_POINTS = "/mapping/points"
MAPPING_ODOM = "/mapping/odom"
MAPPING_GT_POSE = "/mapping/ground_truth/pose"
MAPPING_GT_MAP = "/mapping/ground_truth/map"

STEREO_INPUTS = (LEFT_IMAGE, RIGHT_IMAGE, LEFT_INFO, RIGHT_INFO)

WORLD_FRAME = "world"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
LIDAR_FRAME = "lidar"
VIDEO_FRAME = "video_optical"
# The mapping stream is a second vehicle (a car on KITTI 00), so it has frames of its own.
MAPPING_WORLD_FRAME = "car/world"
MAPPING_MAP_FRAME = "car/map"
MAPPING_ODOM_FRAME = "car/odom"
MAPPING_BASE_FRAME = "car/base_link"
MAPPING_SCAN_FRAME = "car/scan"

TOPIC_TYPES = {
    LEFT_IMAGE: "sensor_msgs/msg/Image",
    RIGHT_IMAGE: "sensor_msgs/msg/Image",
    LEFT_INFO: "sensor_msgs/msg/CameraInfo",
    RIGHT_INFO: "sensor_msgs/msg/CameraInfo",
    VIDEO_IMAGE: "sensor_msgs/msg/Image",
    LIDAR_POINTS: "sensor_msgs/msg/PointCloud2",
    TF: "tf2_msgs/msg/TFMessage",
    TF_STATIC: "tf2_msgs/msg/TFMessage",
    GT_DISPARITY: "sensor_msgs/msg/Image",
    GT_DEPTH: "sensor_msgs/msg/Image",
    GT_POSE: "geometry_msgs/msg/PoseStamped",
    MAPPING_POINTS: "sensor_msgs/msg/PointCloud2",
    MAPPING_ODOM: "nav_msgs/msg/Odometry",
    MAPPING_GT_POSE: "geometry_msgs/msg/PoseStamped",
    MAPPING_GT_MAP: "nav_msgs/msg/OccupancyGrid",
}
