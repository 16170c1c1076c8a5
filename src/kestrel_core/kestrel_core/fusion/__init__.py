"""LiDAR-camera fusion: projection, z-buffered sparse depth, range images, point painting,
classical depth completion (morphological, and image-guided after a see-through point test)
and a LiDAR simulated from dense depth.

Typical use::

    from kestrel_core.fusion import project_points, sparse_depth_image, complete_depth_classical

    proj = project_points(points, T_cam_lidar, camera)          # uv (N, 2), depth, visible
    sparse = sparse_depth_image(proj, camera.height, camera.width)  # (H, W), NaN empty
    dense, confidence = complete_depth_classical(sparse)

Frames: LiDAR points in REP-103 body axes (x forward, y left, z up); camera points in the
optical frame (x right, y down, z forward); pixel centres at integer ``(u, v)``.
"""

from kestrel_core.fusion.completion import ClassicalCompletionConfig, complete_depth_classical, structuring_element
from kestrel_core.fusion.guided_completion import GuidedCompletionConfig, complete_depth_guided
from kestrel_core.fusion.occlusion import OcclusionFilterConfig, remove_occluded_points
from kestrel_core.fusion.depth_image import RangeImageConfig, range_image, sparse_depth_image, spherical_indices
from kestrel_core.fusion.painting import paint_points
from kestrel_core.fusion.projection import Projection, camera_uses_distortion, max_monotonic_radius, project_points
from kestrel_core.fusion.simulated_lidar import (
    R_BODY_FROM_OPTICAL,
    SimulatedLidarConfig,
    default_T_lidar_cam,
    simulate_lidar_from_depth,
)

__all__ = [
    "Projection",
    "project_points",
    "camera_uses_distortion",
    "max_monotonic_radius",
    "sparse_depth_image",
    "RangeImageConfig",
    "range_image",
    "spherical_indices",
    "paint_points",
    "ClassicalCompletionConfig",
    "complete_depth_classical",
    "structuring_element",
    "GuidedCompletionConfig",
    "complete_depth_guided",
    "OcclusionFilterConfig",
    "remove_occluded_points",
    "R_BODY_FROM_OPTICAL",
    "SimulatedLidarConfig",
    "default_T_lidar_cam",
    "simulate_lidar_from_depth",
]
