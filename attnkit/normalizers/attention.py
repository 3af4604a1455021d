"""Scaled dot-product attention with a swappable normaliser, returning the weights for capture."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError
from attnkit.normalizers.softmax import softmax

Normalizer = Callable[..., Tensor]  # f(scores, mask=None) normalising over the last dim


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    normalizer: Normalizer | nn.Module | str | None = None,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Attention(Q, K, V) = W V with W = normalizer(Q Kᵀ · scale, mask).

    Args:
        q: queries `(B, H, T, D)` (any leading dims, the same for q, k, v).
        k: keys `(B, H, S, D)`.
        v: values `(B, H, S, Dv)`.
        mask: boolean, True = attend, broadcastable to `(B, H, T, S)`: a causal mask `(T, S)`,
            a padding mask as `mask[:, None, None, :]` from `(B, S)`.
        normalizer: any normaliser of this package (module, function, or registered name);
            default softmax. It normalises over the last (key) dimension.
        scale: score scale; default 1/√D.

    Returns:
        `(out, weights)`: out `(B, H, T, Dv)`, weights `(B, H, T, S)`. Queries with no attendable
        key get zero weights and a zero output. For ReLA, apply `RMSNormGate` to the output after
        combining heads (as Zhang et al. do); this function does not.
    """
    if isinstance(normalizer, str):
        from attnkit.normalizers.registry import get_normalizer  # the registry imports this package

        normalizer = get_normalizer(normalizer)
    if normalizer is None:
        normalizer = softmax
    _check_qkv(q, k, v)
    norm_dim = getattr(normalizer, "dim", -1)
    if norm_dim not in (-1, q.dim() - 1):
        raise AttentionInputError(
            f"scaled_dot_product_attention: the normalizer must work over the last (key) "
            f"dimension, but {normalizer!r} has dim={norm_dim}; build it with dim=-1."
        )
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, H, T, S)
    if mask is not None and isinstance(mask, Tensor):
        try:
            fits = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise AttentionInputError(
                f"scaled_dot_product_attention: mask of shape {tuple(mask.shape)} does not "
                f"broadcast to the scores (B, H, T, S) = {tuple(scores.shape)}. A (batch, key) "
                "padding mask goes in as mask[:, None, None, :]; a (batch, query, key) mask as "
                "mask[:, None]."
            )
    weights = normalizer(scores, mask=mask)  # (B, H, T, S)
    out = torch.matmul(weights, v)  # (B, H, T, Dv)
    return out, weights


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for label, tensor in (("q", q), ("k", k), ("v", v)):
        if not isinstance(tensor, Tensor) or tensor.dim() < 2:
            raise AttentionInputError(
                f"scaled_dot_product_attention: {label} must be a tensor shaped (B, H, length, "
                f"dim), got {getattr(tensor, 'shape', type(tensor).__name__)}."
            )
    if q.shape[-1] != k.shape[-1]:
        raise AttentionInputError(
            f"scaled_dot_product_attention: q and k need the same feature size, got q "
            f"{tuple(q.shape)} and k {tuple(k.shape)}."
        )
    if k.shape[-2] != v.shape[-2]:
        raise AttentionInputError(
            f"scaled_dot_product_attention: k and v need the same number of keys, got k "
            f"{tuple(k.shape)} and v {tuple(v.shape)}."
        )
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise AttentionInputError(
            "scaled_dot_product_attention: q, k and v need the same leading (batch, head) "
            f"dimensions, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}."
        )
