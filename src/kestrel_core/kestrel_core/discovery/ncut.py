"""One normalized cut of a patch graph (Shi & Malik 2000), as TokenCut and MaskCut use it.

Graph. The nodes are the patch tokens of one image; the edge weight is the cosine
similarity of their attention keys, binarised at ``tau``::

    W_ij = 1    if cos(K_i, K_j) > tau
    W_ij = eps  otherwise                     (eps > 0 keeps the graph connected)

Relaxation. The second-smallest generalized eigenvector of ``(D - W) y = lambda D y``
(``D = diag(W 1)``) is the relaxed minimum normalized cut. With ``z = D^(1/2) y`` it is the
second-*largest* eigenvector of the symmetric ``A = D^(-1/2) W D^(-1/2)``, ``lambda = 1 - mu``.
That is solved iteratively and never with a dense ``eigh`` on a large token count:
``scipy.sparse.linalg.eigsh`` (Lanczos) for CPU tensors, ``torch.lobpcg`` for CUDA
tensors, so the matrix never leaves the device. Below :data:`DENSE_LIMIT` tokens a dense
solve is cheaper and is used.

Bipartition. Tokens whose ``y`` is above the split value (the mean of ``y``, or zero) form
one side. The foreground is the side holding the token of largest ``|y|`` (TokenCut's
rule: the most "extreme" token belongs to the salient object), flipped when that side holds
more than half of the grid-border tokens (the background usually surrounds the object).
Only the largest 4-connected component of the foreground on the token grid is kept
(``scipy.ndimage.label``).

No cut. When no active affinity falls below ``tau`` (e.g. identical keys from a constant
image) or the relaxed cut value ``lambda_2`` exceeds ``max_cut_value``, there is no
meaningful partition and :func:`normalized_cut` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

__all__ = ["NCutConfig", "NCut", "key_affinity", "spectral_embedding", "bipartition", "normalized_cut"]

# Token counts up to this use a dense symmetric solve (cheap and exact at that size).
DENSE_LIMIT = 64
_SPLITS = ("mean", "zero")


@dataclass(frozen=True)
class NCutConfig:
    """Settings of one normalized cut.

    Attributes:
        tau: cosine-similarity threshold of the binarised affinity (MaskCut uses 0.15,
            TokenCut 0.2).
        eps: weight of the edges below ``tau``; must be > 0 and < 1.
        split: ``"mean"`` (split ``y`` at its mean) or ``"zero"``.
        max_cut_value: largest relaxed cut value ``lambda_2`` in ``[0, 1]`` still taken as
            a cut; above it the graph has no clear partition.
    """

    tau: float = 0.15
    eps: float = 1e-5
    split: str = "mean"
    max_cut_value: float = 0.95

    def __post_init__(self) -> None:
        if not -1.0 <= self.tau < 1.0:
            raise ValueError(f"tau must be in [-1, 1), got {self.tau}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")
        if self.split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {self.split!r}")
        if not 0.0 < self.max_cut_value <= 1.0:
            raise ValueError(f"max_cut_value must be in (0, 1], got {self.max_cut_value}")


@dataclass(frozen=True)
class NCut:
    """Result of :func:`normalized_cut`.

    Attributes:
        mask: ``(h, w)`` bool foreground tokens (largest connected component).
        eigenvector: ``(h, w)`` float64 generalized eigenvector ``y`` (0 at inactive
            tokens), oriented so that the foreground lies above the active mean.
        cut_value: ``lambda_2``, the relaxed normalized-cut value (0 = perfect cut).
        eigengap: ``lambda_3 - lambda_2``; large when the bipartition is unambiguous.
    """

    mask: np.ndarray
    eigenvector: np.ndarray
    cut_value: float
    eigengap: float


def key_affinity(keys: torch.Tensor, tau: float, eps: float) -> torch.Tensor:
    """Binarised cosine affinity ``(N, N)`` of keys ``(N, D)`` (same dtype and device)."""
    if keys.ndim != 2 or keys.shape[0] < 1:
        raise ValueError(f"keys must be (N, D) with N >= 1, got {tuple(keys.shape)}")
    unit = F.normalize(keys.float(), dim=1)
    similarity = unit @ unit.T
    return torch.where(similarity > tau, torch.ones_like(similarity), torch.full_like(similarity, eps))


def spectral_embedding(affinity: torch.Tensor, count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Smallest ``count`` generalized eigenpairs of ``(D - W) y = lambda D y``.

    Args:
        affinity: ``(N, N)`` symmetric non-negative ``W`` with positive row sums, on any
            device (CPU: Lanczos; CUDA: LOBPCG on the device; N <= DENSE_LIMIT: dense).
        count: number of eigenpairs, at least 2 and below N.

    Returns:
        ``(lambdas (count,), vectors (N, count))`` float64 numpy, ascending ``lambda``;
        each column is a generalized eigenvector ``y`` scaled to unit D-norm.
    """
    n = affinity.shape[0]
    if affinity.shape != (n, n) or not 2 <= count < n:
        raise ValueError(f"need an (N, N) affinity with 2 <= count < N, got {tuple(affinity.shape)}, {count}")
    degree = affinity.sum(dim=1)
    inv_sqrt = degree.rsqrt()
    normalized = affinity * inv_sqrt[:, None] * inv_sqrt[None, :]
    if n <= DENSE_LIMIT:
        mu, z = np.linalg.eigh(normalized.double().cpu().numpy())
        mu, z = mu[::-1][:count], z[:, ::-1][:, :count]
    elif normalized.device.type == "cpu":
        start = degree.sqrt().numpy()
        mu, z = scipy.sparse.linalg.eigsh(normalized.numpy(), k=count, which="LA", v0=start, tol=1e-5)
        order = np.argsort(mu)[::-1]
        mu, z = mu[order], z[:, order]
    else:
        generator = torch.Generator(device=normalized.device).manual_seed(0)
        start = torch.randn(n, count, device=normalized.device, dtype=normalized.dtype, generator=generator)
        start[:, 0] = degree.sqrt()
        mu_t, z_t = torch.lobpcg(normalized, k=count, X=start, largest=True, tol=1e-6, niter=200)
        mu, z = mu_t.double().cpu().numpy(), z_t.double().cpu().numpy()
        order = np.argsort(mu)[::-1]
        mu, z = mu[order], z[:, order]
    vectors = z * inv_sqrt.double().cpu().numpy()[:, None]
    return 1.0 - mu, vectors


def bipartition(vector: np.ndarray, active: np.ndarray, split: str = "mean") -> np.ndarray:
    """Foreground side of a generalized eigenvector on the token grid.

    Args:
        vector: ``(h, w)`` eigenvector values (ignored where inactive).
        active: ``(h, w)`` bool tokens taking part in the cut.
        split: ``"mean"`` or ``"zero"`` threshold.

    Returns:
        ``(h, w)`` bool: the largest 4-connected component of the foreground side (see the
        module docstring for the side rule); all False when nothing remains.
    """
    values = vector[active]
    threshold = float(values.mean()) if split == "mean" else 0.0
    upper = active & (vector > threshold)
    lower = active & ~upper
    seed = np.unravel_index(np.argmax(np.where(active, np.abs(vector), -np.inf)), vector.shape)
    foreground = upper if upper[seed] else lower
    border = np.zeros_like(active)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    border &= active
    if border.any() and (foreground & border).sum() * 2 > border.sum():
        foreground = active & ~foreground
    labels, count = scipy.ndimage.label(foreground)
    if count == 0:
        return foreground
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def normalized_cut(keys: torch.Tensor, grid: tuple[int, int], config: NCutConfig = NCutConfig(),
                   active: np.ndarray | None = None) -> NCut | None:
    """The foreground of the minimum normalized cut of a token graph.

    Args:
        keys: ``(N, D)`` patch keys (or features), ``N = h * w`` in row-major grid order,
            on any device.
        grid: ``(h, w)`` token grid.
        config: affinity threshold, split and acceptance.
        active: optional ``(h, w)`` bool tokens taking part (others are left out of the
            graph, e.g. earlier objects); default all.

    Returns:
        An :class:`NCut`, or None when there is no cut (fewer than 4 active tokens, no
        affinity below ``tau``, or ``lambda_2 > max_cut_value``).
    """
    h, w = grid
    if keys.ndim != 2 or keys.shape[0] != h * w:
        raise ValueError(f"keys must be (h*w, D) = ({h * w}, D), got {tuple(keys.shape)}")
    active = np.ones((h, w), bool) if active is None else np.asarray(active, bool)
    if active.shape != (h, w):
        raise ValueError(f"active must be {(h, w)}, got {active.shape}")
    index = np.flatnonzero(active)
    if index.size < 4:
        return None
    affinity = key_affinity(keys[torch.as_tensor(index, device=keys.device)], config.tau, config.eps)
    if not bool((affinity < 1).any()):
        return None
    lambdas, vectors = spectral_embedding(affinity, count=3)
    cut_value = float(lambdas[1])
    if cut_value > config.max_cut_value:
        return None
    vector = np.zeros(h * w)
    vector[index] = vectors[:, 1]
    vector = vector.reshape(h, w)
    mask = bipartition(vector, active, config.split)
    if not mask.any():
        return None
    if vector[mask].mean() < vector[active].mean():
        vector = -vector
    return NCut(mask, vector, cut_value, float(lambdas[2] - lambdas[1]))
