"""Learned optical flow: a small coarse-to-fine network trained without labels.

- :class:`PyramidFlowNet` (feature pyramid, local correlation, iterative refinement);
- :func:`unsupervised_flow_loss` and :func:`crop_consistency_loss` for training, and
  :func:`random_affine_pairs` / :func:`random_layered_pairs` with
  :func:`multiscale_endpoint_loss` (known warps of real frames, with moving patches);
- :func:`consistent_teacher_flows` and :func:`teacher_endpoint_loss`: distillation from the
  classical coarse-to-fine flow, run on the same unlabeled pairs;
- :func:`load_flow_model` / :func:`save_flow_model` (checkpoints with their config) and
  :func:`learned_flow` for inference on arrays.
"""

from kestrel_core.flow.learned.checkpoint import (CHECKPOINT_FORMAT, default_flow_model_path,
                                                  load_flow_model, save_flow_model)
from kestrel_core.flow.learned.correlation import all_pairs_correlation, local_correlation
from kestrel_core.flow.learned.distillation import (TEACHER_CONFIG, consistent_teacher_flows,
                                                    teacher_endpoint_loss)
from kestrel_core.flow.learned.inference import frames_to_tensor, learned_flow
from kestrel_core.flow.learned.network import FlowNetConfig, PyramidFlowNet
from kestrel_core.flow.learned.synthetic import (AffinePairConfig, multiscale_endpoint_loss,
                                                 random_affine_pairs, random_layered_pairs)
from kestrel_core.flow.learned.unsupervised import (UnsupervisedFlowLossConfig,
                                                    crop_consistency_loss, unsupervised_flow_loss)

__all__ = [
    "AffinePairConfig", "CHECKPOINT_FORMAT", "TEACHER_CONFIG", "FlowNetConfig", "PyramidFlowNet", "UnsupervisedFlowLossConfig",
    "all_pairs_correlation", "consistent_teacher_flows", "crop_consistency_loss", "default_flow_model_path",
    "frames_to_tensor", "learned_flow", "load_flow_model", "local_correlation",
    "multiscale_endpoint_loss", "random_affine_pairs", "random_layered_pairs",
    "save_flow_model", "teacher_endpoint_loss", "unsupervised_flow_loss",
]
