"""The kit's vision models: captured attention equals the attention recomputed by hand, block
shapes and FLOP counts against closed forms, DTM with zero offsets equals strided merging."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attnkit
from attnkit.models.pyramid import (
    PyramidConfig,
    PyramidTransformer,
    count_flops,
    lit_tiny,
    pvt_tiny,
    stage_attentions,
    vit_tiny,
)
from attnkit.models.token_merging import DeformableTokenMerging, PatchMerging, deformable_merge
from attnkit.models.vision_blocks import (
    MLPBlock,
    PatchSelfAttention,
    TransformerBlock,
    keep_attention_weights,
)


def attention_by_hand(module: PatchSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) per head from the module's own qkv weights, one head at a time."""
    batch, tokens, dim = x.shape
    d = dim // module.heads
    qkv = x @ module.qkv.weight.T + module.qkv.bias  # (B, N, 3C)
    maps = []
    for h in range(module.heads):
        q = qkv[..., h * d : (h + 1) * d]
        k = qkv[..., dim + h * d : dim + (h + 1) * d]
        maps.append(torch.softmax(q @ k.transpose(1, 2) / d**0.5, dim=-1))
    return torch.stack(maps, dim=1)  # (B, H, N, N)


def test_eager_path_equals_sdpa_and_stores_weights():
    torch.manual_seed(0)
    attention = PatchSelfAttention(12, 3)
    x = torch.randn(2, 7, 12)
    fast = attention(x)
    assert attention.last_attention is None
    with keep_attention_weights(attention):
        eager = attention(x)
    torch.testing.assert_close(eager, fast, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention.last_attention, attention_by_hand(attention, x))
    assert attention.keep_weights is False  # switched back


def test_capture_of_lit_stages_equals_attention_by_hand():
    torch.manual_seed(1)
    model = lit_tiny(num_classes=3).eval()
    images = torch.randn(2, 1, 32, 32)
    captured = stage_attentions(model, images)
    assert sorted(captured) == [2, 3]  # LIT: attention only in stages 3-4
    # Recompute stage 3's input by hand and the first block's attention from it.
    x = images
    for s in range(2):
        tokens = model.stages[s](model.merges[s](x) + model.positions[s])
        h, w = model.config.grids[s]
        x = tokens.transpose(1, 2).reshape(2, -1, h, w)
    tokens = model.merges[2](x) + model.positions[2]
    block = model.stages[2][0]
    expected = attention_by_hand(block.attn, block.norm1(tokens))
    weights = captured[2].weights  # (L, B, H, T, T)
    assert weights.shape == (2, 2, 4, 16, 16)
    torch.testing.assert_close(weights[0], expected, atol=1e-5, rtol=1e-5)
    assert captured[3].weights.shape == (1, 2, 4, 4, 4)


def test_vit_capture_with_cls_and_attention_distance():
    torch.manual_seed(2)
    model = vit_tiny(num_classes=4).eval()
    images = torch.randn(3, 1, 32, 32)
    attn = stage_attentions(model, images)[0]
    assert attn.weights.shape == (4, 3, 4, 65, 65)  # 4 layers, CLS + 8 x 8 patches
    distance = attnkit.mean_attention_distance(attn, grid=(8, 8), patch_size=4, num_special=1)
    assert distance.shape == (4, 4)
    assert (distance > 0).all() and (distance < 4 * 8 * 2**0.5).all()


def test_huggingface_vit_capture_equals_attention_by_hand():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        attn_implementation="eager",
    )
    torch.manual_seed(3)
    model = transformers.ViTModel(config, add_pooling_layer=False).eval()
    pixels = torch.randn(2, 3, 16, 16)
    attn = attnkit.capture(model, pixel_values=pixels)
    assert attn.weights.shape == (2, 2, 2, 17, 17)  # CLS + 4 x 4 patches
    with torch.no_grad():
        hidden = model.embeddings(pixels)
        layer = model.layers[0]
        x = layer.layernorm_before(hidden)
        d = 16 // 2
        q = layer.attention.q_proj(x).reshape(2, 17, 2, d).transpose(1, 2)
        k = layer.attention.k_proj(x).reshape(2, 17, 2, d).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
    torch.testing.assert_close(attn.weights[0], expected, atol=1e-5, rtol=1e-5)
    distance = attnkit.mean_attention_distance(attn, grid=(4, 4), patch_size=4, num_special=1)
    assert distance.shape == (2, 2)


def test_block_shapes_and_flops_match_closed_forms():
    tokens, dim, heads, ratio = 10, 8, 2, 4
    x = torch.randn(1, tokens, dim)
    mlp_flops = 2 * tokens * (dim * ratio * dim) * 2  # two linears, 2 FLOPs per multiply-add
    attention_flops = (
        2 * tokens * dim * 3 * dim  # qkv
        + 2 * tokens * tokens * dim * 2  # q kᵀ and weights @ v, summed over heads
        + 2 * tokens * dim * dim  # output projection
    )
    mlp_block, attention_block = MLPBlock(dim, ratio), TransformerBlock(dim, heads, ratio)
    assert mlp_block(x).shape == attention_block(x).shape == (1, tokens, dim)
    assert count_flops(mlp_block, x) == mlp_flops
    assert count_flops(attention_block, x) == mlp_flops + attention_flops


def test_lit_saves_the_early_attention_flops():
    images = torch.zeros(1, 1, 32, 32)
    full, lit = pvt_tiny(), lit_tiny(merging="fixed")
    saved = 0
    for s in range(2):  # stages 1-2 drop their attention: qkv, scores, mixing, projection
        (h, w), dim = full.config.grids[s], full.config.dims[s]
        n = h * w
        saved += full.config.depths[s] * (2 * n * dim * 4 * dim + 4 * n * n * dim)
    assert count_flops(full, images) - count_flops(lit, images) == saved
    assert lit(images).shape == (1, 10)


def test_dtm_with_zero_offsets_equals_strided_merging():
    torch.manual_seed(4)
    x = torch.randn(2, 5, 8, 6, dtype=torch.float64)
    weight = torch.randn(7, 5, 2, 2, dtype=torch.float64)
    bias = torch.randn(7, dtype=torch.float64)
    zero = torch.zeros(2, 8, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(
        deformable_merge(x, zero, weight, bias, 2), F.conv2d(x, weight, bias, stride=2)
    )
    # The module: zero-initialised offsets, so it is the strided merge + BatchNorm + GELU.
    dtm = DeformableTokenMerging(5, 7).double().eval()
    merged = F.conv2d(x, dtm.weight, dtm.bias, stride=2)
    expected = dtm.act(dtm.norm(merged)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(dtm(x), expected)
    assert dtm.last_offsets.abs().max() == 0 and dtm.offset.lr_mult == 0.01


def test_dtm_offsets_move_the_samples_bilinearly():
    """An offset of (0, +1) on every tap reads each pixel's right-hand neighbour (zero past the edge)."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    weight = torch.zeros(1, 1, 2, 2)
    weight[0, 0, 0, 0] = 1.0  # keep only tap (0, 0)
    offsets = torch.zeros(1, 8, 2, 2)
    offsets[:, 1] = 1.0  # Δx of tap (0, 0)
    out = deformable_merge(x, offsets, weight, None, 2)
    torch.testing.assert_close(out, x[:, :, ::2, 1::2])
    offsets[:, 1] = 0.5  # half-way: the mean of the pixel and its neighbour
    out = deformable_merge(x, offsets, weight, None, 2)
    torch.testing.assert_close(out, (x[:, :, ::2, ::2] + x[:, :, ::2, 1::2]) / 2)


def test_offset_layer_trains_at_its_lower_learning_rate():
    from attnkit.train.trainer import TrainConfig, _make_optimizer

    model = lit_tiny(offset_lr_mult=0.1)
    optimizer = _make_optimizer(model, TrainConfig(lr=1e-3))
    rates = sorted({group["lr"] for group in optimizer.param_groups})
    assert rates == pytest.approx([1e-4, 1e-3])
    offset_params = {id(p) for m in model.merges[1:] for p in m.offset.parameters()}
    slow = next(g for g in optimizer.param_groups if g["lr"] < 1e-3)
    assert {id(p) for p in slow["params"]} <= offset_params


def test_bad_configurations_say_what_to_fix():
    with pytest.raises(ValueError, match="one entry per stage"):
        PyramidConfig(dims=(8, 16))
    with pytest.raises(ValueError, match="divisible"):
        PyramidConfig(image_size=20)
    with pytest.raises(ValueError, match="CLS token needs attention"):
        PyramidConfig(cls_token=True, attention=(True, True, False, False))
    assert isinstance(PyramidTransformer(PyramidConfig()).merges[1], PatchMerging)
