"""Reusable scratch memory for the stereo pipeline."""

from __future__ import annotations

import torch

__all__ = ["Workspace"]


class Workspace:
    """Named scratch tensors kept between calls of the same size.

    SGM needs several ``(H, W, D)`` volumes per frame (for 741x500x128: 47 MB of uint8
    costs and 95 MB of int16 sums). Freshly allocated CPU memory is page-faulted in on first touch, which
    costs about as much as the aggregation of one path, so a node that processes a
    stream should create one ``Workspace`` and pass it to every call. Buffers are
    reallocated when the requested shape, dtype or device changes.

    Tensors handed out alias the workspace: they are overwritten by the next call that
    uses the same workspace. The pipeline never returns them to the caller. A workspace
    is not thread-safe; use one per thread.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str
    ) -> torch.Tensor:
        """An uninitialised tensor of ``shape``, reused when the previous one matches."""
        shape = tuple(int(s) for s in shape)
        device = _normalise(device)
        buf = self._buffers.get(name)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype or buf.device != device:
            self._buffers.pop(name, None)
            buf = None  # drop the old tensor before allocating its replacement
            buf = torch.empty(shape, dtype=dtype, device=device)
            self._buffers[name] = buf
        return buf

    def clear(self) -> None:
        """Release every buffer."""
        self._buffers.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(b.numel() * b.element_size() for b in self._buffers.values())


def _normalise(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device
