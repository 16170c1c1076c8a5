"""Edge-aware first-order smoothness of a dense field (disparity, depth or flow)."""

from __future__ import annotations

import torch

from kestrel_core.losses._checks import check_image

__all__ = ["edge_aware_smoothness"]


def edge_aware_smoothness(field: torch.Tensor, image: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Mean edge-weighted first-order variation of ``field``.

    ``L = mean(|d_x f| * exp(-gamma |d_x I|)) + mean(|d_y f| * exp(-gamma |d_y I|))``
    where ``d_x`` and ``d_y`` are forward differences between neighbouring pixels, ``|d f|``
    is averaged over the channels of the field and ``|d I|`` over the channels of the
    image. Changes of the field are thus cheap where the image has an edge and expensive
    in flat regions.

    Args:
        field: ``(B, C, H, W)`` field, e.g. ``C = 1`` disparity or ``C = 2`` flow. For
            disparity, self-supervised depth training usually divides it by its mean
            first so the loss does not favour shrinking the scene; that is left to the
            caller.
        image: ``(B, 3, H, W)`` or ``(B, 1, H, W)`` image (in ``[0, 1]`` for ``gamma = 1``).
        gamma: edge sensitivity (> 0).

    Returns:
        0-dim tensor, differentiable with respect to ``field`` (and ``image``).
    """
    check_image(field, "field")
    check_image(image, "image")
    if image.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels, got {image.shape[1]}")
    if field.shape[0] != image.shape[0] or field.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"field {tuple(field.shape)} and image {tuple(image.shape)} differ in batch or size"
        )
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    field_dx = (field[..., :, 1:] - field[..., :, :-1]).abs().mean(dim=1, keepdim=True)
    field_dy = (field[..., 1:, :] - field[..., :-1, :]).abs().mean(dim=1, keepdim=True)
    image_dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=1, keepdim=True)
    image_dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(dim=1, keepdim=True)
    loss = field.new_zeros(())
    if field_dx.numel():
        loss = loss + (field_dx * torch.exp(-gamma * image_dx)).mean()
    if field_dy.numel():
        loss = loss + (field_dy * torch.exp(-gamma * image_dy)).mean()
    return loss
