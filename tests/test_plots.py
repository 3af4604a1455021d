"""Tests for attnkit.plots: every function renders, saves, and hides padding."""

from __future__ import annotations

import struct

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.plots import (
    attention_heatmaps,
    cls_across_layers,
    compare_maps,
    flow_graph,
    save_figure,
)

TOKENS = [
    ["[CLS]", "the", "cat", "sat", "[SEP]", "[PAD]", "[PAD]"],
    ["[CLS]", "a", "dog", "ran", "far", "away", "[SEP]"],
]
REAL = TOKENS[0][:5]


@pytest.fixture(scope="module")
def attn() -> Attentions:
    torch.manual_seed(0)
    weights = torch.randn(3, 2, 4, 7, 7).softmax(-1)  # (L, B, H, T, T)
    mask = torch.tensor([[1] * 5 + [0] * 2, [1] * 7])
    return Attentions(weights, mask=mask, tokens=TOKENS)


@pytest.fixture(autouse=True)
def no_pyplot_figures_left():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "plots must not leave pyplot figures open"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return struct.unpack(">II", data[16:24])


def labels(axis_ticks) -> list[str]:
    return [tick.get_text() for tick in axis_ticks]


def all_tick_labels(figure: Figure) -> set[str]:
    found = set()
    for ax in figure.axes:
        found |= set(labels(ax.get_xticklabels())) | set(labels(ax.get_yticklabels()))
    return found


def test_attention_heatmaps_png_and_padding(attn, tmp_path):
    figure = attention_heatmaps(attn, example=0, save=tmp_path / "heads.png")
    width, height = png_size(tmp_path / "heads.png")
    assert 300 < width < 4000 and 300 < height < 4000
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == 3 * 4  # layers x heads
    assert all(ax.images[0].get_array().shape == (5, 5) for ax in panels)
    bottom_left = panels[-4]
    assert labels(bottom_left.get_xticklabels()) == REAL
    assert labels(bottom_left.get_yticklabels()) == REAL
    assert "[PAD]" not in all_tick_labels(figure)


def test_attention_heatmaps_selection_mean_and_svg(attn, tmp_path):
    figure = attention_heatmaps(attn, example=1, layers=[0, -1], heads=[2])
    panels = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in panels] == [
        "layer 1 · head 2",
        "layer 3 · head 2",
    ]  # 1-based labels
    assert panels[0].images[0].get_array().shape == (7, 7)  # example 1 has no padding

    attention_heatmaps(attn, heads="mean", save=tmp_path / "mean.svg")
    assert b"<svg" in (tmp_path / "mean.svg").read_bytes()[:2000]
    with pytest.raises(AttentionInputError, match="layers"):
        attention_heatmaps(attn, layers=[5])


def test_attention_heatmaps_arrays_with_tokens_and_mask(attn):
    per_example = attn.weights[:, 0].numpy()  # (L, H, T, T)
    figure = attention_heatmaps(
        per_example, tokens=TOKENS[0], mask=attn.mask[0], heads=[0], dims="LHTS"
    )
    assert "[PAD]" not in all_tick_labels(figure)
    with pytest.raises(AttentionInputError, match="tokens"):
        attention_heatmaps(per_example, tokens=["a", "b"], dims="LHTS")


def test_attention_heatmaps_cross_attention_drops_key_padding():
    weights = torch.rand(2, 1, 2, 3, 5).softmax(-1)  # (L, B, H, T, S)
    cross = Attentions(
        weights,
        mask=torch.tensor([[1, 1, 0]]),
        key_mask=torch.tensor([[1, 1, 1, 1, 0]]),
        tokens=[["<s>", "Le", "<pad>"]],
        kind="cross",
    )
    keys = ["<s>", "The", "cat", "</s>", "<pad>"]
    figure = attention_heatmaps(cross, key_tokens=keys, heads=[0])
    panel = [ax for ax in figure.axes if ax.images][-1]
    assert panel.images[0].get_array().shape == (2, 4)
    assert labels(panel.get_xticklabels()) == keys[:4]


def test_cls_across_layers(attn, tmp_path):
    figure = cls_across_layers(attn, example=0, save=tmp_path / "cls.png")
    width, height = png_size(tmp_path / "cls.png")
    assert 200 < width < 3000 and 150 < height < 2000
    panel = figure.axes[0]
    assert panel.images[0].get_array().shape == (3, 5)  # layers x real tokens
    assert labels(panel.get_xticklabels()) == REAL
    assert labels(panel.get_yticklabels()) == ["layer 1", "layer 2", "layer 3"]
    assert "[CLS]" in panel.get_title()
    expected = attn.weights[:, 0, :, 0, :5].mean(1).numpy()  # (L, T) CLS row, heads averaged
    np.testing.assert_allclose(panel.images[0].get_array(), expected, rtol=1e-6)

    matrices = attn.weights[:, 0].mean(1)  # (L, T, T) with padding
    from_matrix = cls_across_layers(matrices, tokens=TOKENS[0], mask=attn.mask[0], row=1)
    assert labels(from_matrix.axes[0].get_xticklabels()) == REAL
    rows = cls_across_layers(matrices[:, 0, :5].numpy(), tokens=REAL)  # (L, T) rows given
    assert rows.axes[0].images[0].get_array().shape == (3, 5)


def test_compare_maps(attn, tmp_path):
    raw = attn.weights[:, 0].mean(1)  # (L, T, T)
    rollout = [raw[0]]
    for layer in raw[1:]:
        rollout.append(layer @ rollout[-1])  # attention rollout without residual
    rollout = torch.stack(rollout)  # (L, T, T)
    flow = raw[:, 0]  # (L, T) rows already taken
    figure = compare_maps(
        {"raw": raw, "rollout": rollout, "flow": flow},
        TOKENS[0],
        mask=attn.mask[0],
        save=tmp_path / "compare.png",
    )
    png_size(tmp_path / "compare.png")
    panels = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["raw", "rollout", "flow"]
    assert all(labels(ax.get_xticklabels()) == REAL for ax in panels)
    with pytest.raises(AttentionInputError, match="at least one"):
        compare_maps({}, REAL)


def test_flow_graph_small(attn, tmp_path):
    values = torch.rand(4, 7)  # (L + 1, T) node values, padding included
    figure = flow_graph(attn, values=values, save=tmp_path / "graph.png")
    width, height = png_size(tmp_path / "graph.png")
    assert 200 < width < 3000 and 200 < height < 3000
    panel = figure.axes[0]
    assert labels(panel.get_xticklabels()) == REAL
    assert labels(panel.get_yticklabels()) == ["input", "layer 1", "layer 2", "layer 3"]
    edges = next(c for c in panel.collections if isinstance(c, LineCollection))
    assert len(edges.get_segments()) == 3 * 5 * 5  # every edge between real tokens


def test_flow_graph_caps_edges_for_long_inputs(tmp_path):
    torch.manual_seed(1)
    matrices = torch.randn(2, 20, 20).mul(3).softmax(-1)  # (L, T, T)
    figure = flow_graph(matrices, values=torch.rand(20), save=tmp_path / "long.png")
    png_size(tmp_path / "long.png")
    edges = next(c for c in figure.axes[0].collections if isinstance(c, LineCollection))
    assert 0 < len(edges.get_segments()) <= 2 * 20 * 3  # top 3 incoming edges per node
    everything = flow_graph(matrices, min_weight=0.0, top_k=20)
    drawn = next(c for c in everything.axes[0].collections if isinstance(c, LineCollection))
    assert len(drawn.get_segments()) == 2 * 20 * 20


def test_draw_into_given_axes_and_save_figure(attn, tmp_path):
    figure = Figure()
    ax = figure.subplots()
    assert cls_across_layers(attn, ax=ax) is figure
    axes = Figure().subplots(1, 2)
    compare_maps({"a": attn.weights[:, 0, 0], "b": attn.weights[:, 0, 1]}, ax=axes)
    with pytest.raises(ValueError, match="needs 12 axes"):
        attention_heatmaps(attn, ax=ax)
    with pytest.raises(ValueError, match="save="):
        cls_across_layers(attn, save=tmp_path / "figure.jpeg")

    paths = save_figure(figure, tmp_path / "figures", "cls", formats=("png", "svg"))
    assert [path.name for path in paths] == ["cls.png", "cls.svg"]
    assert all(path.stat().st_size > 0 for path in paths)

    pyplot_figure, pyplot_ax = plt.subplots()
    flow_graph(attn.weights[:, 0].mean(1), ax=pyplot_ax)
    save_figure(pyplot_figure, tmp_path / "figures", "graph")  # closes the pyplot figure


def test_show_figure_saves_and_needs_a_caption(attn, tmp_path):
    from attnkit.plots import show_figure

    figure = cls_across_layers(attn, example=0)
    assert show_figure(figure, tmp_path, "cls", caption="CLS attention by layer.") is None
    assert (tmp_path / "cls.png").stat().st_size > 0
    with pytest.raises(ValueError, match="needs a caption"):
        show_figure(cls_across_layers(attn, example=0), tmp_path, "bare", caption=" ")
    assert not (tmp_path / "bare.png").exists()
