"""Torch-only augmentations: closed-form cases, value ranges, seeding and view counts."""

from __future__ import annotations

import pytest
import torch

from kestrel_core.features.augment import (MultiCropConfig, ViewConfig, augment_view,
                                           gaussian_blur, grayscale, multi_crop,
                                           random_resized_crop, solarize, two_views)


def _images(batch: int = 3, height: int = 24, width: int = 24) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))


def test_full_square_crop_is_the_identity_and_flip_mirrors() -> None:
    images = _images()
    generator = torch.Generator().manual_seed(1)
    same = random_resized_crop(images, 24, (1.0, 1.0), (1.0, 1.0), 0.0, generator)
    assert torch.allclose(same, images, atol=1e-5)
    flipped = random_resized_crop(images, 24, (1.0, 1.0), (1.0, 1.0), 1.0, generator)
    assert torch.allclose(flipped, images.flip(-1), atol=1e-5)


def test_half_scale_crop_of_a_ramp_covers_a_shorter_range() -> None:
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64).contiguous()
    crop = random_resized_crop(ramp, 32, (0.25, 0.25), (1.0, 1.0), 0.0,
                               torch.Generator().manual_seed(2))
    span = crop[0, 0, 0, -1] - crop[0, 0, 0, 0]
    # A quarter of the area is half the width: the ramp rises by about half its range.
    assert float(span) == pytest.approx(0.5, abs=0.05)


def test_gaussian_blur_keeps_constants_and_mean_and_smooths_noise() -> None:
    constant = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(constant, torch.tensor([0.5, 2.0])), constant)
    noise = _images(2, 32, 32)
    blurred = gaussian_blur(noise, torch.tensor([1.5, 1.5]))
    assert blurred.std() < 0.5 * noise.std()
    assert blurred.mean().item() == pytest.approx(noise.mean().item(), abs=0.01)


def test_grayscale_and_solarize_closed_form() -> None:
    pixel = torch.tensor([0.2, 0.6, 0.9]).view(1, 3, 1, 1)
    gray = grayscale(pixel)
    assert torch.allclose(gray, torch.full_like(pixel, 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 0.9))
    assert torch.allclose(solarize(pixel), torch.tensor([0.2, 0.4, 0.1]).view(1, 3, 1, 1))


def test_views_have_the_configured_size_and_range_and_follow_the_seed() -> None:
    images = _images(4, 30, 40)
    config = ViewConfig(size=16, blur_p=0.5, solarize_p=0.5)
    first = augment_view(images, config, torch.Generator().manual_seed(5))
    again = augment_view(images, config, torch.Generator().manual_seed(5))
    other = augment_view(images, config, torch.Generator().manual_seed(6))
    assert first.shape == (4, 3, 16, 16)
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    view_a, view_b = two_views(images, config, torch.Generator().manual_seed(5))
    assert view_a.shape == view_b.shape == (4, 3, 16, 16)
    assert not torch.allclose(view_a, view_b)


def test_multi_crop_gives_two_global_and_n_local_views() -> None:
    config = MultiCropConfig(global_size=20, local_size=10, n_local=3)
    global_views, local_views = multi_crop(_images(2, 32, 32), config,
                                           torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in global_views] == [(2, 3, 20, 20)] * 2
    assert [tuple(v.shape) for v in local_views] == [(2, 3, 10, 10)] * 3


def test_bad_configs_and_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="scale"):
        ViewConfig(scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="probability"):
        ViewConfig(blur_p=1.5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        augment_view(torch.rand(2, 1, 8, 8), ViewConfig(size=8), torch.Generator())
