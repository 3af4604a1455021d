"""Per-layer rank correlation of any relevance method against an importance score.

The evaluation of Abnar & Zuidema (2020, Tables 1–3) and Ferrando et al. (2022, §5): for each
example, the Spearman ρ between a method's token relevance and a post-hoc importance score over
the scored tokens, reported per layer as mean ± std over examples. Unlike
`attnkit.recipes.correlation.correlation_table` (raw / rollout / flow from captured attention),
this one takes the relevance already computed, so any method fits: GAE, ALTI, value zeroing, …
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from torch import Tensor

from attnkit.metrics import MetricInputError, mean_std, spearman


def correlation_table(
    relevance: Mapping[str, Tensor], importance: Tensor, score_mask: Tensor
) -> tuple[pd.DataFrame, dict[tuple[str, int], Tensor]]:
    """Mean ± std over examples of the per-example Spearman ρ, per method and layer.

    Args:
        relevance: method name -> token relevance, (L, B, T) per layer or (B, T) for a method
            with one map (labelled layer L = 1). Take a query row first, e.g. `alti(...)[:, :, 0]`.
        importance: (B, T) importance score lined up with the tokens.
        score_mask: (B, T) bool, the tokens correlated over (e.g. real tokens without specials).

    Returns:
        A long table (method, layer 1-based, mean, std, n, n_nan) and the per-example ρ (B,)
        keyed by (method, layer).
    """
    rows, per_example = [], {}
    for method, scores in relevance.items():
        layered = scores if scores.dim() == 3 else scores[None]
        if layered.dim() != 3 or layered.shape[1:] != importance.shape:
            raise MetricInputError(
                f"relevance[{method!r}] has shape {tuple(scores.shape)}; expected (layers, batch, "
                f"tokens) or (batch, tokens) with (batch, tokens) = {tuple(importance.shape)}."
            )
        for layer, layer_scores in enumerate(layered, start=1):
            rho = spearman(layer_scores.detach().cpu(), importance.detach().cpu(), score_mask.cpu())
            summary = mean_std(rho)
            per_example[(method, layer)] = rho
            rows.append(
                {"method": method, "layer": layer, "mean": summary.mean, "std": summary.std,
                 "n": summary.n, "n_nan": summary.n_nan}
            )  # fmt: skip
    return pd.DataFrame(rows), per_example
