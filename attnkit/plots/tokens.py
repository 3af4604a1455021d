"""Token-highlight view: the text's tokens, each shaded by its score, one row per method.

Signed scores (any negative value) use a diverging map centred on 0 (red raises the explained
output, blue lowers it); non-negative ones a sequential map from 0. Each row is scaled by its
own largest magnitude, since methods differ in range; the number under a row gives that scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnkit.attentions import AttentionInputError
from attnkit.plots.figures import figure_with_axes, finish
from attnkit.plots.heatmaps import CMAP, DIVERGING
from attnkit.plots.inputs import to_numpy


def score_colour(value: float, scale: float, signed: bool) -> tuple[float, float, float, float]:
    """RGBA of one score: diverging around 0 when `signed`, else sequential from 0."""
    if scale <= 0:
        return colormaps[DIVERGING if signed else CMAP](0.5 if signed else 0.0)
    if signed:
        return colormaps[DIVERGING](0.5 + 0.5 * float(np.clip(value / scale, -1, 1)))
    return colormaps[CMAP](0.85 * float(np.clip(value / scale, 0, 1)))


def token_scores(
    scores: Mapping[str, Any],
    tokens: Sequence[str],
    *,
    ax: Axes | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Tokens shaded by each method's score.

    Args:
        scores: method name -> `(T,)` scores, one per token of `tokens`.
        tokens: the token strings (only the ones to show: drop padding first).
        ax: axes to draw on; save: path (.png/.svg/.pdf).
    """
    if not scores:
        raise AttentionInputError("token_scores needs at least one method, e.g. {'rollout': ...}.")
    rows = {name: to_numpy(values).reshape(-1) for name, values in scores.items()}
    for name, values in rows.items():
        if values.shape != (len(tokens),):
            raise AttentionInputError(
                f"scores[{name!r}] has {values.size} values for {len(tokens)} tokens; pass one "
                "score per shown token (drop padding from both)."
            )
    widths = [0.12 * max(len(token), 2) + 0.12 for token in tokens]
    total = sum(widths)
    figure, axes = figure_with_axes(1, 1, (min(total + 1.6, 28.0), 0.5 * len(rows) + 0.4), ax)
    panel = axes[0, 0]
    panel.set_xlim(-1.6, total)
    panel.set_ylim(len(rows) - 0.5, -0.5)
    panel.axis("off")
    for y, (name, values) in enumerate(rows.items()):
        signed = bool((values < 0).any())
        scale = float(np.abs(values).max())
        panel.text(-1.55, y, name, va="center", ha="left", fontsize=8, fontweight="bold")
        x = 0.0
        for token, value, width in zip(tokens, values, widths, strict=True):
            colour = score_colour(float(value), scale, signed)
            dark = sum(colour[:3]) < 1.3
            panel.text(
                x + width / 2, y, token, ha="center", va="center", fontsize=8,
                color="white" if dark else "black",
                bbox={"boxstyle": "square,pad=0.2", "facecolor": colour, "edgecolor": "none"},
            )  # fmt: skip
            x += width
        panel.text(
            total, y, f" ±{scale:.2g}" if signed else f" {scale:.2g}", va="center", fontsize=7
        )
    return finish(figure, save)
