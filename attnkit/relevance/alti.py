"""ALTI, Aggregation of Layer-wise Token-to-token Interactions (Ferrando, Gállego & Costa-jussà
2022, "Measuring the Mixing of Contextual Information in the Transformer", EMNLP, §3–4).

Per layer, the attention block's output y_i (after the residual and, for post-LN models, LN1) is a
sum of one transformed vector per input token:

    T_i(x_j) = LN1-part( Σ_h α^h_ij f^h(x_j) + δ_ij x_i )      f^h as in `attention_norm`
    y_i      = Σ_j T_i(x_j) + bias terms (b_O through LN1, and β₁)
    d_ij     = ‖y_i − T_i(x_j)‖₁                                 (Manhattan distance, Eq. 8)
    c_ij     = max(0, ‖y_i‖₁ − d_ij) / Σ_k max(0, ‖y_i‖₁ − d_ik)  (Eq. 9: non-negative, rows sum to 1)

The LN1 part is Kobayashi et al. 2021's split γ(v − m(v))/s with s from the actual LN1 input
(`sqrt(Var + ε)`, as LayerNorm computes it; the authors' `contributions.py` uses
`(x + ε).std()` — unbiased and ε added to the states — a negligible difference). The FFN is not
decomposed (the paper's choice). Pre-LN models (GPT2Encoder): T_i(x_j) = z_ij, y_i = x_i +
attention output.

The paper aggregates the layers with rollout and no extra identity (the residual is inside c):
ALTI_l = C_l ALTI_{l−1}, ALTI_1 = C_1 — `aggregate=True` (default); `False` returns the C_l.
Padding: rows and columns of padding tokens are 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.relevance._encoder import (
    encoder_layers,
    layer_norm_parts,
    mixed_vectors,
    normalize_rows,
    real_pairs,
    record,
)
from attnkit.relevance.aggregate import contribution_rollout


@torch.no_grad()
def alti(model: nn.Module, inputs: Mapping[str, Any], *, aggregate: bool = True) -> Tensor:
    """ALTI token contributions after every layer (Ferrando et al. 2022).

    Args:
        model: a supported encoder (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        aggregate: roll the per-layer contributions out (the paper's ALTI); False returns the
            per-layer C_l.

    Returns:
        (L, B, T, T), non-negative, rows summing to 1 over real tokens, 0 at padding.
    """
    _, layers = encoder_layers(model)
    recorded = record(model, inputs)
    mask = recorded.mask
    pairs = real_pairs(mask, recorded.inputs[0].dtype)  # (B, T, T)
    per_layer = []
    for layer, x, attn in zip(layers, recorded.inputs, recorded.attentions, strict=True):
        z = mixed_vectors(layer, x, attn * pairs[:, None])  # (B, T, T, D)
        pre_ln1 = layer.residual_sum(x, attn @ layer.values(x))  # (B, T, D)
        y = layer.attention_output(pre_ln1)  # (B, T, D)
        if not layer.pre_ln:
            z = layer_norm_parts(layer.ln1, z, pre_ln1)
        distance = (y[:, :, None, :] - z).abs().sum(-1)  # (B, T, T) d_ij
        size = y.abs().sum(-1, keepdim=True)  # (B, T, 1) ‖y_i‖₁
        per_layer.append(normalize_rows((size - distance).clamp_min(0) * pairs))
    contributions = torch.stack(per_layer)  # (L, B, T, T)
    if not aggregate:
        return contributions
    return contribution_rollout(contributions, mask, residual=0.0)
