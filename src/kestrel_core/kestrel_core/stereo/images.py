"""Input checking and conversion of a rectified stereo pair to grey-level tensors."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["prepare_pair"]

# ITU-R BT.601 luma weights for R, G, B.
_LUMA = (0.299, 0.587, 0.114)
_INTEGER_MAX = {torch.uint8: 255.0, torch.uint16: 65535.0}


def prepare_pair(left: object, right: object, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a rectified pair and convert it to grey levels on ``device``.

    Args:
        left, right: ``(H, W)`` grey, ``(H, W, 1)`` or ``(H, W, 3)`` RGB images as numpy
            arrays or torch tensors (any device), dtype uint8, uint16 or floating point,
            both of the same dtype. Integer images are scaled by ``255 / dtype_max``;
            floating-point images are taken to be in ``[0, 1]``, unless the larger
            maximum of the two exceeds 1.0, in which case both are taken to be on the
            0-255 scale already.
        device: where the result lives.

    Returns:
        ``(gray_left, gray_right)``, each ``(H, W)`` float32 on a 0-255 scale.

    Raises:
        ValueError: unsupported type, shape or dtype, non-finite values, or a size
            mismatch between left and right (both sizes are in the message).
    """
    lt, l_dtype = _as_tensor(left, "left")
    rt, r_dtype = _as_tensor(right, "right")
    if lt.shape[:2] != rt.shape[:2]:
        raise ValueError(
            f"left and right images differ in size: left is {lt.shape[1]}x{lt.shape[0]} "
            f"and right is {rt.shape[1]}x{rt.shape[0]} (width x height)"
        )
    if l_dtype != r_dtype:
        raise ValueError(f"left and right images differ in dtype: {l_dtype} vs {r_dtype}")
    gl = _gray(lt.to(device))
    gr = _gray(rt.to(device))
    if l_dtype in _INTEGER_MAX:
        scale = 255.0 / _INTEGER_MAX[l_dtype]
    else:
        if not (bool(torch.isfinite(gl).all()) and bool(torch.isfinite(gr).all())):
            raise ValueError("stereo images contain NaN or inf")
        both_max = float(torch.maximum(gl.abs().max(), gr.abs().max()))
        scale = 1.0 if both_max > 1.0 else 255.0
    if scale != 1.0:
        gl.mul_(scale)
        gr.mul_(scale)
    return gl, gr


def _as_tensor(image: object, name: str) -> tuple[torch.Tensor, torch.dtype]:
    """Wrap ``image`` as a tensor (no copy where possible) and report its pixel dtype."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint16:
            tensor, dtype = torch.from_numpy(image.astype(np.int32)), torch.uint16
        elif image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating):
            array = image if image.dtype.isnative else image.astype(image.dtype.newbyteorder("="))
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            dtype = tensor.dtype
        else:
            raise ValueError(f"{name} image dtype {image.dtype} is not supported; use uint8, uint16 or float")
    elif isinstance(image, torch.Tensor):
        tensor, dtype = image.detach(), image.dtype
        if not (dtype in _INTEGER_MAX or dtype.is_floating_point):
            raise ValueError(f"{name} image dtype {dtype} is not supported; use uint8, uint16 or float")
    else:
        raise ValueError(f"{name} image must be a numpy array or a torch tensor, got {type(image).__name__}")
    if not (tensor.ndim == 2 or (tensor.ndim == 3 and tensor.shape[2] in (1, 3))):
        raise ValueError(
            f"{name} image must have shape (H, W), (H, W, 1) or (H, W, 3), got {tuple(tensor.shape)}"
        )
    if tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise ValueError(f"{name} image is empty: shape {tuple(tensor.shape)}")
    return tensor, dtype


def _gray(image: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W)`` contiguous float32 grey, never aliasing
    the input (it is scaled in place afterwards)."""
    if image.dtype == torch.uint16:
        image = image.to(torch.int32)
    if image.ndim == 3 and image.shape[2] == 3:
        weights = torch.tensor(_LUMA, dtype=torch.float32, device=image.device)
        return (image.to(torch.float32) @ weights).contiguous()
    if image.ndim == 3:
        image = image[..., 0]
    return image.to(torch.float32, copy=True).contiguous()
