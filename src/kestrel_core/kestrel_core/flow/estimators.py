"""One entry point for every flow method, shared by the node, the CLI and the benchmarks.

``FlowEstimator(method, ...)`` is built once (the learned model is loaded then) and called
per pair as ``estimator(first, second, device)``; it returns ``(H, W, 2)`` float32
``(u, v)`` from ``first`` to ``second`` as a numpy array.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from kestrel_core.device import resolve_device
from kestrel_core.flow.baselines import opencv_dis_flow
from kestrel_core.flow.coarse_to_fine import CoarseToFineConfig, coarse_to_fine_flow
from kestrel_core.flow.learned import learned_flow, load_flow_model
from kestrel_core.flow.lucas_kanade import LKConfig, dense_lucas_kanade

__all__ = ["FLOW_METHODS", "FlowEstimator"]

FLOW_METHODS = ("lk", "coarse_to_fine", "learned", "dis")


class FlowEstimator:
    """Dense flow by ``method``: ``lk`` (Kestrel pyramidal Lucas-Kanade, fast),
    ``coarse_to_fine`` (Kestrel block matching + smoothed Lucas-Kanade with occlusion
    filling, the most accurate, tens of times slower than ``lk`` on the CPU), ``learned``
    (Kestrel's network, loaded here from ``model_path``, or the shipped model when it is
    None or empty) or ``dis`` (OpenCV DIS with ``dis_preset``, CPU only).

    A learned model that must run on another device than it was loaded on (the CPU fallback
    after a CUDA out-of-memory error) is copied there once and kept.
    """

    def __init__(self, method: str, device: str | torch.device = "cpu", *,
                 lk_config: LKConfig = LKConfig(),
                 coarse_to_fine_config: CoarseToFineConfig = CoarseToFineConfig(),
                 dis_preset: str = "medium",
                 model_path: str | Path | None = None) -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
        self.method = method
        self.lk_config = lk_config
        self.coarse_to_fine_config = coarse_to_fine_config
        self.dis_preset = dis_preset
        self._models: dict[torch.device, torch.nn.Module] = {}
        if method == "learned":
            model = load_flow_model(model_path, device)
            self._models[resolve_device(device)] = model

    @property
    def model(self) -> torch.nn.Module | None:
        """The learned network (on the device it was loaded on), or None."""
        return next(iter(self._models.values()), None)

    def _model_on(self, device: torch.device) -> torch.nn.Module:
        if device not in self._models:
            self._models[device] = copy.deepcopy(self.model).to(device).eval()
        return self._models[device]

    def __call__(self, first: np.ndarray, second: np.ndarray,
                 device: str | torch.device = "cpu") -> np.ndarray:
        """``(H, W, 2)`` float32 flow; images as the chosen method accepts them."""
        if self.method == "dis":
            return opencv_dis_flow(first, second, self.dis_preset).astype(np.float32, copy=False)
        torch_device = resolve_device(device)
        if self.method == "lk":
            flow = dense_lucas_kanade(first, second, self.lk_config, torch_device)
        elif self.method == "coarse_to_fine":
            flow = coarse_to_fine_flow(first, second, self.coarse_to_fine_config, torch_device)
        else:
            flow = learned_flow(self._model_on(torch_device), first, second)
        return flow.permute(1, 2, 0).float().cpu().numpy()
