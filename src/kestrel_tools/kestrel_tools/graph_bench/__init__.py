"""Benchmark a running Kestrel node over DDS, the way ros2_benchmark measures a graph.

The node runs as its own process. Pre-serialized input messages are published at a fixed rate,
each stamped with its send time; every output is matched to its input by ``header.stamp``.

- :mod:`~kestrel_tools.graph_bench.targets`: which nodes can be measured (inputs, outputs,
  message builders); :mod:`~kestrel_tools.graph_bench.inputs` builds the frames from the real
  recordings, :mod:`~kestrel_tools.graph_bench.params` the node's parameters and arguments.
- :mod:`~kestrel_tools.graph_bench.cdr`: re-stamp serialized messages, read output stamps.
- :mod:`~kestrel_tools.graph_bench.runner`: start the node, feed it, collect and time outputs.
- :mod:`~kestrel_tools.graph_bench.accounting`: latency and drop figures of one trial.
- :mod:`~kestrel_tools.graph_bench.rate_search`: the peak input rate with few drops.
- :mod:`~kestrel_tools.graph_bench.resources`: CPU and memory of the node process.
- :mod:`~kestrel_tools.graph_bench.report`: JSON and markdown.
"""
