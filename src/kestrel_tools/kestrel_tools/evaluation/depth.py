"""Depth task: depth from stereo and from the LiDAR scan's completion vs ``/ground_truth/depth``.

The scan is completed as the ``lidar_camera_fusion`` node and ``kestrel complete-depth``
do by default: image-guided (:func:`kestrel_core.fusion.complete_depth_guided`) with the
left image of the same stamp.

Scores (over pixels with ground truth and an estimate; ``density`` is the share of
ground-truth pixels that have one): RMSE and MAE in metres, AbsRel = mean(|e| / gt), and
delta<1.25 = share with max(est / gt, gt / est) < 1.25.
"""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.fusion import complete_depth_guided, project_points, sparse_depth_image
from kestrel_core.geometry.stereo import disparity_to_depth
from kestrel_ros.conversions.camera_info import camera_info_to_model
from kestrel_ros.conversions.pointcloud2 import xyz_array
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.decode import float_map, image_array, stereo_rig
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.progress import progress
from kestrel_tools.evaluation.results import Figure, TaskResult, mean_rows
from kestrel_tools.evaluation.stereo import DisparityEstimator
from kestrel_tools.evaluation.sync import synchronized
from kestrel_tools.evaluation.tf_static import StaticTransforms
from kestrel_tools.sample import topics

STEREO_REQUIRED = (*topics.STEREO_INPUTS, topics.GT_DEPTH)
LIDAR_REQUIRED = (topics.LIDAR_POINTS, topics.LEFT_IMAGE, topics.LEFT_INFO, topics.GT_DEPTH,
                  topics.TF_STATIC)
METRICS = ("rmse", "mae", "abs_rel", "delta_1_25", "density")


def depth_metrics(depth: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Depth errors of an ``(H, W)`` estimate against ``(H, W)`` ground truth (metres, NaN
    or <= 0 unknown in both)."""
    if depth.shape != truth.shape:
        raise ValueError(f"depth is {depth.shape} but the ground truth is {truth.shape}")
    known = np.isfinite(truth) & (truth > 0)
    if not known.any():
        raise ValueError("the ground-truth depth has no valid pixel")
    both = known & np.isfinite(depth) & (depth > 0)
    est, gt = depth[both].astype(np.float64), truth[both].astype(np.float64)
    error = est - gt
    nan = float("nan")
    return {"rmse": float(np.sqrt((error ** 2).mean())) if both.any() else nan,
            "mae": float(np.abs(error).mean()) if both.any() else nan,
            "abs_rel": float((np.abs(error) / gt).mean()) if both.any() else nan,
            "delta_1_25": float((np.maximum(est / gt, gt / est) < 1.25).mean())
            if both.any() else nan,
            "density": float(both.sum() / known.sum())}


def completed_lidar_depth(points: np.ndarray, camera_t_lidar: np.ndarray, camera,
                          image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse ``(H, W)`` LiDAR depth in ``camera`` and its image-guided completion
    (metres); ``image`` is the camera's ``(H, W, 3)`` or ``(H, W)`` picture."""
    projection = project_points(torch.from_numpy(points), camera_t_lidar, camera)
    sparse = sparse_depth_image(projection, camera.height, camera.width).numpy()
    dense, _ = complete_depth_guided(sparse, image)
    return sparse, dense


def evaluate_depth(bag: BagReader, options: EvalOptions) -> TaskResult:
    """Depth from SGM disparity and from the completed LiDAR scan, each where available."""
    result = TaskResult("depth")
    has = set(bag.topics)
    for name, required, score in (("stereo", STEREO_REQUIRED, _score_stereo),
                                  ("lidar", LIDAR_REQUIRED, _score_lidar)):
        if set(required) <= has:
            score(bag, options, result)
        else:
            result.notes.append(f"no {name} depth: the bag lacks one of {', '.join(required)}")
    if not result.rows:
        raise ValueError(f"{bag.path}: no depth source has the stamp of a {topics.GT_DEPTH} "
                         "message")
    return result


def _add(result: TaskResult, source: str, rows: list[dict]) -> None:
    result.rows += rows
    if rows:
        result.summary.update({f"{source}_frames": len(rows),
                               **mean_rows(rows, METRICS, prefix=f"{source}_")})


def _score_stereo(bag: BagReader, options: EvalOptions, result: TaskResult) -> None:
    estimator, rows = DisparityEstimator(options), []
    groups = synchronized(bag, STEREO_REQUIRED)
    for stamp, group in progress(groups, bag.message_count(topics.GT_DEPTH), "depth stereo",
                                 options.progress):
        rig = stereo_rig(group)
        disparity = estimator(image_array(group[topics.LEFT_IMAGE]),
                              image_array(group[topics.RIGHT_IMAGE]))
        depth = disparity_to_depth(disparity, rig.focal, rig.baseline, rig.doffs)
        truth = float_map(group[topics.GT_DEPTH])
        rows.append({"stamp_ns": stamp, "source": "stereo", **depth_metrics(depth, truth)})
        if len(rows) == 1:
            top = float(np.nanmax(truth))
            result.figures += [
                Figure("depth_stereo", "depth", depth, "depth from SGM (m)", top),
                Figure("depth_gt", "depth", truth, "ground-truth depth (m)", top),
                Figure("depth_stereo_error", "error", np.abs(depth - truth),
                       "SGM |depth error| (m)", 0.5)]
    _add(result, "stereo", rows)
    result.notes.append("stereo: Z = f B / (d + doffs) from SGM disparity and the CameraInfo.")


def _score_lidar(bag: BagReader, options: EvalOptions, result: TaskResult) -> None:
    transforms, rows = StaticTransforms(bag), []
    groups = synchronized(bag, (topics.LIDAR_POINTS, topics.LEFT_IMAGE, topics.LEFT_INFO, topics.GT_DEPTH))
    for stamp, group in progress(groups, bag.message_count(topics.LIDAR_POINTS), "depth lidar",
                                 options.progress):
        camera = camera_info_to_model(group[topics.LEFT_INFO])
        cloud = group[topics.LIDAR_POINTS]
        camera_t_lidar = transforms.lookup(camera.frame_id, cloud.header.frame_id)
        sparse, dense = completed_lidar_depth(xyz_array(cloud, skip_nans=True), camera_t_lidar,
                                              camera, image_array(group[topics.LEFT_IMAGE]))
        truth = float_map(group[topics.GT_DEPTH])
        rows.append({"stamp_ns": stamp, "source": "lidar", **depth_metrics(dense, truth),
                     "lidar_pixels": int(np.isfinite(sparse).sum())})
        if len(rows) == 1:
            top = float(np.nanmax(truth))
            result.figures += [
                Figure("depth_lidar_sparse", "depth", sparse, "projected LiDAR depth (m)", top),
                Figure("depth_lidar_completed", "depth", dense, "completed LiDAR depth (m)", top),
                Figure("depth_lidar_error", "error", np.abs(dense - truth),
                       "completion |depth error| (m)", 0.5)]
    _add(result, "lidar", rows)
    result.notes.append("lidar: scan projected with /tf_static into the left camera, completed "
                        "along the left image by kestrel_core.fusion.complete_depth_guided "
                        "(default config).")
