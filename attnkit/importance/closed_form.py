"""The gradient of Lopardo et al.'s (2024) classifier in closed form (their "Theory" section).

Notation of `attnkit.models.lopardo` (row vectors, one head h, class c explained):

    e_t = E[w_t] + p_t,  q = e_0 W_q,  k_t = e_t W_k,  v_t = e_t W_v,  s_t = q·k_t / √d_attn,
    α_t = softmax_t(s_t),  u_t = v_t · w  with w = W_ℓ[:, c],  f_h = Σ_t α_t u_t,  f = mean_h f_h

Differentiating f_h: ∂f_h/∂s_t = α_t (u_t - f_h), ∂s_t/∂e_t = q W_kᵀ/√d, ∂u_t/∂e_t = w W_vᵀ.
For every position t (the paper's formula):

    ∇_{e_t} f_h = α_t [ (u_t - Σ_s α_s u_s) q W_kᵀ/√d + w W_vᵀ ]                     (1)

The CLS embedding e_0 also makes the query, q = e_0 W_q, and ∂s_s/∂q = k_s/√d for every s, so

    ∇_{e_0} f_h = (1) at t = 0  +  [ Σ_s α_s (u_s - f_h) k_s ] W_qᵀ/√d                 (2)

and ∇_{e_t} f = (1/H) Σ_h ∇_{e_t} f_h. The positions p_t are added to the token embeddings, so
the gradient w.r.t. the token embedding E[w_t] is this same ∇_{e_t} f. Padding has α_t = 0 and
gets a zero gradient. The gradient is α_t times a term that carries forward-path information
(u_t, q, W_v, W_ℓ), so it is not proportional to attention.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.importance._common import (
    ImportanceInputError,
    Target,
    check_ids_and_mask,
    evaluation,
    resolve_target,
)
from attnkit.models.lopardo import LopardoClassifier


def lopardo_gradient(
    model: LopardoClassifier,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    target: Target = None,
    *,
    per_head: bool = False,
) -> Tensor:
    """∇_{e_t} f_c, the gradient of the target's logit w.r.t. each token embedding, eqs. (1)-(2).

    Args:
        model: a `LopardoClassifier` (the formula is specific to its architecture).
        input_ids: `(B, T)` ids with CLS at position 0; `attention_mask`: `(B, T)`, 1 for real
            tokens (default: `input_ids != pad_id`).
        target: class c: an int, a `(B,)` tensor, or None for the predicted class.
        per_head: return ∇_{e_t} f_h for every head instead of their mean.

    Returns:
        `(B, T, d_in)` (or `(B, H, T, d_in)` with `per_head`), in the model's dtype, 0 on padding.
        Computed without autograd; it equals autograd's gradient w.r.t. `inputs_embeds`.
    """
    if not isinstance(model, LopardoClassifier):
        raise ImportanceInputError(
            f"lopardo_gradient is the closed form for LopardoClassifier, got "
            f"{type(model).__name__}; use attnkit.importance.embedding_attribution for other models."
        )
    mask = check_ids_and_mask(input_ids, attention_mask)  # (B, T) bool
    heads = model.heads
    with evaluation(model), torch.no_grad():
        e = model.embed(input_ids)  # (B, T, d_in)
        key_mask = model.key_mask(input_ids, mask, e)  # (B, T)
        target = resolve_target(target, model(input_ids, key_mask).logits)  # (B,)
        scale = 1.0 / math.sqrt(heads.W_k.size(-1))  # 1/√d_attn
        w = heads.W_l.permute(2, 0, 1)[target]  # (B, H, d_out): W_ℓ^h[:, c] per example
        q = torch.einsum("bd,hda->bha", e[:, 0], heads.W_q)  # (B, H, d_attn), CLS query
        k = torch.einsum("btd,hda->bhta", e, heads.W_k)  # (B, H, T, d_attn)
        v = torch.einsum("btd,hdo->bhto", e, heads.W_v)  # (B, H, T, d_out)
        scores = torch.einsum("bha,bhta->bht", q, k) * scale  # (B, H, T)
        alpha = scores.masked_fill(~key_mask[:, None, :], float("-inf")).softmax(dim=-1)
        u = torch.einsum("bhto,bho->bht", v, w)  # (B, H, T): v_t · W_ℓ[:, c]
        f_h = (alpha * u).sum(dim=-1, keepdim=True)  # (B, H, 1)
        dscore = alpha * (u - f_h)  # (B, H, T): ∂f_h/∂s_t
        key_direction = torch.einsum("bha,hda->bhd", q, heads.W_k) * scale  # q W_kᵀ/√d
        value_direction = torch.einsum("hdo,bho->bhd", heads.W_v, w)  # w W_vᵀ, (B, H, d_in)
        grad = (
            dscore[..., None] * key_direction[:, :, None, :]
            + alpha[..., None] * value_direction[:, :, None, :]
        )  # (B, H, T, d_in), eq. (1)
        query_direction = torch.einsum("bht,bhta->bha", dscore, k) * scale  # Σ_s ∂f/∂s_s k_s/√d
        grad[:, :, 0] += torch.einsum("bha,hda->bhd", query_direction, heads.W_q)  # eq. (2)
    return grad if per_head else grad.mean(dim=1)
