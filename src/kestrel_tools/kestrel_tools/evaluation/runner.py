"""``evaluate_bag``: run the chosen tasks on one bag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kestrel_tools.bags import BagError, BagReader, open_bag
from kestrel_tools.evaluation import depth, flow, mapping, stereo, trajectory
from kestrel_tools.evaluation.mapping_predictions import evaluate_mapping_predictions
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.predictions import (evaluate_disparity_predictions,
                                                  evaluate_flow_predictions)
from kestrel_tools.evaluation.results import TaskResult
from kestrel_tools.sample import topics

TaskRunner = Callable[[BagReader, EvalOptions], TaskResult]

TASKS: dict[str, TaskRunner] = {
    "stereo": stereo.evaluate_stereo,
    "flow": flow.evaluate_flow,
    "depth": depth.evaluate_depth,
    "trajectory": trajectory.evaluate_trajectory,
    "mapping": mapping.evaluate_mapping,
}


def _usable_for_all(task: str, bag: BagReader, options: EvalOptions) -> bool:
    """Whether ``task`` has the topics it needs; ``--task all`` skips the others."""
    has = set(bag.topics)
    if task == "stereo":
        return set(stereo.REQUIRED) <= has
    if task == "flow":
        return set(flow.STEREO_REQUIRED) <= has or set(flow.VIDEO_REQUIRED) <= has
    if task == "depth":
        return topics.GT_DEPTH in has
    if task == "mapping":
        return set(mapping.REQUIRED) <= has
    return {options.trajectory_topic, topics.GT_POSE} <= has


def _run_task(task: str, bag: BagReader, options: EvalOptions) -> TaskResult:
    """One task; a bag error names the task it interrupted."""
    try:
        return TASKS[task](bag, options)
    except BagError as err:
        raise BagError(f"{err} (task {task})", err.path, topic=err.topic,
                       offset=err.offset) from err


def evaluate_bag(path: Path, tasks: list[str], options: EvalOptions = EvalOptions(),
                 predictions: Path | None = None,
                 predictions_topic: str | None = "/stereo/disparity",
                 flow_topic: str | None = None,
                 mapping_topics: tuple[str, str] | None = None) -> list[TaskResult]:
    """Run ``tasks`` (names of :data:`TASKS`, or ``["all"]``) on the bag at ``path``.

    With ``all``, tasks whose topics the bag lacks are skipped. With ``predictions`` (a bag
    recorded from running nodes), its DisparityImage messages on ``predictions_topic`` are
    scored against this bag's ground truth, and its flows on ``flow_topic`` (if given) by
    the photometric error on this bag's video, and its map and poses on ``mapping_topics``
    (map, pose; if given) against this bag's world and ``/mapping/ground_truth/pose``.

    Raises:
        BagError: an unreadable or damaged bag, or a missing topic (one line: file, topic,
            offset). ValueError: nothing to score.
    """
    with open_bag(path) as bag:
        chosen = [t for t in TASKS if _usable_for_all(t, bag, options)] if tasks == ["all"] \
            else tasks
        unknown = [t for t in chosen if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {', '.join(unknown)}; use {', '.join(TASKS)} or all")
        if not chosen and predictions is None:
            raise ValueError(f"{path}: the bag has the topics of none of the tasks "
                             f"({', '.join(TASKS)})")
        results = [_run_task(task, bag, options) for task in chosen]
        if predictions is not None:
            with open_bag(predictions) as recorded:
                if predictions_topic is not None:
                    results.append(evaluate_disparity_predictions(bag, recorded,
                                                                  predictions_topic))
                if flow_topic is not None:
                    results.append(evaluate_flow_predictions(bag, recorded, flow_topic))
                if mapping_topics is not None:
                    results.append(evaluate_mapping_predictions(bag, recorded, *mapping_topics))
    return results
