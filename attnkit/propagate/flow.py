"""Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §4).

The attention graph has a node for every input token (layer 0) and for every position at each
layer 1..L, and an edge from position i at layer l to position j at layer l-1 with capacity
Â_l[i, j], where Â_l = rownorm(head_mean(A_l) + I) (see `rollout.augmented_attention`). The flow
from a node to input token t is the max-flow value from that node to t; input tokens other than t
are dead ends. A&Z's code (github.com/samiraabnar/attention_flow, `compute_node_flow`) runs
networkx Edmonds-Karp per pair and divides each row by its sum; `flow` returns the same numbers,
exact in float64, from the layered max-flow kernels in `_maxflow` (bounds that settle pairs without
a solve, a layered push-relabel for the rest, pairs in parallel).

Padding: each example's graph has its real tokens only (padding rows and columns of the attention
dropped, rows renormalised over real keys after the residual); outputs are zero at padding.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from attnkit.attentions import AttentionInputError, Attentions, as_weights_and_mask
from attnkit.propagate._maxflow import layered_max_flow
from attnkit.propagate.rollout import (
    _layer_index,
    augmented_attention,
    check_head_mean_rows,
    check_nonnegative,
    check_options,
)


def _row_indices(rows: Sequence[int] | Tensor | None, length: int) -> list[int]:
    """Normalise `rows` (None = every position; negatives count from the end) or raise."""
    if rows is None:
        return list(range(length))
    if isinstance(rows, int):
        rows = [rows]
    out = []
    for row in torch.as_tensor(rows).flatten().tolist():
        if isinstance(row, bool) or not isinstance(row, int):
            raise AttentionInputError(f"rows must be integer positions, got {row!r}.")
        if not -length <= row < length:
            raise AttentionInputError(
                f"row {row} is out of range for sequences of {length} tokens; use positions "
                f"0..{length - 1} (rows=[0] is the CLS row, rows=None every position)."
            )
        out.append(row % length)
    return out


class FlowDetachedWarning(UserWarning):
    """Flow was given weights that require grad; max-flow has no gradient, so they were detached."""


def graph_capacities(
    weights: Tensor, mask: Tensor, layer: int, residual: float, head_fusion: str, method: str
) -> np.ndarray:
    """Checked Â_1..Â_{layer+1} as float64 numpy: (layer+1, B, T, T), zero at padding."""
    if weights.requires_grad:
        warnings.warn(
            f"{method}: the attention weights require grad (capture(..., grad=True)), but "
            "max-flow is piecewise linear in the capacities and solved outside autograd: the "
            "weights are detached and the result has no gradient. Use rollout for a "
            "differentiable propagation.",
            FlowDetachedWarning,
            stacklevel=3,
        )
        weights = weights.detach()
    check_nonnegative(weights)
    below = weights[: layer + 1]
    check_head_mean_rows(below, mask, method)
    aug = augmented_attention(below.double(), mask, residual, head_fusion)
    return aug.cpu().numpy()


def flow_from_sources(
    sources: np.ndarray, below: np.ndarray, normalize: bool, **kernel_options
) -> np.ndarray:
    """Max-flow from each source row to every input token, rows optionally summing to 1.

    sources (S, n), below (K, n, n) = Â_1..Â_K of one example's real tokens -> (S, n) float64.
    """
    values = layered_max_flow(sources, below, **kernel_options)
    if normalize:  # as A&Z: flow_values[u] /= flow_values[u].sum()
        sums = values.sum(1, keepdims=True)
        values = values / np.where(sums > 0, sums, 1.0)
    return values


def flow(
    attn: Attentions | Tensor,
    layer: int = -1,
    rows: Sequence[int] | Tensor | None = None,
    residual: float = 0.5,
    head_fusion: str = "mean",
    normalize: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    """Attention flow from positions at `layer` to the input tokens (Abnar & Zuidema 2020).

    Args:
        attn: `Attentions`, or a bare (L, B, H, T, T) tensor of attention probabilities (raw
            head-mean rows must sum to 1 over real keys).
        layer: the layer whose positions are the flow sources, from 0 (-1 = last). Layer 0's flow
            equals its rollout; layer 1's is sum_k min(Â_2[s, k], Â_1[k, t]).
        rows: source positions (None = all; [0] = the CLS row; negatives count from the end).
        residual: identity weight in Â (0.5 = A&Z's rownorm(A + I)).
        head_fusion: "mean" (A&Z), "max" or "min"; rows are renormalised after the residual.
        normalize: divide each row by its sum, as A&Z's code does.
        mask: (B, T) padding mask (1 = real token) for a bare tensor.

    Returns:
        (B, len(rows), T) tensor of flow values (float64 max-flow, within 1e-12 of exact), in the
        attention's dtype and device; zero at padding columns and for padding source rows.
    """
    weights, mask = as_weights_and_mask(attn, mask)
    check_options(residual, head_fusion)
    L, B, _, T, _ = weights.shape
    layer = _layer_index(layer, L)
    row_list = _row_indices(rows, T)
    aug = graph_capacities(weights, mask, layer, residual, head_fusion, "flow")  # (Ls, B, T, T)
    mask_np = mask.cpu().numpy()
    out = np.zeros((B, len(row_list), T))
    for b in range(B):
        real = np.flatnonzero(mask_np[b])  # (n,)
        compact = np.full(T, -1)
        compact[real] = np.arange(len(real))
        wanted = [i for i, row in enumerate(row_list) if mask_np[b, row]]  # padding rows stay 0
        if not wanted:
            continue
        graph = aug[:, b][:, real][:, :, real]  # (Ls, n, n) real tokens only
        sources = graph[layer][[compact[row_list[i]] for i in wanted]]  # (S, n)
        values = flow_from_sources(sources, graph[:layer], normalize)  # (S, n)
        out[b, np.asarray(wanted)[:, None], real[None, :]] = values
    dtype = weights.dtype if weights.dtype.is_floating_point else torch.float64
    return torch.from_numpy(out).to(device=weights.device, dtype=dtype)
