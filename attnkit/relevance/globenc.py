"""GlobEnc (Modarressi, Fayyaz, Yaghoobzadeh & Pilehvar 2022, "GlobEnc: Quantifying Global Token
Attribution by Incorporating the Whole Encoder Layer in Transformers", NAACL, §2).

Per layer, the vector token j adds to token i through attention, the first residual and LayerNorm,
and the second residual and LayerNorm (the FFN is left out, as in the paper):

    z_ij  = Σ_h α^h_ij f^h(x_j) + δ_ij x_i                  f^h as in `attention_norm`
    z¹_ij = γ₁ ⊙ (z_ij − m(z_ij)) / s₁_i                     s₁_i = sqrt(Var(LN1 input_i) + ε)
    z²_ij = γ₂ ⊙ (z¹_ij − m(z¹_ij)) / s₂_i                   s₂_i = sqrt(Var(LN2 input_i) + ε)
    N_l[i, j] = ‖z²_ij‖₂, rows normalised to sum to 1 over real tokens

(the LayerNorm split is Kobayashi et al. 2021's: LN(Σ_j v_j) = Σ_j γ(v_j − m(v_j))/s + β, the
bias β left out; s is the actual input's standard deviation; as the authors' `modeling_bert.py`).
The paper aggregates the layers with rollout without an extra identity (the residual is already
inside N): G_l = N_l G_{l−1}, G_1 = N_1 — `aggregate=True` (default) returns G, `False` the N.

Pre-LN models (GPT2Encoder) have no LayerNorm after the residuals: N = ‖z_ij‖.
`second_layer_norm=False` stops after LN1 (Kobayashi et al. 2021's norm of attention, residual
and LayerNorm; Ferrando et al. 2022's rolled-out "norm" baseline).
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
def globenc(
    model: nn.Module,
    inputs: Mapping[str, Any],
    *,
    aggregate: bool = True,
    second_layer_norm: bool = True,
) -> Tensor:
    """GlobEnc token attribution after every layer (Modarressi et al. 2022).

    Args:
        model: a supported encoder (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        aggregate: roll the per-layer matrices out (the paper's GlobEnc); False returns the
            per-layer normalised N_l.
        second_layer_norm: include the second residual and LayerNorm (GlobEnc). False stops at
            LN1: Kobayashi et al. 2021's attention + residual + LayerNorm norm, which Ferrando
            et al. 2022 roll out as their "norm" baseline (`attributions.py`, `'norm'`).

    Returns:
        (L, B, T, T); row i of [l, b] is how much each input token (aggregate) or each layer-input
        token (per layer) makes up token i after layer l. Rows sum to 1 over real tokens; 0 at
        padding.
    """
    _, layers = encoder_layers(model)
    recorded = record(model, inputs)
    mask = recorded.mask
    pairs = real_pairs(mask, recorded.inputs[0].dtype)  # (B, T, T)
    per_layer = []
    for layer, x, attn in zip(layers, recorded.inputs, recorded.attentions, strict=True):
        z = mixed_vectors(layer, x, attn * pairs[:, None])  # (B, T, T, D)
        if not layer.pre_ln:
            pre_ln1 = layer.residual_sum(x, attn @ layer.values(x))  # (B, T, D)
            z = layer_norm_parts(layer.ln1, z, pre_ln1)
            if second_layer_norm:
                h = layer.ln1(pre_ln1)
                z = layer_norm_parts(layer.ln2, z, h + layer.ffn(h))
        per_layer.append(normalize_rows(z.norm(dim=-1) * pairs))  # (B, T, T)
    contributions = torch.stack(per_layer)  # (L, B, T, T)
    if not aggregate:
        return contributions
    return contribution_rollout(contributions, mask, residual=0.0)
