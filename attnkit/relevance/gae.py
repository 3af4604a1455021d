"""Generic Attention-model Explainability, self-attention rule (Chefer, Gur & Wolf 2021, "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV,
§3, Eqs. 5–6).

With A_l the attention probabilities of layer l (B, H, T, T) and ∇A_l the gradient of the explained
score (the target class's logit) with respect to them:

    Ā_l = E_h[(∇A_l ⊙ A_l)⁺]          negatives set to 0 per head, then the mean over heads
    R_0 = I,   R_l = R_{l−1} + Ā_l R_{l−1}        (first layer to last)      # (B, T, T)

Row i of R is the relevance of every token for token i; the paper reads the CLS row (R[:, 0]).
Unlike rollout, rows are not normalised (the identity stays, relevance accumulates).

Padding: A and ∇A are restricted to real query and key pairs; R is the identity on real tokens
and 0 in padding rows and columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.importance._common import Target
from attnkit.relevance._encoder import explained_logit, real_pairs, record


def gae(model: nn.Module, inputs: Mapping[str, Any], target: Target = None) -> Tensor:
    """Chefer et al. 2021's gradient-weighted relevance R (B, T, T) for the target's logit.

    Args:
        model: a supported classifier (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        target: class index, or (B,) tensor of class ids; None = the predicted class.
    """
    attentions, gradients, mask = attention_gradients(model, inputs, target)
    pairs = real_pairs(mask, attentions[0].dtype)  # (B, T, T)
    relevance = torch.diag_embed(mask.to(pairs.dtype))  # (B, T, T) identity on real tokens
    for attn, grad in zip(attentions, gradients, strict=True):
        weighted = (grad * attn).clamp_min(0).mean(1) * pairs  # (B, T, T) Ā_l
        relevance = relevance + weighted @ relevance
    return relevance


def attention_gradients(
    model: nn.Module, inputs: Mapping[str, Any], target: Target
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Per layer A (B, H, T, T) and ∂ logit_target / ∂A, detached; and the (B, T) mask."""
    with torch.enable_grad():
        recorded = record(model, inputs, grad=True)
        score, _ = explained_logit(recorded, target)
        gradients = torch.autograd.grad(score, recorded.attentions)
    attentions = [a.detach() for a in recorded.attentions]
    return attentions, [g.detach() for g in gradients], recorded.mask
