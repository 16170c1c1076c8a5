"""Optical-flow benchmark: Kestrel Lucas-Kanade, coarse-to-fine and learned flow against
OpenCV DIS and Farneback.

Accuracy uses a real rectified pair as flow ground truth: from the Motorcycle left image
to the right one, the flow is ``(u, v) = (-d, 0)``. Timing uses two consecutive real
video frames (OpenCV's vtest.avi) resized to 640x480; the methods are timed in
interleaved rounds (one run of each per round, medians over the rounds), so that a load
from other processes that comes and goes affects all of them alike and the ratios to DIS
stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import cv2
import numpy as np
import torch

from kestrel_core.flow import (
    FlowEstimator,
    LKConfig,
    flow_epe,
    flow_outlier_rate,
    opencv_dis_flow,
    opencv_farneback_flow,
)
from kestrel_core.flow.learned import default_flow_model_path, frames_to_tensor
from kestrel_core.geometry.warp import backward_warp
from kestrel_core.parallel import torch_threads
from kestrel_core.losses.photometric import photometric_error
from kestrel_tools.datasets import load_middlebury_motorcycle, load_oakd_pairs
from kestrel_tools.paths import data_dir

LK_TUNED = LKConfig(levels=6, iterations=8, finest_iterations=8)
LK_DEFAULT_NAME = "Kestrel LK (CPU, default: 6 levels, 3 iterations, 1 on the finest)"
LK_ONE_THREAD_NAME = "Kestrel LK (CPU, default, 1 torch thread)"
DIS_BASELINE_NAME = "OpenCV DIS medium (baseline)"
ZERO_FLOW_NAME = "Zero flow (reference: no motion, not timed)"


FlowMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]


def methods() -> dict[str, FlowMethod]:
    """The compared methods; the learned one only where the shipped model is installed."""
    kestrel: dict[str, FlowMethod] = {
        LK_DEFAULT_NAME: FlowEstimator("lk", lk_config=LKConfig()),
        LK_ONE_THREAD_NAME: single_threaded(FlowEstimator("lk", lk_config=LKConfig())),
        "Kestrel LK (CPU, 6 levels, 8 iterations on every level)": FlowEstimator("lk", lk_config=LK_TUNED),
        "Kestrel coarse-to-fine (CPU, default)": FlowEstimator("coarse_to_fine"),
    }
    if default_flow_model_path() is not None:
        kestrel["Kestrel learned (CPU, shipped flow_small)"] = FlowEstimator("learned")
    return {
        **kestrel,
        "OpenCV DIS ultrafast": lambda a, b: opencv_dis_flow(a, b, "ultrafast"),
        "OpenCV DIS fast": lambda a, b: opencv_dis_flow(a, b, "fast"),
        DIS_BASELINE_NAME: lambda a, b: opencv_dis_flow(a, b, "medium"),
        "OpenCV Farneback": opencv_farneback_flow,
    }




def zero_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """No motion at all: the floor any method must beat to have learned anything."""
    return np.zeros((*first.shape[:2], 2), np.float32)


def single_threaded(method: FlowMethod) -> FlowMethod:
    """``method`` run with one torch thread. On a CPU shared with other busy processes,
    torch's parallel regions wait for descheduled threads at every one of the few hundred
    small operations of a flow; one thread avoids that (on an idle machine it costs some
    speed instead)."""
    def run(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        with torch_threads(1):
            return method(first, second)
    return run


def video_pair(width: int = 640, height: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """Frames 100 and 101 of vtest.avi, RGB, resized."""
    capture = cv2.VideoCapture(str(data_dir() / "frames" / "vtest.avi"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    frames = []
    for _ in range(2):
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError("cannot read frames 100-101 of frames/vtest.avi")
        frames.append(cv2.cvtColor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_BGR2RGB))
    capture.release()
    return frames[0], frames[1]


def right_to_left_truth(disparity: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` ground-truth flow from the right image to the left one, NaN where unknown.

    A left pixel ``x`` with disparity ``d`` is seen at ``x - d`` in the right image, whose flow
    back to the left image is ``(+d, 0)``. Each known left pixel is splatted to the nearest
    right column; where several land on one pixel the nearest surface (largest ``d``) wins.
    Rounding moves a value by at most half a pixel along a smooth surface.
    """
    height, width = disparity.shape
    rows, cols = np.nonzero(np.isfinite(disparity))
    values = disparity[rows, cols]
    target = np.rint(cols - values).astype(np.int64)
    inside = (target >= 0) & (target < width)
    splat = np.full((height, width), -np.inf)
    np.maximum.at(splat, (rows[inside], target[inside]), values[inside])
    known = np.isfinite(splat)
    truth = np.full((height, width, 2), np.nan, dtype=np.float32)
    truth[known] = np.stack([splat[known], np.zeros(known.sum())], axis=-1)
    return truth


def mean_photometric_error(method: FlowMethod, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean SSIM+L1 photometric error of each second frame warped back onto its first frame."""
    errors = []
    for first, second in pairs:
        flow = torch.from_numpy(np.ascontiguousarray(method(first, second))).permute(2, 0, 1)[None]
        images = [frames_to_tensor(image, torch.device("cpu")) for image in (first, second)]
        warped, valid = backward_warp(images[1], flow.float())
        errors.append(photometric_error(images[0], warped)[valid].mean().item())
    return float(np.mean(errors))


def _threads(count: int) -> str:
    return f"{count} CPU thread{'' if count == 1 else 's'}"


def interleaved_median_ms(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time in ms of each run over ``repeats`` rounds after one warm-up round;
    every round runs each of ``runs`` once, in order."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def flow_section(repeats: int) -> list[str]:
    """Markdown for the flow benchmark; progress is printed as it goes."""
    sample = load_middlebury_motorcycle()
    truth = np.stack([-sample.ground_truth, np.zeros_like(sample.ground_truth)], axis=-1)
    truth[~np.isfinite(sample.ground_truth)] = np.nan
    truth_back = right_to_left_truth(sample.ground_truth)
    first, second = video_pair()
    oakd = [(pair.left, pair.right) for pair in load_oakd_pairs()]
    compared = methods()
    timings = interleaved_median_ms(
        {name: (lambda m=method: m(first, second)) for name, method in compared.items()}, repeats)
    results = {}
    for name, method in {**compared, ZERO_FLOW_NAME: zero_flow}.items():
        forward = method(sample.left, sample.right)
        backward = method(sample.right, sample.left)
        ms = timings.get(name, float("nan"))
        results[name] = {
            "epe": flow_epe(forward, truth), "epe_back": flow_epe(backward, truth_back),
            "outliers": flow_outlier_rate(forward, truth),
            "outliers_back": flow_outlier_rate(backward, truth_back),
            "photo_oakd": mean_photometric_error(method, oakd),
            "photo_video": mean_photometric_error(method, [(first, second)]), "ms": ms}
        timing = f"{ms:7.1f} ms @640x480" if np.isfinite(ms) else "not timed"
        print(f"{'flow':>20} | {name:<42} | EPE {results[name]['epe']:6.2f} / "
              f"{results[name]['epe_back']:6.2f} px | {timing}")
    base_ms = results[DIS_BASELINE_NAME]["ms"]
    lines = [
        "## Optical flow",
        "",
        "Motorcycle-as-flow: the rectified pair is a real flow pair. Left to right the ground "
        "truth is (-d, 0); right to left it is (+d, 0) at the right pixel each left pixel maps "
        "to (splatted, nearest surface wins). EPE and the share of pixels with an error over "
        "3 px are over the pixels with ground truth. Photometric error: mean SSIM+L1 "
        "(alpha 0.85) between the first frame and the second warped back by the flow, over "
        "the 12 OAK-D pairs (left to right) and two consecutive vtest.avi frames (no ground "
        "truth there). Time: median of "
        f"{repeats} interleaved rounds (each method once per round) after one warm-up round, "
        "on those two vtest.avi frames resized to 640x480, torch with "
        f"{_threads(torch.get_num_threads())}; ratio = time / OpenCV DIS medium time in the "
        "same rounds.",
        "",
        "| method | EPE L->R px | EPE R->L px | >3 px L->R | >3 px R->L | photometric OAK-D "
        "| photometric video | ms/frame 640x480 (median) | ratio vs DIS medium |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        timed = np.isfinite(r["ms"])
        time_cells = f"{r['ms']:.0f} | {r['ms'] / base_ms:.2f}x" if timed else "- | -"
        lines.append(f"| {name} | {r['epe']:.2f} | {r['epe_back']:.2f} | {r['outliers']:.1%} | "
                     f"{r['outliers_back']:.1%} | {r['photo_oakd']:.4f} | {r['photo_video']:.4f} | "
                     f"{time_cells} |")
    dis_epe = results[DIS_BASELINE_NAME]["epe"]
    best_name = min((n for n in results if n.startswith("Kestrel")), key=lambda n: results[n]["epe"])
    best_epe = results[best_name]["epe"]
    lk_ratio = results[LK_DEFAULT_NAME]["ms"] / base_ms
    lk_one_thread_ratio = results[LK_ONE_THREAD_NAME]["ms"] / base_ms
    lines += [
        "",
        "Targets:",
        "",
        f"- Kestrel's best method has EPE at most DIS-medium's on Motorcycle-as-flow (left to "
        f"right): **{'met' if best_epe <= dis_epe else 'missed'}** ({best_name}: "
        f"{best_epe:.2f} px vs {dis_epe:.2f} px).",
        f"- Kestrel LK at 640x480 on the CPU within 2x DIS-medium's time: "
        f"**{'met' if lk_ratio <= 2.0 else 'missed'}** ({lk_ratio:.2f}x with "
        f"{_threads(torch.get_num_threads())}; {lk_one_thread_ratio:.2f}x with 1 thread).",
    ]
    return lines
