"""Per-layer rank correlation between attention-based relevance and post-hoc importance.

Abnar & Zuidema (2020), Tables 1-3: for each example, the Spearman correlation between one
attention row (raw attention, rollout or flow at layer L) and an importance score (blank-out or
input gradients) over the input tokens; reported as mean ± std over examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from attnkit.attentions import Attentions
from attnkit.metrics import mean_std, spearman
from attnkit.propagate import flow, rollout

Method = Literal["raw", "rollout", "flow"]
Row = int | Literal["max"]


def relevance(
    attn: Attentions,
    method: Method,
    layer: int,
    *,
    row: Row = 0,
    residual: float = 0.5,
) -> Tensor:
    """Token relevance `(B, T)` read from one layer's attention, rollout or flow.

    `row=0` takes the CLS query row (Abnar & Zuidema's agreement model); `row="max"` takes the
    maximum over real query rows, as the authors' DistilBERT/SST-2 script does
    (`compute_corel_distilbert_sst.py`, `.max(axis=0)`). Padding columns are 0.
    """
    mask = attn.mask  # (B, T)
    if method == "raw":
        maps = attn.weights[layer].mean(dim=1)  # (B, T, T) head mean
    elif method == "rollout":
        maps = rollout(attn, residual=residual)[layer]  # (B, T, T)
    elif method == "flow":
        rows = None if row == "max" else [row]
        maps = flow(attn, layer=layer, rows=rows, residual=residual)  # (B, R, T)
        if row != "max":
            return maps[:, 0] * mask
    else:
        raise ValueError(f"unknown method {method!r}; use 'raw', 'rollout' or 'flow'")
    maps = maps.to(torch.float64)
    if row == "max":
        real_rows = mask[:, :, None]  # (B, T, 1)
        return maps.masked_fill(~real_rows, float("-inf")).amax(dim=1).masked_fill(~mask, 0.0)
    return maps[:, row] * mask


def correlation_table(
    attn: Attentions,
    importance: Tensor,
    *,
    methods: Sequence[Method] = ("raw", "rollout", "flow"),
    layers: Sequence[int] | None = None,
    row: Row = 0,
    score_mask: Tensor | None = None,
    residual: float = 0.5,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int], Tensor]]:
    """Mean ± std over examples of the per-example Spearman ρ, per method and layer.

    Args:
        attn: attention of every layer, `(L, B, H, T, T)` with its padding mask.
        importance: `(B, T)` post-hoc scores aligned with the attention columns.
        layers: 0-based layers to report (default all); the table labels them 1-based (L1..).
        row: which attention row gives a token's relevance (see `relevance`).
        score_mask: `(B, T)` tokens to correlate over; default the real tokens except position 0
            (the CLS token, which blank-out does not score).

    Returns a long table (method, layer, mean, std, n, n_nan) and the per-example ρ values.
    """
    if importance.shape != attn.mask.shape:
        raise ValueError(
            f"importance has shape {tuple(importance.shape)}, attention columns are "
            f"{tuple(attn.mask.shape)} (batch, tokens); compute both on the same batch."
        )
    if score_mask is None:
        score_mask = attn.mask.clone()
        score_mask[:, 0] = False
    layers = list(range(attn.num_layers)) if layers is None else list(layers)
    rows, per_example = [], {}
    jobs = [(m, layer) for m in methods for layer in layers]
    for method, layer in tqdm(jobs, desc="correlations", disable=not progress, leave=False):
        scores = relevance(attn, method, layer, row=row, residual=residual)
        rho = spearman(scores.cpu(), importance.detach().cpu(), score_mask.cpu())  # (B,)
        summary = mean_std(rho)
        per_example[(method, layer)] = rho
        rows.append(
            {
                "method": method,
                "layer": layer + 1,
                "mean": summary.mean,
                "std": summary.std,
                "n": summary.n,
                "n_nan": summary.n_nan,
            }
        )
    return pd.DataFrame(rows), per_example


def side_by_side(
    ours: pd.DataFrame, paper: dict[str, Sequence[tuple[float, float]]], layers: Sequence[int]
) -> pd.DataFrame:
    """Wide table: one row per method, for each layer our `mean±std` beside the paper's."""
    table = {}
    for method in ours["method"].unique():
        cells = {}
        for column, layer in enumerate(layers):
            hit = ours[(ours["method"] == method) & (ours["layer"] == layer)]
            if len(hit):
                cells[(f"L{layer}", "ours")] = f"{hit['mean'].iloc[0]:.2f}±{hit['std'].iloc[0]:.2f}"
            if method in paper:
                mean, std = paper[method][column]
                cells[(f"L{layer}", "paper")] = f"{mean:.2f}±{std:.2f}"
        table[method] = cells
    frame = pd.DataFrame(table).T
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame
