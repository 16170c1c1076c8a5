"""Losses shared by the self-supervised trainers (stereo, flow, depth).

* :func:`ssim` - structural similarity map with local box-window statistics.
* :func:`photometric_loss` / :func:`photometric_error` - the SSIM + L1 appearance error.
* :func:`edge_aware_smoothness` - first-order smoothness weighted by image edges.

All take ``(B, C, H, W)`` floating-point tensors on any device and are differentiable.
"""

from kestrel_core.losses.photometric import photometric_error, photometric_loss
from kestrel_core.losses.smoothness import edge_aware_smoothness
from kestrel_core.losses.ssim import ssim

__all__ = ["ssim", "photometric_error", "photometric_loss", "edge_aware_smoothness"]
