"""Heatmaps: per-layer/head attention grids, a token's row across layers, method comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.plots.figures import figure_with_axes, finish
from attnkit.plots.inputs import example_maps, layer_rows

CMAP = "Blues"  # weights and other non-negative scores
DIVERGING = "RdBu_r"  # signed scores: red raises, blue lowers, white is 0


def _panel_inches(tokens: int) -> float:
    # Grows with the sequence so labels stay legible, within bounds that keep grids compact.
    return float(np.clip(0.22 * tokens + 0.6, 1.6, 4.0))


def _draw_map(
    panel: Axes,
    matrix: np.ndarray,
    x_labels: list[str] | None,
    y_labels: list[str] | None,
    vmax: float | None = None,
) -> AxesImage:
    """One heatmap cell per entry of `matrix`, labels on the ticks (None hides them)."""
    # imshow, not seaborn.heatmap: seaborn measures every tick label while drawing, which
    # took over 15 s for a 6 x 12 head grid against about 2 s here.
    if matrix.size and float(np.nanmin(matrix)) < 0:  # signed: symmetric diverging scale
        limit = float(np.nanmax(np.abs(matrix))) if vmax is None else vmax
        image = panel.imshow(
            matrix, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest"
        )
    else:
        image = panel.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
    rows, cols = matrix.shape
    if x_labels is None:
        panel.set_xticks([])
    else:
        panel.set_xticks(range(cols), x_labels, rotation=90)
    if y_labels is None:
        panel.set_yticks([])
    else:
        panel.set_yticks(range(rows), y_labels)
    panel.tick_params(labelsize=7, length=0)
    return image


def _rows_inches(rows: np.ndarray) -> tuple[float, float]:
    """Panel size for `(L, T)` rows: about 0.45 in per token and 0.4 in per layer."""
    layers, tokens = rows.shape
    return 0.45 * tokens + 2.0, 0.4 * layers + 1.2


def _select(count: int, chosen: Sequence[int] | None, what: str) -> list[int]:
    """Indices to plot (all when None); negative indices count from the end."""
    if chosen is None:
        return list(range(count))
    picked = [index + count if index < 0 else index for index in chosen]
    bad = [index for index in picked if not 0 <= index < count]
    if bad or not picked:
        raise AttentionInputError(f"{what} {list(chosen)} not in range for {count} {what}.")
    return picked


def attention_heatmaps(
    attn: Attentions | Any,
    example: int = 0,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | str | None = None,
    *,
    tokens: Sequence[str] | None = None,
    mask: Any | None = None,
    key_tokens: Sequence[str] | None = None,
    dims: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Grid of attention heatmaps, one row per layer and one column per head.

    Args:
        attn: `Attentions` or weights `(L, B, H, T, S)`, `(L, T, S)`, or 4-D with `dims`
            naming its dimensions ("LHTS", "LBTS", "BHTS").
        example: batch index (for `Attentions` and 5-D arrays).
        layers, heads: indices to show (all by default); `heads="mean"` shows the head average.
        tokens: labels (default: the Attentions' tokens, else positions); `mask` `(T,)` drops
            padding from arrays; `key_tokens` labels the columns of cross-attention.
        ax: `len(layers) * len(heads)` axes to draw on, or None for a new figure.
        save: path (.png/.svg/.pdf) to write the figure to.

    Only real tokens are shown; rows are queries, columns keys; one colour scale for all panels.
    """
    selected = example_maps(attn, example, tokens, mask, key_tokens, dims)
    maps = selected.maps  # (L, H, T, S)
    layer_ids = _select(maps.shape[0], layers, "layers")
    if isinstance(heads, str):
        if heads != "mean":
            raise AttentionInputError(f'heads must be indices, None or "mean", got {heads!r}.')
        maps, head_names = maps.mean(axis=1, keepdims=True), ["mean of heads"]
        head_ids = [0]
    else:
        head_ids = _select(maps.shape[1], heads, "heads")
        head_names = [f"head {head}" for head in head_ids]
    size = _panel_inches(max(maps.shape[-2:]))
    figure, axes = figure_with_axes(len(layer_ids), len(head_ids), (size, size), ax)
    shown = maps[np.ix_(layer_ids, head_ids)]  # (L', H', T, S)
    vmax = float(np.abs(shown).max()) or 1.0
    for row, layer in enumerate(layer_ids):
        for col, (head, head_name) in enumerate(zip(head_ids, head_names, strict=True)):
            panel = axes[row, col]
            image = _draw_map(
                panel,
                maps[layer, head],
                selected.key_labels if row == len(layer_ids) - 1 else None,
                selected.query_labels if col == 0 else None,
                vmax,
            )
            panel.set_title(f"layer {layer + 1} · {head_name}", fontsize=8)
    figure.colorbar(image, ax=list(axes.flat), shrink=0.6, label="weight")
    return finish(figure, save)


def _layer_heatmap(panel: Axes, rows: np.ndarray, labels: list[str]) -> None:
    """Draw `(L, T)` rows with the first layer (labelled 1) at the bottom, tokens along x."""
    names = [f"layer {layer + 1}" for layer in range(rows.shape[0])]  # 1-based, as the paper
    image = _draw_map(panel, rows, labels, names)
    panel.set_aspect("auto")
    panel.invert_yaxis()  # deeper layers on top, as in Abnar & Zuidema (2020)
    panel.figure.colorbar(image, ax=panel, shrink=0.8)


def cls_across_layers(
    attn_or_matrix: Attentions | Any,
    example: int = 0,
    row: int = 0,
    *,
    tokens: Sequence[str] | None = None,
    mask: Any | None = None,
    dims: str | None = None,
    ax: Axes | None = None,
    save: str | Path | None = None,
) -> Figure:
    """One query token's attention across layers as a layers x tokens heatmap.

    Abnar & Zuidema (2020), Fig. 2: row `row` (default 0, the CLS token) of each layer,
    averaged over heads; layer 0 at the bottom.

    Args:
        attn_or_matrix: `Attentions`, weights `(L, B, H, T, T)`, matrices `(L, T, T)` (one
            example's rollout), rows `(L, T)` already taken, or 4-D with `dims` (a batch's
            rollout `(L, B, T, T)` is dims="LBTS").
        example: batch index; row: query position among the real tokens.
        tokens, mask: labels and `(T,)` real-token mask for arrays.
        ax: axes to draw on; save: path (.png/.svg/.pdf).
    """
    rows, labels, query = layer_rows(attn_or_matrix, row, example, tokens, mask, dims)  # (L, T)
    figure, axes = figure_with_axes(1, 1, _rows_inches(rows), ax)
    panel = axes[0, 0]
    _layer_heatmap(panel, rows, labels)
    title = "row across layers" if query is None else f"attention of {query!r} across layers"
    panel.set_title(title)
    panel.set_xlabel("key token")
    return finish(figure, save)


def compare_maps(
    maps: Mapping[str, Any],
    tokens: Sequence[str] | None = None,
    row: int = 0,
    *,
    example: int = 0,
    mask: Any | None = None,
    dims: str | None = None,
    ax: Sequence[Axes] | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Side-by-side layers x tokens heatmaps of one row under several methods.

    Abnar & Zuidema (2020), Fig. 3: e.g. `{"raw": ..., "rollout": ..., "flow": ...}`.
    Each value is one example's `(L, T)` rows or `(L, T, T)` matrices (or anything
    `cls_across_layers` takes); row `row` of each layer is shown. Each panel has its own
    colour scale, since the methods' values differ in range; signed values get a diverging
    scale centred on 0.

    Args:
        maps: method name -> values; tokens: labels (all positions or only the real ones);
        row: query position among the real tokens; mask: `(T,)` real-token mask.
        ax: one axes per method; save: path (.png/.svg/.pdf).
    """
    if not maps:
        raise AttentionInputError("compare_maps needs at least one method, e.g. {'raw': ...}.")
    panels = {
        name: layer_rows(values, row, example, tokens, mask, dims) for name, values in maps.items()
    }
    largest = max((rows for rows, _, _ in panels.values()), key=np.size)
    figure, axes = figure_with_axes(1, len(panels), _rows_inches(largest), ax)
    for panel, (name, (rows, labels, _)) in zip(axes[0], panels.items(), strict=True):
        _layer_heatmap(panel, rows, labels)
        panel.set_title(name)
        panel.set_xlabel("key token")
    return finish(figure, save)
