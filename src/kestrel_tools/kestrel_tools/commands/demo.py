"""``kestrel demo``: run the stereo node as a real process on the bundled real pairs.

The real Middlebury Motorcycle pair and the OAK-D pairs from ``../shared/data`` are
published over DDS as images with CameraInfo; the node's disparity and depth come back
and are written to ``out/demo/`` as colourized PNGs and ``.npy`` files. Bad-2.0 against
the Motorcycle ground truth is printed beside OpenCV SGBM's on the same pair.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from kestrel_core.stereo import OpenCVSGBMConfig, opencv_sgbm_disparity
from kestrel_tools.datasets import StereoSample, load_middlebury_motorcycle, load_oakd_pairs
from kestrel_tools.graph import GraphProbe, NodeProcess
from kestrel_tools.image_io import colorize_disparity, write_rgb_png
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.paths import config_dir
from kestrel_tools.stereo_client import StereoTopicClient



def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the stereo node on the bundled real data")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--max-disparity", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--oakd-pairs", type=int, default=12, help="how many OAK-D pairs to run")
    parser.add_argument("--domain-id", type=int,
                        default=int(os.environ.get("ROS_DOMAIN_ID", 1 + os.getpid() % 100)))
    parser.set_defaults(run=run)


def save_outputs(out: Path, sample: StereoSample, disparity: np.ndarray, depth: np.ndarray,
                 max_disparity: int) -> None:
    write_rgb_png(out / f"{sample.name}_disparity.png", colorize_disparity(disparity, max_disparity))
    np.save(out / f"{sample.name}_disparity.npy", disparity)
    np.save(out / f"{sample.name}_depth.npy", depth)


def run(args: argparse.Namespace) -> int:
    samples = [load_middlebury_motorcycle(), *load_oakd_pairs()[: args.oakd_pairs]]
    args.out.mkdir(parents=True, exist_ok=True)
    ros_args = ["--params-file", str(config_dir() / "stereo_depth.param.yaml"), "-p", "qos_reliability:=reliable",
                "-p", f"max_disparity:={args.max_disparity}", "-p", f"device:={args.device}"]
    summary: dict[str, dict] = {}
    with NodeProcess("stereo_depth", ros_args, domain_id=args.domain_id) as node, \
            GraphProbe("kestrel_demo", domain_id=args.domain_id) as probe:
        client = StereoTopicClient(probe, want_points=False)
        if not probe.wait_for_subscribers(client.input_topics, timeout=60.0):
            raise RuntimeError("stereo_depth did not subscribe within 60 s; its log:\n" + node.log())
        for sample in samples:
            if not node.alive():
                raise RuntimeError("stereo_depth exited; its log:\n" + node.log())
            reply = client.request(sample.left, sample.right, sample.left_camera, sample.right_camera)
            doffs = sample.right_camera.cx - sample.left_camera.cx
            disparity = reply.disparity - np.float32(doffs)
            save_outputs(args.out, sample, disparity, reply.depth, args.max_disparity)
            valid = float(np.isfinite(disparity).mean())
            summary[sample.name] = {"valid_share": round(valid, 4)}
            print(f"{sample.name:>18}: {disparity.shape[1]}x{disparity.shape[0]}, "
                  f"{valid:.1%} valid, median depth {np.nanmedian(reply.depth):.2f} m")
    motorcycle = samples[0]
    node_scores = stereo_metrics(np.load(args.out / "motorcycle_disparity.npy"), motorcycle.ground_truth)
    opencv = opencv_sgbm_disparity(motorcycle.left, motorcycle.right,
                                   OpenCVSGBMConfig(max_disparity=args.max_disparity))
    opencv_scores = stereo_metrics(opencv, motorcycle.ground_truth)
    summary["motorcycle"].update({"kestrel": node_scores, "opencv_sgbm_3way": opencv_scores})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Motorcycle bad-2.0 (invalid counted as error): stereo_depth node "
          f"{node_scores['bad2']:.2%}, OpenCV SGBM_3WAY {opencv_scores['bad2']:.2%} "
          f"(max disparity {args.max_disparity}); outputs in {args.out}/")
    return 0
