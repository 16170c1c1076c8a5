"""The feature model of an image node: loaded once, run one frame at a time, CPU on CUDA OOM.

``ssl_features`` and ``object_discovery`` both run a :class:`kestrel_core.features.FeatureModel`
on an image stream. This module holds what they share: loading the model once at start-up
(on the CPU, copied to the node's device), admitting one frame at a time
(:class:`~kestrel_ros.load_policy.DropWhenBusy`) and running a frame on the node's device
with the CPU copy as fallback when CUDA runs out of memory
(:class:`~kestrel_ros.device_fallback.CpuFallback`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

from rclpy.node import Node

from kestrel_core.device import resolve_device
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_core.features.model import FeatureModel
from kestrel_ros.device_fallback import CpuFallback
from kestrel_ros.diagnostics import DiagnosticsReporter
from kestrel_ros.load_policy import DropWhenBusy

T = TypeVar("T")
M = TypeVar("M")


class FeatureModelHost:
    """A node's feature model on its device, with the frame gate and the CPU fallback.

    Args:
        node: the node (for its logger).
        model_path: Kestrel feature checkpoint; empty loads the best model installed.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (:func:`resolve_device`).
        diagnostics: the node's reporter; gets the device as hardware id and ``model_id``.

    Attributes:
        device: the resolved torch device.
        model: the model on ``device`` (the CPU copy itself when ``device`` is the CPU).
    """

    def __init__(self, node: Node, model_path: str, device: str, diagnostics: DiagnosticsReporter) -> None:
        self.device = resolve_device(device)
        # Loaded once, on the CPU; the CPU copy is kept for CUDA out-of-memory fallbacks.
        self._cpu_model = load_feature_model(model_path or None, "cpu")
        self.model: FeatureModel = (self._cpu_model if self.device.type == "cpu"
                                    else copy.deepcopy(self._cpu_model).to(self.device))
        diagnostics.hardware_id = str(self.device)
        diagnostics.extra["model_id"] = self.model.model_id
        self._diagnostics = diagnostics
        self._gate = DropWhenBusy(diagnostics, node.get_logger())
        self._fallback = CpuFallback(self.device, diagnostics, node.get_logger())

    def admit(self, msg: M, process: Callable[[M], None]) -> None:
        """Count ``msg`` as received and ``process`` it unless another frame is being
        processed (then it is dropped and counted as ``busy``)."""
        self._diagnostics.input_received()
        with self._gate.frame() as admitted:
            if admitted:
                process(msg)

    def run(self, compute: Callable[[FeatureModel], T]) -> T:
        """``compute(model)`` on the node's device; after a CUDA out-of-memory error,
        ``compute`` of the CPU copy (logged and counted by :class:`CpuFallback`)."""
        return self._fallback(lambda device: compute(self.model if device == self.device else self._cpu_model))
