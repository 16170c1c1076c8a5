"""Image inputs shared by every capability: type and shape checks, grey levels, scaling."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_gray", "gray_pair"]

# ITU-R BT.601 luma weights for R, G, B.
_LUMA = (0.299, 0.587, 0.114)


def to_gray(image: object, name: str, device: torch.device | None = None,
            ) -> tuple[torch.Tensor, float | None]:
    """One image as grey levels, unscaled.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (RGB) numpy array or torch
            tensor, dtype uint8, uint16 or floating point.
        name: what to call the image in error messages.
        device: where the result lives (None: where the input is).

    Returns:
        ``(gray, full_scale)``: ``(H, W)`` contiguous grey levels (float64 for float64
        input, float32 otherwise, never aliasing the input) and the full-scale value of
        an integer dtype (255 or 65535), or None for floating-point input.

    Raises:
        ValueError: unsupported type, dtype or shape, an empty image, or NaN/inf.
    """
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint16:
            array, full_scale = image.astype(np.float32), 65535.0
        elif image.dtype == np.uint8:
            array, full_scale = image, 255.0
        elif image.dtype in (np.float16, np.float32, np.float64):
            array = image if image.dtype.isnative else image.astype(image.dtype.newbyteorder("="))
            full_scale = None
        else:
            raise ValueError(f"{name} image dtype {image.dtype} is not supported; use uint8, uint16 or float")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(image, torch.Tensor):
        tensor = image.detach()
        if tensor.dtype == torch.uint8:
            full_scale = 255.0
        elif tensor.dtype == torch.uint16:
            tensor, full_scale = tensor.to(torch.float32), 65535.0
        elif tensor.is_floating_point():
            full_scale = None
        else:
            raise ValueError(f"{name} image dtype {tensor.dtype} is not supported; use uint8, uint16 or float")
    else:
        raise ValueError(f"{name} image must be a numpy array or a torch tensor, got {type(image).__name__}")
    if not (tensor.ndim == 2 or (tensor.ndim == 3 and tensor.shape[2] in (1, 3))):
        raise ValueError(f"{name} image must have shape (H, W), (H, W, 1) or (H, W, 3), got {tuple(tensor.shape)}")
    if tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise ValueError(f"{name} image is empty: shape {tuple(tensor.shape)}")

    dtype = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    source = tensor
    tensor = tensor.to(device=device if device is not None else tensor.device, dtype=dtype)
    if tensor.ndim == 3:
        if tensor.shape[2] == 3:
            tensor = tensor @ torch.tensor(_LUMA, dtype=dtype, device=tensor.device)
        else:
            tensor = tensor[..., 0]
    if full_scale is None and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} image contains NaN or inf")
    tensor = tensor.contiguous()
    if tensor.data_ptr() == source.data_ptr():
        tensor = tensor.clone()  # callers may scale the result in place
    return tensor, full_scale


def gray_pair(first: object, second: object, names: tuple[str, str] = ("first", "second"),
              device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images of the same size as grey levels in ``[0, 1]``.

    Integer images are divided by their dtype maximum. Floating-point images are taken
    to be in ``[0, 1]``, unless either exceeds 1.0, in which case both are taken to be
    on the 0-255 scale.

    Returns:
        ``(H, W)`` tensors: float64 when either input is float64, float32 otherwise.

    Raises:
        ValueError: as :func:`to_gray`, or a size mismatch (both sizes in the message).
    """
    a, scale_a = to_gray(first, names[0], device)
    b, scale_b = to_gray(second, names[1], device)
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} images differ in size: {names[0]} is "
            f"{a.shape[1]}x{a.shape[0]} and {names[1]} is {b.shape[1]}x{b.shape[0]} (width x height)"
        )
    if scale_a is None or scale_b is None:
        float_max = max(float(t.abs().max()) for t, s in ((a, scale_a), (b, scale_b)) if s is None)
        float_scale = 255.0 if float_max > 1.0 else 1.0
        scale_a = float_scale if scale_a is None else scale_a
        scale_b = float_scale if scale_b is None else scale_b
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    return a.div_(scale_a).to(dtype), b.div_(scale_b).to(dtype)
