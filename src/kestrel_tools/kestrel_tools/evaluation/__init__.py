"""Offline, deterministic evaluation of the core on a bag's synchronized messages, scored
against the bag's ground-truth topics (see :mod:`kestrel_tools.sample` for the layout).

- ``stereo``: SGM vs ``/ground_truth/disparity`` (bad-1, bad-2, EPE, density);
- ``flow``: EPE and Fl on stereo pairs (flow ``(-d, 0)``), photometric error on ``/camera/image``;
- ``depth``: depth from stereo and from classical LiDAR completion vs ``/ground_truth/depth``;
- ``trajectory``: ATE (SE3, Sim3) and RPE of a pose topic vs ``/ground_truth/pose``;
- ``mapping``: the core mapper (raw odometry, localization, + loop closure) on ``/mapping/*``
  vs the simulated world (map IoU) and the true drive (ATE, RPE);
- ``predictions``: disparities recorded from a node, matched by stamp;
- ``mapping_predictions``: a map and poses recorded from the neural_mapping node, against the
  bag's simulated world (IoU) and ground-truth drive (ATE, next to the raw odometry's).

``kestrel_tools.evaluation.runner.evaluate_bag`` runs them (import it from there: this package
itself stays light, for the command-line parser); :mod:`kestrel_tools.reports` writes the results.
"""

from kestrel_tools.evaluation.options import FLOW_METHODS, EvalOptions
from kestrel_tools.evaluation.results import Figure, TaskResult

__all__ = ["FLOW_METHODS", "EvalOptions", "Figure", "TaskResult"]
