"""Plots name the dimensions of 4-D arrays, use a diverging map for signed scores, and shade
tokens by score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnkit
from attnkit.attentions import AttentionInputError, Attentions
from attnkit.plots import (
    attention_heatmaps,
    cls_across_layers,
    compare_maps,
    token_scores,
)

TOKENS = [["[CLS]", "a", "b", "c", "[SEP]"], ["[CLS]", "d", "e", "[SEP]", "[PAD]"]]


@pytest.fixture(scope="module")
def attn() -> Attentions:
    torch.manual_seed(0)
    weights = torch.randn(3, 2, 4, 5, 5).softmax(-1)  # (L, B, H, T, T)
    return Attentions(weights, mask=torch.tensor([[1] * 5, [1] * 4 + [0]]), tokens=TOKENS)


def test_rollout_batch_is_read_with_named_dims(attn):
    rolled = attnkit.rollout(attn)  # (L, B, T, T)
    figure = cls_across_layers(rolled, example=1, dims="LBTS", tokens=TOKENS[1], mask=attn.mask[1])
    shown = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, rolled[:, 1, 0, :4].numpy(), rtol=1e-6)  # (L, T) CLS rows
    with pytest.raises(AttentionInputError, match="is ambiguous.*dims="):
        cls_across_layers(rolled, tokens=TOKENS[0])
    with pytest.raises(AttentionInputError, match="dims="):
        attention_heatmaps(rolled, dims="LT")
    one_layer = attn.weights[0].numpy()  # (B, H, T, T)
    grid = attention_heatmaps(one_layer, example=0, dims="BHTS", tokens=TOKENS[0])
    assert len([ax for ax in grid.axes if ax.images]) == 4  # one layer, four heads


def test_signed_scores_get_a_diverging_map_centred_on_zero(attn):
    signed = torch.randn(3, 5)  # (L, T) e.g. signed gradient rows
    figure = compare_maps({"signed": signed, "weights": signed.abs()}, TOKENS[0])
    images = [ax.images[0] for ax in figure.axes if ax.images]
    low, high = images[0].get_clim()
    assert images[0].get_cmap().name == "RdBu_r" and low == -high and high > 0
    assert images[1].get_cmap().name == "Blues" and images[1].get_clim()[0] == 0


def test_token_scores_shades_each_token(tmp_path):
    tokens = ["[CLS]", "keys", "cabinet", "[SEP]"]
    figure = token_scores(
        {"gradient": [0.0, 2.0, -1.0, 0.0], "rollout": [0.1, 0.3, 0.5, 0.1]},
        tokens,
        save=tmp_path / "tokens.png",
    )
    assert (tmp_path / "tokens.png").stat().st_size > 1000
    boxes = {t.get_text(): t.get_bbox_patch().get_facecolor() for t in figure.axes[0].texts
             if t.get_bbox_patch() is not None and t.get_position()[1] == 0}  # fmt: skip
    red, blue = boxes["keys"], boxes["cabinet"]
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    with pytest.raises(AttentionInputError, match="4 tokens"):
        token_scores({"gradient": [1.0, 2.0]}, tokens)
