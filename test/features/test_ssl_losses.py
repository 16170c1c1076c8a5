"""InfoNCE, NT-Xent and the DINO cross-entropy on cases with a closed-form value."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kestrel_core.features.objectives.dino import dino_loss, teacher_probabilities
from kestrel_core.losses.contrastive import info_nce, nt_xent

DTYPES = [torch.float32, torch.float64]


def _one_hot_rows(count: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.eye(dim, dtype=dtype)[:count]


@pytest.mark.parametrize("dtype", DTYPES)
def test_info_nce_with_orthogonal_negatives(dtype: torch.dtype) -> None:
    # Positive cosine 1, K negatives at cosine 0: loss = log(1 + K exp(-1/T)).
    temperature, queue_size = 0.2, 7
    query = _one_hot_rows(3, 8, dtype) * torch.tensor([[2.0], [0.5], [3.0]], dtype=dtype)
    negatives = torch.zeros(queue_size, 8, dtype=dtype)
    negatives[:, 7] = 1.0
    loss = info_nce(query, query.clone(), negatives, temperature)
    expected = math.log(1 + queue_size * math.exp(-1 / temperature))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_in_batch_matches_the_formula_on_random_embeddings() -> None:
    generator = torch.Generator().manual_seed(1)
    query, key = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    temperature = 0.5
    similarity = F.normalize(query, dim=1) @ F.normalize(key, dim=1).T / temperature
    expected = torch.stack([torch.logsumexp(similarity[i], 0) - similarity[i, i]
                            for i in range(5)]).mean()
    assert info_nce(query, key, None, temperature).item() == pytest.approx(expected.item(),
                                                                          rel=1e-5)


def test_info_nce_gradient_pulls_query_towards_key() -> None:
    query = torch.tensor([[1.0, 0.2, 0.0]], requires_grad=True)
    key = torch.tensor([[0.0, 1.0, 0.0]])
    info_nce(query, key, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).backward()
    step = -query.grad
    assert float(step[0, 1]) > 0  # towards the key
    assert float(step[0, 0]) < 0  # away from the negative it resembles


@pytest.mark.parametrize("dtype", DTYPES)
def test_nt_xent_with_identical_orthonormal_views(dtype: torch.dtype) -> None:
    # Each anchor: positive at cosine 1, 2B-2 negatives at cosine 0.
    batch, temperature = 4, 0.5
    views = _one_hot_rows(batch, 6, dtype)
    expected = math.log(1 + (2 * batch - 2) * math.exp(-1 / temperature))
    assert nt_xent(views, views.clone(), temperature).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_matches_the_formula_on_random_embeddings() -> None:
    generator = torch.Generator().manual_seed(2)
    first, second = torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator)
    temperature = 0.3
    both = F.normalize(torch.cat([first, second]), dim=1)
    similarity = both @ both.T / temperature
    terms = []
    for anchor in range(6):
        positive = (anchor + 3) % 6
        others = torch.cat([similarity[anchor, :anchor], similarity[anchor, anchor + 1:]])
        terms.append(torch.logsumexp(others, 0) - similarity[anchor, positive])
    expected = torch.stack(terms).mean()
    assert nt_xent(first, second, temperature).item() == pytest.approx(expected.item(), rel=1e-5)


def test_contrastive_losses_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        nt_xent(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        info_nce(torch.randn(3, 4, 1), torch.randn(3, 4, 1))
    with pytest.raises(ValueError, match="dimension"):
        info_nce(torch.randn(3, 4), torch.randn(3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(3, 4), torch.randn(3, 4), None, 0.0)


def test_dino_loss_of_uniform_outputs_is_log_k() -> None:
    # Zero logits: uniform teacher targets and student predictions, cross-entropy log K.
    classes, batch = 16, 3
    zeros = [torch.zeros(batch, classes) for _ in range(4)]
    loss = dino_loss(zeros, zeros[:2], torch.zeros(1, classes), 0.1, 0.04)
    assert loss.item() == pytest.approx(math.log(classes), rel=1e-6)


def test_dino_loss_pairs_every_crop_with_every_other_teacher_crop() -> None:
    generator = torch.Generator().manual_seed(3)
    student = [torch.randn(2, 5, generator=generator) for _ in range(3)]
    teacher = [torch.randn(2, 5, generator=generator) for _ in range(2)]
    center = torch.randn(1, 5, generator=generator)
    targets = [teacher_probabilities(t, center, 0.04) for t in teacher]
    log_probs = [F.log_softmax(s / 0.1, dim=-1) for s in student]
    pairs = [(0, 1), (0, 2), (1, 0), (1, 2)]  # (teacher crop, student crop), never a crop itself
    expected = sum(-(targets[t] * log_probs[s]).sum(-1).mean() for t, s in pairs) / len(pairs)
    assert dino_loss(student, teacher, center, 0.1, 0.04).item() == pytest.approx(
        expected.item(), rel=1e-5)


def test_teacher_centering_and_sharpening() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    # Centering removes a per-class offset; a lower temperature sharpens.
    assert torch.allclose(teacher_probabilities(logits + torch.tensor([[1.0, 5.0, -2.0]]),
                                                torch.tensor([[1.0, 5.0, -2.0]]), 0.5),
                          teacher_probabilities(logits, torch.zeros(1, 3), 0.5))
    sharp = teacher_probabilities(logits, torch.zeros(1, 3), 0.04)
    soft = teacher_probabilities(logits, torch.zeros(1, 3), 1.0)
    assert sharp[0, 0] > 0.99 > soft[0, 0]
    assert torch.allclose(soft, torch.softmax(logits, dim=-1))
