"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §3).

Each layer's attention is fused over heads, mixed with the identity for the residual stream and
row-normalised:

    Â_l = rownorm((1 - residual) * fuse_heads(A_l) + residual * I)          # (B, T, T)

and the rollout multiplies them from the bottom up, R_1 = Â_1, R_l = Â_l R_{l-1}: row i of R_l is
how much each input token contributes to position i after layer l. The defaults (residual 0.5,
head mean, renormalised rows, start at layer 0) are A&Z's own code
(github.com/samiraabnar/attention_flow): `aug = att + eye; aug /= aug.sum(-1)`.

Options and the public implementation each convention comes from:

- head_fusion "max" / "min" and discard_ratio: jacobgil/vit-explain (`vit_rollout.py`). It fuses
  heads, then zeroes the lowest `discard_ratio` fraction of the fused matrix's entries (per example),
  sparing the CLS token, then applies (A + I) / 2 and renormalises rows. Following the attnkit spec
  we spare the whole CLS column (attention *to* the first real token); vit-explain's code
  literally spares only flat index 0, the [CLS, CLS] entry. vit-explain also edits only batch
  element 0 and divides by row sums without keepdim; we do every example and proper row sums.
- start_layer: Chefer et al. 2021 (hila-chefer/Transformer-Explainability,
  `compute_rollout_attention(all_layer_matrices, start_layer)`): the product starts at that layer;
  layers below it are skipped (their output here is the identity on real tokens).

Padding: only real tokens take part. Padding rows and columns of the attention are dropped, rows are
renormalised over real keys after the residual, and every output is zero at padding positions.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor

from attnkit.attentions import (
    AttentionInputError,
    Attentions,
    as_weights_and_mask,
    check_row_stochastic,
)

HEAD_FUSIONS = ("mean", "max", "min")


def check_options(residual: float, head_fusion: str, discard_ratio: float = 0.0) -> None:
    """Raise `AttentionInputError` for an option no propagation method accepts."""
    if head_fusion not in HEAD_FUSIONS:
        raise AttentionInputError(
            f"unknown head_fusion {head_fusion!r}; use one of {', '.join(map(repr, HEAD_FUSIONS))} "
            "('mean' is Abnar & Zuidema's, 'max'/'min' are vit-explain's)."
        )
    if not isinstance(residual, Real) or not 0.0 <= residual <= 1.0:
        raise AttentionInputError(
            f"residual must be a number in [0, 1] (the identity's weight: 0.5 is Abnar & "
            f"Zuidema's 0.5 A + 0.5 I, 0 ignores the residual stream), got {residual!r}."
        )
    if not isinstance(discard_ratio, Real) or not 0.0 <= discard_ratio < 1.0:
        raise AttentionInputError(
            f"discard_ratio must be in [0, 1) (the fraction of lowest fused attention entries to "
            f"zero; vit-explain uses e.g. 0.9), got {discard_ratio!r}."
        )


def check_nonnegative(weights: Tensor) -> None:
    """Attention must be probabilities; negative entries mean scores (logits) were passed."""
    low = weights.min()
    if low < 0:
        where = (weights == low).nonzero()[0].tolist()
        raise AttentionInputError(
            f"attention has negative values (min {low.item():.4g} at (layer, batch, head, query, "
            f"key) = {where}). Pass probabilities (softmax output), not scores or logits."
        )


def check_head_mean_rows(weights: Tensor, mask: Tensor, method: str) -> None:
    """Raw head-mean rows must sum to ~1 over real keys (rollout with renormalize=False, flow)."""
    try:
        check_row_stochastic(
            weights.mean(2, keepdim=True), mask, name=f"{method}: head-mean attention"
        )
    except AttentionInputError as error:
        message = str(error)
        if "renormalize" not in method:  # flow has no renormalize switch to suggest
            message = message.replace(", or set renormalize=True where the method offers it", "")
        raise AttentionInputError(
            f"{message} {method} weighs the attention against the residual identity, so it needs "
            "each query's attention to sum to 1 over the real tokens; if the padding keys carry "
            "attention, the model ran without its attention_mask: rerun it with the mask."
        ) from None


def fuse_heads(weights: Tensor, head_fusion: str) -> Tensor:
    """(L, B, H, T, T) -> (L, B, T, T): mean (A&Z), or elementwise max/min (vit-explain)."""
    if head_fusion == "mean":
        return weights.mean(2)
    if head_fusion == "max":
        return weights.amax(2)
    return weights.amin(2)


def discard_lowest(fused: Tensor, mask: Tensor, discard_ratio: float) -> Tensor:
    """Zero the lowest `discard_ratio` fraction of each example's fused attention (vit-explain).

    Per layer and example, the k = int(n * n * discard_ratio) smallest entries among the n real
    tokens are chosen, and those outside the CLS column (keys at the first real token) are zeroed.
    fused (L, B, T, T), mask (B, T) -> (L, B, T, T)
    """
    L, B, T, _ = fused.shape
    real = mask[:, :, None] & mask[:, None, :]  # (B, T, T)
    n_real = mask.sum(1)  # (B,)
    k = (n_real * n_real * discard_ratio).long()  # (B,) floor, as int() in vit-explain
    flat = fused.masked_fill(~real, float("inf")).reshape(L, B, T * T)
    order = flat.argsort(dim=-1, stable=True)  # (L, B, T*T) ascending; padding sorts last
    rank = torch.empty_like(order).scatter_(
        -1, order, torch.arange(T * T, device=fused.device).expand_as(order)
    )
    lowest = rank.reshape(L, B, T, T) < k[None, :, None, None]  # (L, B, T, T)
    cls = mask.long().argmax(1)  # (B,) index of the first real token
    is_cls_column = torch.arange(T, device=fused.device)[None, :] == cls[:, None]  # (B, T)
    drop = lowest & ~is_cls_column[None, :, None, :]
    return fused.masked_fill(drop, 0.0)


def augmented_attention(
    weights: Tensor,
    mask: Tensor,
    residual: float = 0.5,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    renormalize: bool = True,
) -> Tensor:
    """Â per layer: rownorm((1 - residual) * fuse_heads(A) + residual * I) on real tokens.

    weights (L, B, H, T, T), mask (B, T) bool -> (L, B, T, T), zero in padding rows and columns.
    """
    if weights.requires_grad:  # the same steps out of place, so autograd can follow them
        return _augmented_differentiable(
            weights, mask, residual, head_fusion, discard_ratio, renormalize
        )
    fused = fuse_heads(weights, head_fusion)  # (L, B, T, T), a new tensor: edited in place
    if not bool(mask.all()):  # drop padding rows and columns
        fused.mul_((mask[:, :, None] & mask[:, None, :]).to(weights.dtype))
    if discard_ratio > 0:
        fused = discard_lowest(fused, mask, discard_ratio)
    aug = fused.mul_(1.0 - residual)
    aug.diagonal(dim1=-2, dim2=-1).add_(residual * mask.to(weights.dtype))  # + residual I (real)
    if renormalize:
        sums = aug.sum(-1, keepdim=True)
        # a real row can only sum to 0 with residual=0 and everything discarded: leave it at 0
        aug.div_(torch.where(sums > 0, sums, torch.ones_like(sums)))
    return aug


def _augmented_differentiable(
    weights: Tensor,
    mask: Tensor,
    residual: float,
    head_fusion: str,
    discard_ratio: float,
    renormalize: bool,
) -> Tensor:
    """`augmented_attention` without in-place edits (for weights that require grad)."""
    fused = fuse_heads(weights, head_fusion)  # (L, B, T, T)
    fused = fused * (mask[:, :, None] & mask[:, None, :]).to(weights.dtype)
    if discard_ratio > 0:
        fused = discard_lowest(fused, mask, discard_ratio)
    aug = (1.0 - residual) * fused + residual * torch.diag_embed(mask.to(weights.dtype))
    if renormalize:
        sums = aug.sum(-1, keepdim=True)
        aug = aug / torch.where(sums > 0, sums, torch.ones_like(sums))
    return aug


def rollout(
    attn: Attentions | Tensor,
    residual: float = 0.5,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    renormalize: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    """Attention rollout after every layer (Abnar & Zuidema 2020).

    Args:
        attn: `Attentions`, or a bare (L, B, H, T, T) tensor of attention probabilities.
        residual: weight of the identity (residual connection) mixed into each layer's fused
            attention; 0.5 is A&Z's 0.5 A + 0.5 I, 0 uses the attention alone.
        head_fusion: "mean" (A&Z), "max" or "min" (vit-explain).
        discard_ratio: zero this fraction of the lowest fused attention entries per layer and
            example before the residual, sparing the CLS column (vit-explain). In [0, 1).
        start_layer: first layer of the product (Chefer et al. 2021); layers below it return the
            identity. Negative values count from the end.
        renormalize: divide each row of Â by its sum (A&Z, vit-explain). With False the raw
            head-mean rows must already sum to 1 over real keys.
        mask: (B, T) padding mask (1 = real token) for a bare tensor; an `Attentions` carries its own.

    Returns:
        (L, B, T, T) tensor R with R[l] = Â_l ... Â_{start_layer}: row i of R[l, b] is the
        contribution of every input token to position i after layer l. Zero at padding; same
        dtype and device as the attention. Differentiable when the weights require grad
        (`capture(..., grad=True)`).
    """
    weights, mask = as_weights_and_mask(attn, mask)
    check_options(residual, head_fusion, discard_ratio)
    L = weights.shape[0]
    start = _layer_index(start_layer, L, "start_layer")
    check_nonnegative(weights)
    if not renormalize:
        check_head_mean_rows(weights, mask, "rollout(renormalize=False)")
    aug = augmented_attention(weights, mask, residual, head_fusion, discard_ratio, renormalize)
    identity = torch.diag_embed(mask.to(weights.dtype))  # (B, T, T) identity on real tokens
    if aug.requires_grad:  # capture(grad=True): build the product out of place, differentiable
        products = [identity] * start + [aug[start]]
        for layer in range(start + 1, L):
            products.append(torch.matmul(aug[layer], products[-1]))
        return torch.stack(products)  # (L, B, T, T)
    out = torch.empty_like(aug)  # (L, B, T, T)
    out[:start] = identity
    out[start] = aug[start]
    for layer in range(start + 1, L):
        torch.matmul(aug[layer], out[layer - 1], out=out[layer])
    return out


def _layer_index(layer: int, num_layers: int, name: str = "layer") -> int:
    """Normalise a layer index (negative counts from the end) or raise `AttentionInputError`."""
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise AttentionInputError(f"{name} must be an int, got {type(layer).__name__}.")
    if not -num_layers <= layer < num_layers:
        raise AttentionInputError(
            f"{name}={layer} is out of range for attention with {num_layers} layers; use "
            f"0..{num_layers - 1} (or -{num_layers}..-1 from the end)."
        )
    return layer % num_layers
