"""Lucas-Kanade with an edge-aware smoothness term: a combined local-global refinement.

On one pyramid level, each warping step linearises brightness constancy as Lucas-Kanade
does (:func:`~kestrel_core.flow.lucas_kanade.refine_level`): with ``G`` the
window-averaged structure tensor and ``b = <grad I r>`` its right-hand side, the data
term of pixel ``p`` is ``w_p^T G_p w_p - 2 b_p^T w_p``. A smoothness term
``lambda sum_q c_pq |w_p - w_q|^2`` over the 4 neighbours ``q``, with edge-aware weights
``c_pq = exp(-|I(p) - I(q)| / sigma)``, is added (Bruhn, Weickert and Schnoerr's
combined local-global method, 2005, with image-driven weights). Its minimiser satisfies,
for every pixel,

    (G_p + lambda C_p) w_p = b_p + lambda sum_q c_pq w_q,      C_p = sum_q c_pq,

which Jacobi iterations solve with one closed-form 2x2 inverse per pixel (computed once
per level). Untextured pixels, where Lucas-Kanade alone is undetermined, take the flow of
similar-looking neighbours instead of keeping a stale one; textured pixels follow their
data.
"""

from __future__ import annotations

import torch

from kestrel_core.flow.filling import neighbour_weights
from kestrel_core.flow.filters import box_mean
from kestrel_core.flow.lucas_kanade import LevelWarper, LKConfig, image_gradients

__all__ = ["smooth_refine_level"]


def smooth_refine_level(
    i1: torch.Tensor,
    i2: torch.Tensor,
    flow: torch.Tensor,
    lk: LKConfig,
    warps: int,
    smoothness: float,
    edge_sigma: float,
    jacobi_steps: int,
) -> torch.Tensor:
    """Refine a flow on one pyramid level by the combined local-global scheme above.

    Args:
        i1, i2: ``(1, 1, h, w)`` grey images of the level, values in ``[0, 1]``.
        flow: ``(1, 2, h, w)`` starting flow in pixels of the level.
        lk: window, gradient and interpolation of the data term.
        warps: warping (re-linearisation) steps (>= 1).
        smoothness: ``lambda`` (> 0), in the units of the structure tensor (squared grey
            levels in ``[0, 1]`` per squared pixel).
        edge_sigma: grey-level difference at which a neighbour weight drops to ``1/e``.
        jacobi_steps: Jacobi iterations per warping step (>= 1).

    Returns:
        ``(1, 2, h, w)`` refined flow.
    """
    grad = torch.cat(image_gradients(i1, lk.gradient), dim=1)  # (1, 2, h, w)
    ix, iy = grad[:, 0:1], grad[:, 1:2]
    tensor = box_mean(torch.cat((ix * ix, ix * iy, iy * iy), dim=1), lk.window)
    weights = neighbour_weights(i1, edge_sigma)
    g_a, b, g_c = tensor[:, 0:1], tensor[:, 1:2], tensor[:, 2:3]
    coupling = smoothness * weights.total
    a, c = g_a + coupling, g_c + coupling
    # det(G + lambda C I) = det G + lambda C trace G + (lambda C)^2 > 0; det G >= 0 in exact
    # arithmetic (G is an average of outer products) but may round to a tiny negative
    det = (g_a * g_c - b * b).clamp_min(0.0) + coupling * (g_a + g_c) + coupling * coupling
    inv_det = 1.0 / det
    m_xx, m_xy, m_yy = c * inv_det, -b * inv_det, a * inv_det
    warper = LevelWarper(i2, lk.interpolation)
    for _ in range(warps):
        warped, valid = warper(flow)
        residual = (grad * flow).sum(dim=1, keepdim=True) - (warped - i1) * valid
        rhs = box_mean(grad * residual, lk.window)
        for _ in range(jacobi_steps):
            total = rhs + smoothness * weights.weighted_sum(flow)
            bx, by = total[:, 0:1], total[:, 1:2]
            flow = torch.cat((m_xx * bx + m_xy * by, m_xy * bx + m_yy * by), dim=1)
    return flow
