"""Optical-flow benchmark: Kestrel Lucas-Kanade against OpenCV DIS and Farneback.

Accuracy uses a real rectified pair as flow ground truth: from the Motorcycle left image
to the right one, the flow is ``(u, v) = (-d, 0)``. Timing uses two consecutive real
video frames (OpenCV's vtest.avi) resized to 640x480.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from kestrel_core.flow import (
    LKConfig,
    dense_lucas_kanade,
    flow_epe,
    flow_outlier_rate,
    opencv_dis_flow,
    opencv_farneback_flow,
)
from kestrel_tools.benchmarks.timing import median_ms
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.paths import data_dir

LK_TUNED = LKConfig(levels=6, iterations=8)


def _lk(config: LKConfig) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda a, b: dense_lucas_kanade(a, b, config, "cpu").permute(1, 2, 0).float().numpy()


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Kestrel LK (CPU, default: 4 levels)": _lk(LKConfig()),
    "Kestrel LK (CPU, 6 levels, 8 iterations)": _lk(LK_TUNED),
    "OpenCV DIS ultrafast": lambda a, b: opencv_dis_flow(a, b, "ultrafast"),
    "OpenCV DIS fast": lambda a, b: opencv_dis_flow(a, b, "fast"),
    "OpenCV DIS medium (baseline)": lambda a, b: opencv_dis_flow(a, b, "medium"),
    "OpenCV Farneback": opencv_farneback_flow,
}


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


def flow_section(repeats: int) -> list[str]:
    """Markdown for the flow benchmark; progress is printed as it goes."""
    sample = load_middlebury_motorcycle()
    truth = np.stack([-sample.ground_truth, np.zeros_like(sample.ground_truth)], axis=-1)
    truth[~np.isfinite(sample.ground_truth)] = np.nan
    first, second = video_pair()
    results = {}
    for name, method in METHODS.items():
        flow = method(sample.left, sample.right)
        ms, _ = median_ms(lambda m=method: m(first, second), repeats)
        results[name] = (flow_epe(flow, truth), flow_outlier_rate(flow, truth), ms)
        print(f"{'flow':>20} | {name:<42} | EPE {results[name][0]:6.2f} px | {ms:7.1f} ms @640x480")
    base_ms = results["OpenCV DIS medium (baseline)"][2]
    lines = [
        "## Optical flow",
        "",
        "EPE and the share of pixels with an error over 3 px on Motorcycle-as-flow (left to right "
        "image, ground truth (-d, 0), over the pixels with ground truth). Time: median of "
        f"{repeats} runs after one warm-up on two consecutive vtest.avi frames resized to "
        "640x480; ratio = time / OpenCV DIS medium time in the same run.",
        "",
        "| method | EPE px | >3 px | ms/frame 640x480 (median) | ratio vs DIS medium |",
        "|---|---|---|---|---|",
    ]
    for name, (epe, outliers, ms) in results.items():
        lines.append(f"| {name} | {epe:.2f} | {outliers:.1%} | {ms:.0f} | {ms / base_ms:.2f}x |")
    dis_epe = results["OpenCV DIS medium (baseline)"][0]
    best_name = min((n for n in results if n.startswith("Kestrel")), key=lambda n: results[n][0])
    lk_ratio = results["Kestrel LK (CPU, default: 4 levels)"][2] / base_ms
    lines += [
        "",
        "Targets:",
        "",
        f"- Kestrel's best method has EPE at most DIS-medium's on Motorcycle-as-flow: "
        f"**{'met' if results[best_name][0] <= dis_epe else 'missed'}** ({best_name}: "
        f"{results[best_name][0]:.2f} px vs {dis_epe:.2f} px).",
        f"- Kestrel LK at 640x480 on the CPU within 2x DIS-medium's time: "
        f"**{'met' if lk_ratio <= 2.0 else 'missed'}** ({lk_ratio:.2f}x).",
    ]
    return lines
