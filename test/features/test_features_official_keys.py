"""Official DINO / DINOv2 key names map onto Kestrel's ViT (synthetic state dicts with the
official names and ViT-S shapes, since the official files are not shipped)."""

import pytest
import torch

from kestrel_core.features.official_keys import backbone_from_official, load_official_checkpoint, official_to_kestrel

DIM, HIDDEN = 384, 1536
DEPTH = 6  # official ViT-S has 12 blocks; 6 keeps the test fast with every tensor at its official shape


def official_vit_s(patch: int, grid: int, layer_scale: bool, chunked: bool = False) -> dict[str, torch.Tensor]:
    """A ViT-S state dict spelled as the official DINO (layer_scale=False) or DINOv2 repos do."""
    generator = torch.Generator().manual_seed(patch)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.02

    state = {
        "cls_token": rand(1, 1, DIM),
        "pos_embed": rand(1, 1 + grid * grid, DIM),
        "patch_embed.proj.weight": rand(DIM, 3, patch, patch),
        "patch_embed.proj.bias": rand(DIM),
        "norm.weight": 1 + rand(DIM),
        "norm.bias": rand(DIM),
    }
    if layer_scale:
        state["mask_token"] = rand(1, DIM)
    for index in range(DEPTH):
        prefix = f"blocks.{index // 3}.{index}." if chunked else f"blocks.{index}."
        block = {
            "norm1.weight": 1 + rand(DIM), "norm1.bias": rand(DIM),
            "attn.qkv.weight": rand(3 * DIM, DIM), "attn.qkv.bias": rand(3 * DIM),
            "attn.proj.weight": rand(DIM, DIM), "attn.proj.bias": rand(DIM),
            "norm2.weight": 1 + rand(DIM), "norm2.bias": rand(DIM),
            "mlp.fc1.weight": rand(HIDDEN, DIM), "mlp.fc1.bias": rand(HIDDEN),
            "mlp.fc2.weight": rand(DIM, HIDDEN), "mlp.fc2.bias": rand(DIM),
        }
        if layer_scale:
            block |= {"ls1.gamma": 1e-5 + rand(DIM), "ls2.gamma": 1e-5 + rand(DIM)}
        state |= {prefix + name: value for name, value in block.items()}
    return state


CASES = {
    "dino_vits16": dict(patch=16, grid=14, layer_scale=False),
    "dino_vits8": dict(patch=8, grid=28, layer_scale=False),
    "dinov2_vits14": dict(patch=14, grid=37, layer_scale=True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_official_weights_load_into_the_right_architecture(name):
    case = CASES[name]
    official = official_vit_s(**case)
    backbone = backbone_from_official(official)
    cfg = backbone.config
    assert (cfg.patch_size, cfg.pos_grid, cfg.depth, cfg.embed_dim, cfg.num_heads) == (case["patch"], case["grid"], DEPTH, 384, 6)
    assert (cfg.layer_scale is not None) == case["layer_scale"]
    ours = backbone.state_dict()
    assert torch.equal(ours["patch_embed.weight"], official["patch_embed.proj.weight"])
    assert torch.equal(ours["blocks.5.attn.qkv.weight"], official["blocks.5.attn.qkv.weight"])
    assert torch.equal(ours["pos_embed"], official["pos_embed"])
    if case["layer_scale"]:
        assert torch.equal(ours["blocks.3.ls2.gamma"], official["blocks.3.ls2.gamma"])
    with torch.no_grad():
        out = backbone.forward_features(torch.randn(1, 3, 3 * case["patch"], 5 * case["patch"]))
    assert out["patches"].shape == (1, 384, 3, 5)


def test_dino_training_checkpoint_and_dinov2_chunked_blocks_are_understood(tmp_path):
    teacher = {f"backbone.{key}": value for key, value in official_vit_s(16, 14, False).items()}
    teacher["head.mlp.0.weight"] = torch.zeros(2048, 384)
    path = tmp_path / "dino_checkpoint.pth"
    torch.save({"teacher": teacher, "epoch": 100}, path)
    assert load_official_checkpoint(path).config.patch_size == 16
    chunked = official_vit_s(14, 37, True, chunked=True)
    renamed = official_to_kestrel(chunked)
    assert "blocks.4.attn.qkv.weight" in renamed and "mask_token" not in renamed
    assert torch.equal(renamed["blocks.4.attn.qkv.weight"], chunked["blocks.1.4.attn.qkv.weight"])


def test_unsupported_or_incomplete_official_dicts_are_clear_errors():
    official = official_vit_s(14, 37, True)
    with pytest.raises(ValueError, match="register tokens"):
        official_to_kestrel({**official, "register_tokens": torch.zeros(1, 4, DIM)})
    del official["blocks.5.mlp.fc1.bias"]
    with pytest.raises(ValueError, match="blocks.5.mlp.fc1.bias"):
        backbone_from_official(official)
    with pytest.raises(ValueError, match="not a ViT state dict"):
        backbone_from_official({"conv1.weight": torch.zeros(64, 3, 7, 7)})
