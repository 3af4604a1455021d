"""attnkit.vision: mean attention distance against a brute-force loop, patch maps on grids."""

from __future__ import annotations

import math

import pytest
import torch

import attnkit
from attnkit.attentions import AttentionInputError, Attentions
from attnkit.vision import cls_patch_map, mean_attention_distance, patch_map


def brute_force_distance(weights, grid, patch_size, num_special):
    """The definition, one loop per index: mean over (b, q) of Σ_k α_qk/Σα · ‖pos_q − pos_k‖ · p."""
    layers, batch, heads, _, _ = weights.shape
    rows, cols = grid
    out = torch.zeros(layers, heads, dtype=torch.float64)
    for layer in range(layers):
        for head in range(heads):
            total = 0.0
            for b in range(batch):
                for q in range(rows * cols):
                    row = weights[layer, b, head, num_special + q, num_special:].double()
                    row = row / row.sum()
                    qr, qc = divmod(q, cols)
                    for k in range(rows * cols):
                        kr, kc = divmod(k, cols)
                        total += row[k].item() * math.hypot(qr - kr, qc - kc) * patch_size
            out[layer, head] = total / (batch * rows * cols)
    return out


def test_identity_attention_has_distance_zero():
    weights = torch.eye(1 + 6).expand(2, 3, 4, 7, 7).clone()  # (L, B, H, T, T)
    distance = mean_attention_distance(weights, grid=(2, 3), patch_size=16, num_special=1)
    assert distance.shape == (2, 4)
    assert torch.equal(distance, torch.zeros(2, 4))


@pytest.mark.parametrize("grid, num_special", [((3, 4), 0), ((2, 5), 1), ((4, 2), 2)])
def test_random_attention_matches_brute_force(grid, num_special):
    torch.manual_seed(0)
    tokens = num_special + grid[0] * grid[1]
    weights = torch.randn(2, 3, 2, tokens, tokens, dtype=torch.float64).mul(2).softmax(-1)
    ours = mean_attention_distance(
        Attentions(weights), grid=grid, patch_size=8, num_special=num_special
    )
    torch.testing.assert_close(ours, brute_force_distance(weights, grid, 8, num_special))


def test_special_tokens_are_neither_queries_nor_keys():
    """Changing what CLS attends to, and moving patch weight onto CLS, leave the distance alone."""
    torch.manual_seed(1)
    grid = (3, 3)
    weights = torch.randn(1, 2, 2, 10, 10, dtype=torch.float64).softmax(-1)
    base = mean_attention_distance(weights, grid=grid, patch_size=4, num_special=1)
    changed = weights.clone()
    changed[..., 0, :] = torch.softmax(torch.randn(10, dtype=torch.float64), -1)  # CLS row
    # Patch rows: scale the patch part, put the rest on CLS (renormalised patch weights unchanged).
    changed[..., 1:, 1:] *= 0.3
    changed[..., 1:, 0] = 1 - changed[..., 1:, 1:].sum(-1)
    torch.testing.assert_close(
        mean_attention_distance(changed, grid=grid, patch_size=4, num_special=1), base
    )


def test_uniform_attention_on_a_line_has_the_closed_form_distance():
    # 1 x 3 grid, uniform attention: distances from the ends 0, 1, 2 and from the middle 1, 0, 1.
    weights = torch.full((1, 1, 1, 3, 3), 1 / 3, dtype=torch.float64)
    expected = (3 + 2 + 3) / 3 / 3 * 10  # mean of per-query means, patch size 10
    distance = mean_attention_distance(weights, grid=(1, 3), patch_size=10)
    assert distance.item() == pytest.approx(expected)


def test_top_level_export_and_bad_inputs():
    weights = torch.eye(5).expand(1, 1, 1, 5, 5).clone()
    assert attnkit.mean_attention_distance is mean_attention_distance
    with pytest.raises(AttentionInputError, match="num_special"):
        mean_attention_distance(weights, grid=(2, 2), patch_size=1, num_special=0)
    with pytest.raises(AttentionInputError, match="grid must be"):
        mean_attention_distance(weights, grid=(4,), patch_size=1, num_special=1)
    with pytest.raises(AttentionInputError, match="patch_size"):
        mean_attention_distance(weights, grid=(2, 2), patch_size=0, num_special=1)
    only_cls = torch.zeros(1, 1, 1, 5, 5)
    only_cls[..., 0] = 1.0
    with pytest.raises(AttentionInputError, match="no weight to any patch"):
        mean_attention_distance(only_cls, grid=(2, 2), patch_size=1, num_special=1)
    padded = Attentions(weights, mask=torch.tensor([[1, 1, 1, 1, 0]]))
    with pytest.raises(AttentionInputError, match="padding"):
        mean_attention_distance(padded, grid=(2, 2), num_special=1)


def test_patch_maps_drop_special_tokens_in_row_major_order():
    scores = torch.arange(2 + 6, dtype=torch.float32)  # 2 special tokens, then a 2 x 3 grid
    grid_map = patch_map(scores, grid=(2, 3), num_special=2)
    assert torch.equal(grid_map, torch.tensor([[2.0, 3, 4], [5, 6, 7]]))
    matrices = torch.stack([scores * (i + 1) for i in range(8)])[None]  # (1, T, T), row i
    torch.testing.assert_close(
        cls_patch_map(matrices, grid=(2, 3), num_special=2, query=1)[0], grid_map * 2
    )
    with pytest.raises(AttentionInputError, match="square"):
        cls_patch_map(scores, grid=(2, 3), num_special=2)
    with pytest.raises(AttentionInputError, match="tokens"):
        patch_map(scores, grid=(3, 3), num_special=2)


def test_cls_map_of_rollout_on_the_grid():
    torch.manual_seed(2)
    attn = Attentions(torch.randn(3, 2, 2, 1 + 12, 1 + 12).softmax(-1))
    rolled = attnkit.rollout(attn)  # (L, B, T, T): rollout after each layer
    maps = cls_patch_map(rolled[-1], grid=(3, 4), num_special=1)
    assert maps.shape == (2, 3, 4)
    torch.testing.assert_close(maps[1, 2, 3], rolled[-1, 1, 0, 1 + 2 * 4 + 3])
