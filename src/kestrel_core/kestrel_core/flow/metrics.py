"""Optical-flow accuracy metrics (pure functions, no state)."""

from __future__ import annotations

import numpy as np

from kestrel_core.flow.layout import as_hw2

__all__ = ["flow_epe", "flow_outlier_rate", "endpoint_errors"]


def endpoint_errors(flow: object, gt: object, valid: object | None = None) -> np.ndarray:
    """Endpoint errors ``|flow - gt|`` at the evaluated pixels, as a 1-D float64 array.

    Args:
        flow: estimate, ``(H, W, 2)`` or ``(2, H, W)``, numpy or torch.
        gt: ground truth in either layout; non-finite entries mark unknown pixels.
        valid: optional ``(H, W)`` bool mask (numpy or torch) of pixels to evaluate; it
            is combined with the finiteness of ``gt``.

    Returns:
        The errors of the evaluated pixels in row-major order. A non-finite estimate at
        an evaluated pixel gives a NaN error: nothing is silently dropped.
    """
    return _evaluate(flow, gt, valid)[0]


def flow_epe(flow: object, gt: object, valid: object | None = None) -> float:
    """Average endpoint error in pixels over the evaluated pixels (see
    :func:`endpoint_errors`). NaN when no pixel is evaluated, or when the estimate is
    non-finite at an evaluated pixel."""
    errors = endpoint_errors(flow, gt, valid)
    return float(errors.mean()) if errors.size else float("nan")


def flow_outlier_rate(
    flow: object,
    gt: object,
    valid: object | None = None,
    threshold: float = 3.0,
    relative: float | None = None,
) -> float:
    """Fraction of evaluated pixels whose endpoint error exceeds ``threshold`` pixels.

    Args:
        flow, gt, valid: as in :func:`endpoint_errors`.
        threshold: absolute error bound in pixels (> 0).
        relative: optional relative bound; when given a pixel is an outlier only if its
            error also exceeds ``relative * |gt|`` (KITTI's Fl-all uses 3 px and 0.05).

    Returns:
        A fraction in ``[0, 1]``; non-finite estimates count as outliers. NaN when no
        pixel is evaluated.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if relative is not None and not relative >= 0:
        raise ValueError(f"relative must be >= 0, got {relative}")
    errors, magnitude = _evaluate(flow, gt, valid)
    if not errors.size:
        return float("nan")
    good = errors <= threshold  # False for NaN
    if relative is not None:
        good |= errors <= relative * magnitude
    return float(1.0 - good.mean())


def _evaluate(flow: object, gt: object, valid: object | None) -> tuple[np.ndarray, np.ndarray]:
    """Endpoint errors and ground-truth magnitudes at the evaluated pixels."""
    estimate = as_hw2(flow, "flow")
    truth = as_hw2(gt, "gt")
    if estimate.shape != truth.shape:
        raise ValueError(f"flow {estimate.shape[:2]} and gt {truth.shape[:2]} differ in size (H, W)")
    evaluated = np.isfinite(truth).all(axis=2)
    if valid is not None:
        mask = valid.detach().cpu().numpy() if hasattr(valid, "detach") else np.asarray(valid)
        if mask.shape != evaluated.shape:
            raise ValueError(f"valid must have shape {evaluated.shape}, got {mask.shape}")
        evaluated &= mask.astype(bool)
    picked_truth = truth[evaluated].astype(np.float64)
    diff = estimate[evaluated].astype(np.float64) - picked_truth
    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.hypot(diff[:, 0], diff[:, 1])
    errors[~np.isfinite(errors)] = np.nan
    return errors, np.hypot(picked_truth[:, 0], picked_truth[:, 1])
