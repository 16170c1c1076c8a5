"""Graph benchmark section: the stereo_depth node as a process over DDS at 640x480.

Latency at 10 Hz, the peak input rate with < 5 % drops, and the node's CPU and memory,
measured by :mod:`kestrel_tools.graph_bench` (``kestrel bench-graph`` runs the same with more
options).
"""

from __future__ import annotations

import os

RATE_HZ = 10.0
DURATION_S = 10.0
TRIAL_S = 4.0
MAX_TRIALS = 4  # keeps the section near two minutes on an unloaded machine


def graph_section() -> list[str]:
    """Markdown for the graph benchmark; progress is printed as it goes."""
    from kestrel_tools.graph_bench.rate_search import RateSearchConfig
    from kestrel_tools.graph_bench.report import markdown_lines
    from kestrel_tools.graph_bench.runner import GraphBenchConfig, run_graph_bench

    config = GraphBenchConfig(node="stereo_depth", width=640, height=480, rate_hz=RATE_HZ,
                              duration_s=DURATION_S, trial_duration_s=TRIAL_S,
                              peak=RateSearchConfig(max_trials=MAX_TRIALS),
                              domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    result = run_graph_bench(config, progress=print)
    return ["## Node over DDS (graph benchmark)", "",
            "`stereo_depth` started as its own process with `config/stereo_depth.param.yaml`, fed "
            "the 12 OAK-D pairs (mono8, with CameraInfo) by `kestrel bench-graph`; the peak "
            "search starts at the rate the node answered at 10 Hz if it dropped frames there. Each trial "
            "ends with a barrier frame whose answer shows the node has finished the trial.", "",
            *markdown_lines(result)]
