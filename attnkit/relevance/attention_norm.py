"""Norm-based attention (Kobayashi, Kuribayashi, Yokoi & Inui 2020, "Attention is Not Only a Weight:
Analyzing Transformers with Vector Norms", EMNLP, §3, Eq. 5).

Each head's output at token i is a sum of transformed value vectors weighted by attention:

    f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h                     (output bias b_O excluded)
    attention_norm[l, b, i, j] = ‖ Σ_h α^h_ij f^h(x_j) ‖₂     # (L, B, T, T)

with x the input of the layer's attention: the layer input for post-LN encoders (BERT, RoBERTa,
DistilBERT), LN1(x) for the pre-LN GPT2Encoder. The paper's "‖Σ αf(x)‖" (all heads) is the
default; `per_head=True` gives ‖α^h_ij f^h(x_j)‖ per head instead, (L, B, H, T, T).

Scores are unnormalised (a norm, in the model's units). Padding: rows and columns of padding
tokens are 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.relevance._encoder import encoder_layers, real_pairs, record


@torch.no_grad()
def attention_norm(
    model: nn.Module, inputs: Mapping[str, Any], *, per_head: bool = False
) -> Tensor:
    """‖Σ_h α^h_ij f^h(x_j)‖ for every layer (Kobayashi et al. 2020).

    Args:
        model: a supported encoder (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        per_head: return ‖α^h_ij f^h(x_j)‖ per head, (L, B, H, T, T).

    Returns:
        (L, B, T, T) norms, 0 at padding rows and columns.
    """
    _, layers = encoder_layers(model)
    recorded = record(model, inputs)
    pairs = real_pairs(recorded.mask, recorded.inputs[0].dtype)  # (B, T, T)
    out = []
    for layer, x, attn in zip(layers, recorded.inputs, recorded.attentions, strict=True):
        f = layer.head_outputs(x)  # (B, H, T, D)
        if per_head:
            # ‖α f‖ = α ‖f‖ for α ≥ 0
            norms = attn * f.norm(dim=-1)[:, :, None, :]  # (B, H, T, T)
            out.append(norms * pairs[:, None])
        else:
            summed = torch.einsum("bhij,bhjd->bijd", attn, f)  # (B, T, T, D)
            out.append(summed.norm(dim=-1) * pairs)
    return torch.stack(out)
