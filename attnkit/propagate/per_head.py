"""Per-head rollout and flow (Abnar & Zuidema 2020, appendix A.1).

One head at its layer, with every layer below treated as single-head (heads fused, by default
their mean, with the residual): for head h at layer l,

    rollout:  R^h = Â^h_l R_{l-1}         Â^h_l = rownorm((1 - residual) A_{l,h} + residual I)
    flow:     max-flow from position s at layer l, whose out-edges are Â^h_l[s], through the
              head-fused graph of layers l-1..1 to each input token.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from attnkit.attentions import Attentions, as_weights_and_mask
from attnkit.propagate.flow import _row_indices, flow_from_sources, graph_capacities
from attnkit.propagate.rollout import (
    _layer_index,
    augmented_attention,
    check_head_mean_rows,
    check_nonnegative,
    check_options,
    rollout,
)


def head_attention(
    weights: Tensor,
    mask: Tensor,
    layer: int,
    residual: float,
    discard_ratio: float = 0.0,
    renormalize: bool = True,
) -> Tensor:
    """Â^h for every head of one layer: (L, B, H, T, T) -> (H, B, T, T), zero at padding."""
    heads = weights[layer].transpose(0, 1).unsqueeze(2)  # (H, B, 1, T, T): each head a "layer"
    return augmented_attention(heads, mask, residual, "mean", discard_ratio, renormalize)


def rollout_per_head(
    attn: Attentions | Tensor,
    layer: int = -1,
    residual: float = 0.5,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    renormalize: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    """Rollout through each head of `layer` on top of the head-fused rollout below it.

    Options are `rollout`'s; head_fusion, discard_ratio and start_layer shape the layers below,
    and discard_ratio / renormalize / residual also apply to each head's own matrix.

    Returns:
        (B, H, T, T): [b, h] = Â^h_layer R_{layer-1} (R_{-1} = identity), zero at padding.
    """
    weights, mask = as_weights_and_mask(attn, mask)
    check_options(residual, head_fusion, discard_ratio)
    L = weights.shape[0]
    layer = _layer_index(layer, L)
    start = _layer_index(start_layer, L, "start_layer")
    check_nonnegative(weights)
    if not renormalize:
        check_head_mean_rows(weights, mask, "rollout_per_head(renormalize=False)")
    heads = head_attention(weights, mask, layer, residual, discard_ratio, renormalize)
    if start >= layer:  # nothing below this layer is rolled out (layer 0, or Chefer's start)
        below = torch.diag_embed(mask.to(weights.dtype))  # (B, T, T) identity on real tokens
    else:
        below = rollout(
            weights[:layer], residual, head_fusion, discard_ratio, start, renormalize, mask
        )[-1]  # (B, T, T)
    return torch.matmul(heads, below).transpose(0, 1)  # (B, H, T, T)


def flow_per_head(
    attn: Attentions | Tensor,
    layer: int = -1,
    rows: Sequence[int] | Tensor | None = None,
    residual: float = 0.5,
    head_fusion: str = "mean",
    normalize: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    """Attention flow from positions of `layer` through each of its heads (A&Z appendix A.1).

    The source at (layer, s) sends along head h's edges Â^h_layer[s]; the layers below form the
    head-fused graph of `flow`. Options are `flow`'s.

    Returns:
        (B, H, len(rows), T) flow values, zero at padding; attention's dtype and device.
    """
    weights, mask = as_weights_and_mask(attn, mask)
    check_options(residual, head_fusion)
    L, B, H, T, _ = weights.shape
    layer = _layer_index(layer, L)
    row_list = _row_indices(rows, T)
    fused = graph_capacities(weights, mask, layer, residual, head_fusion, "flow_per_head")
    heads = head_attention(weights.detach().double(), mask, layer, residual).cpu().numpy()
    mask_np = mask.cpu().numpy()
    out = np.zeros((B, H, len(row_list), T))
    for b in range(B):
        real = np.flatnonzero(mask_np[b])
        compact = np.full(T, -1)
        compact[real] = np.arange(len(real))
        wanted = [i for i, row in enumerate(row_list) if mask_np[b, row]]
        if not wanted:
            continue
        src_rows = [compact[row_list[i]] for i in wanted]
        sources = heads[:, b][:, real][:, :, real][:, src_rows]  # (H, S, n)
        below = fused[:layer, b][:, real][:, :, real]  # (layer, n, n)
        values = flow_from_sources(sources.reshape(-1, len(real)), below, normalize)
        out[b][:, np.asarray(wanted)[:, None], real[None, :]] = values.reshape(H, len(wanted), -1)
    dtype = weights.dtype if weights.dtype.is_floating_point else torch.float64
    return torch.from_numpy(out).to(device=weights.device, dtype=dtype)
