"""Mapping benchmark: raw odometry vs Kestrel (localization, + loop closure) on KITTI 00.

KITTI 00's ground truth (3.7 km, with loops) is projected to the plane and subsampled; the
street world, the scanner and the drift model are documented in
``kestrel_tools.mapping_eval``. Every method gets the same scans and the same seeded drifting
odometry. Integration throughput is measured on a real depth image (Middlebury Motorcycle
ground-truth disparity turned into depth), points per second into the grid on the CPU.

The mapping loop is thousands of small tensor operations; on a shared machine torch's
intra-op threads spend more time synchronising than computing, so the section runs with one
thread and restores the previous setting afterwards.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

KITTI_EVERY = 8
RPE_DELTA_M = 50.0




def _kitti_rows() -> list[str]:
    from kestrel_core.mapping.mapper import MapperConfig
    from kestrel_tools.mapping_eval.odometry import DriftConfig, drifting_odometry, planar_kitti
    from kestrel_tools.mapping_eval.run import evaluate_methods, render_scans
    from kestrel_tools.mapping_eval.world import ScannerConfig, StreetWorldConfig, street_world
    from kestrel_tools.paths import data_dir

    times, truth = planar_kitti(data_dir() / "trajectories" / "KITTI_00_gt.txt", KITTI_EVERY)
    world_config, scanner, drift = StreetWorldConfig(), ScannerConfig(), DriftConfig()
    world = street_world(truth[:, :2], world_config)
    print(f"mapping: rendering {len(truth)} scans", flush=True)
    scans = render_scans(world, truth, scanner)
    odometry = drifting_odometry(truth, drift)
    results = evaluate_methods(world, times, truth, odometry, scans, MapperConfig(), RPE_DELTA_M)
    raw_ate = results[0].ate
    path_km = float(np.linalg.norm(np.diff(truth[:, :2], axis=0), axis=1).sum()) / 1000.0
    lines = [
        f"KITTI 00 ground truth projected to the plane, every {KITTI_EVERY}th frame "
        f"({len(truth)} poses, {path_km:.2f} km); street world at {world_config.resolution} m "
        f"(walls {world_config.wall_distance} m from the path, gaps and boxes, seed "
        f"{world_config.seed}); {scanner.beams}-beam scans to {scanner.max_range} m, "
        f"sigma {scanner.range_sigma} m, {scanner.dropout:.0%} dropouts; odometry drift: "
        f"yaw-bias walk {drift.bias_walk} rad/m/sqrt(m), yaw noise {drift.yaw_sigma} "
        f"rad/sqrt(m), scale {drift.scale_error:.0%}, noise {drift.along:.0%} along / "
        f"{drift.across:.1%} across (seed {drift.seed}). ATE after SE(3) alignment; RPE over "
        f"{RPE_DELTA_M:g} m; map IoU of occupied cells against the world over observed cells "
        f"(0.5 m map).",
        "",
        "| Method | ATE (m) | ATE vs raw | RPE (m / 50 m) | RPE (deg / 50 m) | Map IoU "
        "| Loop corrections | Time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(f"| {result.name} | {result.ate:.2f} | {result.ate / raw_ate - 1:+.0%} "
                     f"| {result.rpe:.2f} | {result.rpe_deg:.2f} | {result.iou:.3f} "
                     f"| {result.loops} | {result.seconds:.1f} |")
    return lines


def _integration_rows(repeats: int) -> list[str]:
    import torch

    from kestrel_core.geometry.camera import StereoRig
    from kestrel_core.geometry.stereo import disparity_to_depth
    from kestrel_core.mapping.egocentric import EgoGridConfig, depth_to_points, points_to_ego_grid
    from kestrel_core.mapping.memory import MapMemory, MemoryConfig
    from kestrel_tools.benchmarks.timing import median_ms
    from kestrel_tools.datasets import load_middlebury_motorcycle

    sample = load_middlebury_motorcycle()
    camera = sample.left_camera
    rig = StereoRig(camera, sample.right_camera)
    depth = disparity_to_depth(sample.ground_truth, rig.focal, rig.baseline, rig.doffs)
    depth = torch.from_numpy(np.asarray(depth, np.float32))
    # Optical frame (x right, y down, z forward) to base (x forward, y left, z up), 1 m high.
    base_from_optical = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 1.0], [0, 0, 0, 1]])
    ego_config = EgoGridConfig(resolution=0.02, radius_cells=150, max_range=3.0,
                               free_step=1.0, max_free_rays=2048)
    memory = MapMemory.empty(MemoryConfig(resolution=0.02), (0.0, 0.0), 400)
    pose = torch.tensor([0.1, -0.05, 0.2])

    def integrate() -> int:
        points = depth_to_points(depth, camera.K, base_from_optical)
        memory.integrate(points_to_ego_grid(points, ego_config), pose)
        return points.shape[0]

    with torch.inference_mode():
        cpu_start = time.process_time()
        milliseconds, count = median_ms(integrate, repeats)
        cpu_ms = (time.process_time() - cpu_start) * 1000.0 / (repeats + 1)
    rate = count / (milliseconds / 1000.0)
    return [
        "",
        f"Integration on the CPU (one thread): Middlebury Motorcycle ground-truth depth "
        f"({depth.shape[1]}x{depth.shape[0]}, {count} valid points), back-projection + "
        f"egocentric grid ({ego_config.size}x{ego_config.size} at {ego_config.resolution} m, "
        f"free space sampled once per cell along {ego_config.max_free_rays} rays) + warp and "
        f"log-odds update, "
        f"median wall time of {repeats}; CPU time is this process's mean over the same runs "
        f"(what the work costs without the other jobs on a shared machine).",
        "",
        "| Input | Points | Wall time (ms) | Points / s (wall) | CPU time (ms) "
        "| Points / CPU second |",
        "|---|---|---|---|---|---|",
        f"| Middlebury depth image | {count} | {milliseconds:.1f} | {rate / 1e6:.2f} M "
        f"| {cpu_ms:.1f} | {count / (cpu_ms / 1000.0) / 1e6:.2f} M |",
    ]


def mapping_section(args: argparse.Namespace) -> list[str]:
    """Markdown for the mapping benchmark; progress is printed as it goes."""
    start = time.perf_counter()
    from kestrel_core.parallel import torch_threads

    with torch_threads(1):
        lines = ["## Neural mapping (KITTI 00, 2D)", ""] + _kitti_rows()
        lines += _integration_rows(args.repeats)
    print(f"mapping: done in {time.perf_counter() - start:.0f} s", flush=True)
    return lines
