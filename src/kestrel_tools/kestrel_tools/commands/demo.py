"""``kestrel demo``: the sample bag replayed through the real nodes, recorded and scored.

1. Build the sample bag (``out/sample_bag``, see :mod:`kestrel_tools.sample`) if it is missing,
   or rebuild it there if it predates topics the demo needs.
2. Start every node of ``DEMO_NODES`` (stereo_depth, optical_flow, ssl_features,
   object_discovery, lidar_camera_fusion and neural_mapping) as its own process with
   ``use_sim_time``, its inputs and outputs remapped onto the bag's topics.
3. Replay the bag with ``kestrel replay`` (its ``/clock`` drives the nodes) and record the
   nodes' outputs to ``<out>/recorded``.
4. Evaluate: the core offline on the bag (every task), plus the recorded disparities and
   flows against the bag's ground truth and frames, matched by stamp, and the recorded map
   and poses of neural_mapping against the simulated world (IoU) and the true drive (ATE,
   next to the raw odometry's). Print the summary table and write
   ``<out>/report/report.md``.

Adding a node to the demo is one more ``DemoNode`` entry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kestrel_tools.commands.bag import DEFAULT_SAMPLE
from kestrel_tools.sample import topics

PREDICTED_DISPARITY = "/stereo/disparity"
PREDICTED_FLOW = "/camera/flow"
FEATURE_PCA = "/camera/features/pca"
FUSED_DEPTH = "/fusion/depth/dense"
OBJECTS_OVERLAY = "/camera/objects/overlay"
MAPPING_MAP = "/mapping/map"
MAPPING_POSE = "/mapping/pose"


@dataclass(frozen=True)
class DemoNode:
    """A node of the demo.

    Attributes:
        executable: console script, also the name of ``config/<executable>.param.yaml``.
        remaps: (node topic, bag or output topic) pairs. TF topics need none: nodes read
            ``/tf`` and ``/tf_static`` by their global names.
        params: ``name:=value`` overrides on top of the parameter file; ``{device}`` and
            ``{max_disparity}`` are filled from the command line.
        inputs: bag topics it consumes (replayed).
        outputs: topics it publishes that the demo records.
    """

    executable: str
    remaps: tuple[tuple[str, str], ...]
    params: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def ros_args(self, config: Path, settings: dict[str, object]) -> list[str]:
        """``--ros-args`` arguments: parameter file, sim time, reliable inputs, remaps."""
        args = ["--params-file", str(config / f"{self.executable}.param.yaml"),
                "-p", "use_sim_time:=true", "-p", "qos_reliability:=reliable",
                "-p", "qos_depth:=50"]
        for param in self.params:
            args += ["-p", param.format(**settings)]
        for name, target in self.remaps:
            args += ["-r", f"{name}:={target}"]
        return args


DEMO_NODES = (
    DemoNode("stereo_depth",
             remaps=(("left/image_rect", topics.LEFT_IMAGE),
                     ("right/image_rect", topics.RIGHT_IMAGE),
                     ("left/camera_info", topics.LEFT_INFO),
                     ("right/camera_info", topics.RIGHT_INFO),
                     ("disparity", PREDICTED_DISPARITY), ("depth", "/stereo/depth")),
             params=("device:={device}", "max_disparity:={max_disparity}",
                    "publish_points:=false", "sync_queue_size:=20"),
             inputs=topics.STEREO_INPUTS, outputs=(PREDICTED_DISPARITY,)),
    DemoNode("optical_flow",
             remaps=(("image", topics.VIDEO_IMAGE), ("flow", PREDICTED_FLOW)),
             params=("device:={device}", "occlusion_check:=false"),
             inputs=(topics.VIDEO_IMAGE,), outputs=(PREDICTED_FLOW,)),
    DemoNode("ssl_features",
             remaps=(("image", topics.VIDEO_IMAGE), ("features/pca", FEATURE_PCA)),
             params=("device:={device}", "pca_fit_cells:=256"),
             inputs=(topics.VIDEO_IMAGE,), outputs=(FEATURE_PCA,)),
    DemoNode("object_discovery",
             remaps=(("image", topics.VIDEO_IMAGE), ("overlay", OBJECTS_OVERLAY)),
             params=("device:={device}",),
             inputs=(topics.VIDEO_IMAGE,), outputs=(OBJECTS_OVERLAY,)),
    DemoNode("lidar_camera_fusion",
             remaps=(("points", topics.LIDAR_POINTS), ("image", topics.LEFT_IMAGE),
                     ("camera_info", topics.LEFT_INFO), ("depth/dense", FUSED_DEPTH)),
             params=("device:={device}",),
             inputs=(topics.LIDAR_POINTS, topics.LEFT_IMAGE, topics.LEFT_INFO, topics.TF_STATIC),
             outputs=(FUSED_DEPTH,)),
    # The car moves up to 1.1 m between scans, more than the default odometry jump (1 m).
    DemoNode("neural_mapping",
             remaps=(("points", topics.MAPPING_POINTS), ("odom", topics.MAPPING_ODOM),
                     ("map", MAPPING_MAP), ("pose", MAPPING_POSE),
                     ("map/features", "/mapping/map/features"), ("graph", "/mapping/graph")),
             params=("device:={device}", "odom_source:=topic",
                     f"map_frame:={topics.MAPPING_MAP_FRAME}",
                     f"odom_frame:={topics.MAPPING_ODOM_FRAME}",
                     f"base_frame:={topics.MAPPING_BASE_FRAME}",
                     "odom_jump_distance:=3.0", "tf_timeout:=0.5"),
             inputs=(topics.MAPPING_POINTS, topics.MAPPING_ODOM, topics.TF_STATIC),
             outputs=(MAPPING_MAP, MAPPING_POSE)),
)
# Bag topics the evaluation of the recorded outputs reads, besides the nodes' inputs.
SCORED_TOPICS = (topics.GT_DISPARITY, topics.VIDEO_IMAGE, topics.MAPPING_GT_MAP,
                 topics.MAPPING_GT_POSE)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="replay the sample bag through the nodes, record, score",
                            description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--bag", type=Path, default=DEFAULT_SAMPLE,
                        help=f"sample bag, built there if missing (default {DEFAULT_SAMPLE}, "
                             "also rebuilt when it predates topics the demo needs)")
    parser.add_argument("--rate", type=float, default=0.5,
                        help="replay speed (default 0.5: the CPU nodes keep up)")
    parser.add_argument("--device", default="auto", help="device of the nodes")
    parser.add_argument("--max-disparity", type=int, default=64,
                        help="disparities searched by the node and the offline run (default 64; "
                             "Motorcycle at 640 px needs 52)")
    parser.add_argument("--record-idle", type=float, default=60.0, metavar="S",
                        help="after the bag ends, record until S seconds pass without an output "
                             "(default 60: SGM on a busy shared CPU lags far behind the bag)")
    parser.add_argument("--domain-id", type=int,
                        default=int(os.environ.get("ROS_DOMAIN_ID", 1 + os.getpid() % 100)))
    parser.set_defaults(run=run)


def _replay_command(bag: Path, recorded: Path, rate: float, idle_s: float) -> list[str]:
    played = sorted({topic for node in DEMO_NODES for topic in node.inputs})
    outputs = [topic for node in DEMO_NODES for topic in node.outputs]
    return [sys.executable, "-m", "kestrel_tools.cli", "replay", str(bag), "--rate", str(rate),
            "--topics", *played, "--record", str(recorded), "--record-topics", *outputs,
            "--wait-for-subscribers", "60", "--record-idle", str(idle_s)]


def _run_nodes_and_replay(args: argparse.Namespace, recorded: Path) -> None:
    from contextlib import ExitStack

    from kestrel_tools.graph import NodeProcess, local_ros_env
    from kestrel_tools.paths import config_dir

    with ExitStack() as stack:
        settings = {"device": args.device, "max_disparity": args.max_disparity}
        processes = [stack.enter_context(NodeProcess(
            node.executable, node.ros_args(config_dir(), settings), domain_id=args.domain_id))
            for node in DEMO_NODES]
        replay = subprocess.run(_replay_command(args.bag, recorded, args.rate, args.record_idle),
                                env=local_ros_env(args.domain_id), check=False)
        if replay.returncode != 0:
            raise RuntimeError(f"kestrel replay failed with exit code {replay.returncode}")
        counts = _recorded_counts(recorded)
        for node, process in zip(DEMO_NODES, processes):
            silent = [topic for topic in node.outputs if not counts.get(topic)]
            if silent or not process.alive():
                what = "exited" if not process.alive() else f"recorded nothing on {silent[0]}"
                raise RuntimeError(f"{node.executable} {what}; its log:\n{process.log()}")


def _ensure_sample_bag(bag: Path) -> None:
    """Build the sample bag at ``bag`` if missing; rebuild the default one if it lacks topics.

    Raises:
        RuntimeError: a bag given with ``--bag`` lacks topics the demo needs.
    """
    from kestrel_tools.bags import open_bag
    from kestrel_tools.sample import build_sample_bag

    if bag.exists():
        needed = {topic for node in DEMO_NODES for topic in node.inputs} | set(SCORED_TOPICS)
        with open_bag(bag) as reader:
            missing = sorted(needed - set(reader.topics))
        if not missing:
            return
        if bag.resolve() != DEFAULT_SAMPLE.resolve():
            raise RuntimeError(f"{bag} lacks {', '.join(missing)}; build a current sample with "
                               "'kestrel bag make-sample --out DIR'")
        print(f"{bag} predates {', '.join(missing)}; rebuilding it")
        shutil.rmtree(bag)  # the demo's own build output
    print(f"building the sample bag {bag}")
    build_sample_bag(bag)


def _recorded_counts(recorded: Path) -> dict[str, int]:
    """Messages per topic of the recorded bag (topics never seen are absent)."""
    from kestrel_tools.bags import open_bag

    with open_bag(recorded) as bag:
        return {topic: bag.message_count(topic) for topic in bag.topics}


def run(args: argparse.Namespace) -> int:
    from kestrel_tools.evaluation import EvalOptions
    from kestrel_tools.evaluation.runner import evaluate_bag
    from kestrel_tools.reports import summary_lines, write_report

    _ensure_sample_bag(args.bag)
    recorded = args.out / "recorded"
    if recorded.exists():
        shutil.rmtree(recorded)  # the demo's own output of a previous run
    args.out.mkdir(parents=True, exist_ok=True)
    _run_nodes_and_replay(args, recorded)
    options = EvalOptions(max_disparity=args.max_disparity)
    results = evaluate_bag(args.bag, ["all"], options, predictions=recorded,
                           predictions_topic=PREDICTED_DISPARITY, flow_topic=PREDICTED_FLOW,
                           mapping_topics=(MAPPING_MAP, MAPPING_POSE))
    report = write_report(args.out / "report", results, "Kestrel demo",
                          {"bag": str(args.bag), "recorded": str(recorded),
                           "nodes": " ".join(node.executable for node in DEMO_NODES)})
    print("\n".join(summary_lines(results)))
    print(f"report: {report}")
    return 0
