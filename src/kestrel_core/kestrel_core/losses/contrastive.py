"""Contrastive losses for self-supervised feature learning.

* :func:`info_nce` - one positive per query against a bank of negatives (MoCo).
* :func:`nt_xent` - the normalized temperature-scaled cross-entropy of SimCLR, where every
  other sample of the two-view batch is a negative.

Embeddings are ``(B, D)`` floating-point tensors; both losses L2-normalize them first, so the
logits are cosine similarities divided by the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_embeddings(tensor: object, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(tensor).__name__}")
    if tensor.ndim != 2 or not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point (B, D) tensor, "
                         f"got {tensor.dtype} {tuple(tensor.shape)}")
    return tensor


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor | None = None,
             temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE: each query must pick its own key out of itself plus the negatives.

    Args:
        query: ``(B, D)`` embeddings of one view.
        key: ``(B, D)`` embeddings of the other view; row ``i`` is the positive of query ``i``.
        negatives: ``(K, D)`` negatives shared by every query (MoCo's queue). None uses the
            other rows of ``key`` as negatives instead (in-batch negatives).
        temperature: softmax temperature.

    Returns:
        Scalar mean cross-entropy; ``log(1 + K)`` when every similarity is equal.
    """
    query, key = _check_embeddings(query, "query"), _check_embeddings(key, "key")
    if query.shape != key.shape:
        raise ValueError(f"query and key differ in shape: {tuple(query.shape)} vs "
                         f"{tuple(key.shape)}")
    _check_temperature(temperature)
    query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    if negatives is None:
        logits = query @ key.T  # the diagonal holds the positives
        target = torch.arange(query.shape[0], device=query.device)
    else:
        negatives = _check_embeddings(negatives, "negatives")
        if negatives.shape[1] != query.shape[1]:
            raise ValueError(f"negatives have dimension {negatives.shape[1]}, queries "
                             f"{query.shape[1]}")
        positive = (query * key).sum(dim=1, keepdim=True)
        logits = torch.cat([positive, query @ F.normalize(negatives, dim=1).T], dim=1)
        target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits / temperature, target)


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent over ``2B`` samples: sample ``i`` of one view is the positive of sample ``i`` of
    the other; the remaining ``2B - 2`` samples are its negatives.

    Args:
        first: ``(B, D)`` embeddings of the first view.
        second: ``(B, D)`` embeddings of the second view.
        temperature: softmax temperature.

    Returns:
        Scalar mean cross-entropy over all ``2B`` anchors; ``log(2B - 1)`` when every
        similarity is equal.
    """
    first, second = _check_embeddings(first, "first"), _check_embeddings(second, "second")
    if first.shape != second.shape:
        raise ValueError(f"the two views differ in shape: {tuple(first.shape)} vs "
                         f"{tuple(second.shape)}")
    if first.shape[0] < 2:
        raise ValueError("nt_xent needs a batch of at least 2 samples per view")
    _check_temperature(temperature)
    batch = first.shape[0]
    both = F.normalize(torch.cat([first, second]), dim=1)
    logits = both @ both.T / temperature
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=both.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    index = torch.arange(batch, device=both.device)
    target = torch.cat([index + batch, index])
    return F.cross_entropy(logits, target)
