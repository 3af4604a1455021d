"""The layered attention graph of Abnar & Zuidema (2020), Fig. 1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.plots.figures import figure_with_axes, finish
from attnkit.plots.inputs import layer_matrices, real_positions, to_numpy

READABLE_TOKENS = 12  # up to this many tokens every edge is drawn
LONG_MIN_WEIGHT = 0.05  # longer inputs: edges below this weight are dropped ...
LONG_TOP_K = 3  # ... and each node keeps only its strongest incoming edges


def _edges(
    matrices: np.ndarray, min_weight: float, top_k: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Segments `(E, 2, 2)` and weights `(E,)` of the edges to draw.

    `matrices[l, i, j]` is query i attending key j, drawn from node (l, j) up to (l + 1, i).
    """
    layers, tokens, _ = matrices.shape
    keep = matrices > min_weight  # (L, T, T)
    if top_k is not None and top_k < tokens:
        kth = -np.sort(-matrices, axis=-1)[..., top_k - 1 : top_k]  # (L, T, 1) k-th largest
        keep &= matrices >= kth
    layer, query, key = np.nonzero(keep)
    starts = np.stack([key, layer], axis=1)  # (E, 2) as (x, y)
    ends = np.stack([query, layer + 1], axis=1)
    return np.stack([starts, ends], axis=1).astype(float), matrices[layer, query, key]


def _node_values(values: Any | None, shape: tuple[int, int], keep: np.ndarray | None) -> Any:
    """Node colours `(L + 1, T)` from `values` given for all nodes or the input layer `(T,)`."""
    if values is None:
        return None
    values = to_numpy(values)
    if keep is not None and values.shape[-1] == keep.size != shape[1]:
        values = values[..., keep]  # drop padding positions
    if values.ndim == 1 and values.shape[0] == shape[1]:
        return np.vstack([values, np.full((shape[0] - 1, shape[1]), np.nan)])
    if values.shape != shape:
        raise AttentionInputError(
            f"values must be (layers + 1, tokens) = {shape} or (tokens,) = ({shape[1]},), got "
            f"{values.shape}."
        )
    return values


def flow_graph(
    matrices: Attentions | Any,
    tokens: Sequence[str] | None = None,
    values: Any | None = None,
    *,
    example: int = 0,
    mask: Any | None = None,
    min_weight: float | None = None,
    top_k: int | None = None,
    ax: Axes | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Draw attention as a layered graph: one node per token per layer, edges between layers.

    Nodes of layer 0 are the input tokens; an edge from token j at layer l to token i at
    layer l + 1 has width and opacity proportional to `matrices[l, i, j]`. Weights are drawn
    as given: pass e.g. `0.5 * A + 0.5 * I` to include the residual connection.

    Edge cap: with at most 12 tokens every edge above `min_weight` (default 0) is drawn. For
    longer inputs the defaults become `min_weight=0.05` and `top_k=3` (each node keeps its 3
    strongest incoming edges), so the figure stays legible; pass them to override.

    Args:
        matrices: `(L, T, T)` per-layer matrices of one example, or anything
            `attention_heatmaps` takes (heads are averaged).
        tokens: labels of the input tokens (all positions or only the real ones).
        values: node colours, `(L + 1, T)` for every node or `(T,)` for the input layer
            (e.g. flow or rollout values).
        example: batch index; mask: `(T,)` real-token mask for arrays.
        ax: axes to draw on; save: path (.png/.svg/.pdf).
    """
    layer_maps, labels = layer_matrices(matrices, example, tokens, mask)  # (L, T, T)
    layers, length, _ = layer_maps.shape
    long_input = length > READABLE_TOKENS
    min_weight = (LONG_MIN_WEIGHT if long_input else 0.0) if min_weight is None else min_weight
    top_k = (LONG_TOP_K if long_input else None) if top_k is None else top_k
    keep = real_positions(matrices, example, mask)
    node_values = _node_values(values, (layers + 1, length), keep)

    size = (min(20.0, 0.7 * length + 1.5), min(16.0, 0.9 * (layers + 1) + 1.0))
    figure, axes = figure_with_axes(1, 1, size, ax)
    panel = axes[0, 0]
    segments, weights = _edges(layer_maps, min_weight, top_k)
    strength = weights / weights.max() if weights.size else weights  # (E,) in [0, 1]
    colours = np.tile([0.12, 0.32, 0.65, 0.0], (weights.size, 1))  # blue; opacity = weight
    colours[:, 3] = 0.08 + 0.92 * strength
    panel.add_collection(LineCollection(segments, linewidths=0.3 + 3.2 * strength, colors=colours))

    grid_x, grid_y = np.meshgrid(np.arange(length), np.arange(layers + 1))  # (L + 1, T)
    panel.scatter(grid_x.flat, grid_y.flat, s=60, c="white", edgecolors="black", zorder=3)
    if node_values is not None:
        valued = np.isfinite(node_values)  # the input layer alone may carry values
        nodes = panel.scatter(
            grid_x[valued],
            grid_y[valued],
            s=60,
            c=node_values[valued],
            cmap="viridis",
            edgecolors="black",
            zorder=4,
        )
        figure.colorbar(nodes, ax=panel, shrink=0.7, label="value")
    panel.set_xticks(range(length), labels, rotation=90)
    panel.set_yticks(
        range(layers + 1), ["input"] + [f"layer {layer + 1}" for layer in range(layers)]
    )
    panel.set_xlim(-0.5, length - 0.5)
    panel.set_ylim(-0.5, layers + 0.5)
    panel.tick_params(length=0)
    for spine in panel.spines.values():
        spine.set_visible(False)
    return finish(figure, save)
