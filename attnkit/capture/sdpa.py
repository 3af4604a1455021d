"""SDPA route: capture modules that call `F.scaled_dot_product_attention` (timm, most new code).

A fused attention kernel returns no weights, so for the duration of the call
`torch.nn.functional.scaled_dot_product_attention` is replaced by a function that computes them
from its own arguments, the way the kernel defines them:

    scores = q kᵀ · scale + bias          scale = 1/√E unless given                  # (B, H, T, S)
    bias   = 0 where attn_mask is True (bool) / attn_mask (float) / -inf above the diagonal (is_causal)
    A      = softmax(scores)  over the keys                                           # (B, H, T, S)
    output = A v                                                                      # (B, H, T, E_v)

`enable_gqa=True` repeats each key/value head over its group of query heads, as the kernel does.
The output is computed from A itself, so with `capture(grad=True)` the weights are in the
autograd graph. `dropout_p` is ignored: capture runs the model in eval mode, and the weights are
the pre-dropout probabilities (as Hugging Face models return them). Each call is one layer, in
call order. Only calls made through the module attribute (`F.scaled_dot_product_attention(...)`)
are seen; a name imported with `from torch.nn.functional import scaled_dot_product_attention`
before the capture keeps pointing at the fused kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.attentions import AttentionInputError


def attention_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(q kᵀ · scale + bias) as `F.scaled_dot_product_attention` defines it, `(..., T, S)`."""
    if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(groups, dim=-3)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale  # (..., T, S)
    queries, keys = scores.shape[-2:]
    if is_causal:
        allowed = torch.ones(queries, keys, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return torch.softmax(scores, dim=-1)


class SdpaRecorder:
    """Context manager; `layers` holds `(name, (B, H, T, S))` for every SDPA call in the block."""

    def __init__(self) -> None:
        self.layers: list[tuple[str, Tensor]] = []
        self._original = F.scaled_dot_product_attention

    def _call(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> Tensor:
        weights = attention_weights(query, key, attn_mask, is_causal, scale, enable_gqa)
        if enable_gqa and value.dim() >= 3 and value.shape[-3] != query.shape[-3]:
            value = value.repeat_interleave(query.shape[-3] // value.shape[-3], dim=-3)
        output = torch.matmul(weights, value)  # (..., T, E_v), from the recorded weights
        if weights.dim() == 3:  # (B, T, S): one head
            weights = weights.unsqueeze(1)
        elif weights.dim() == 2:  # (T, S): unbatched, one head
            weights = weights[None, None]
        elif weights.dim() > 4:  # extra batch dims: fold them into the batch
            weights = weights.reshape(-1, *weights.shape[-3:])
        self.layers.append((f"scaled_dot_product_attention[{len(self.layers)}]", weights))
        return output

    def __enter__(self) -> SdpaRecorder:
        F.scaled_dot_product_attention = self._call
        return self

    def __exit__(self, *exc: object) -> None:
        F.scaled_dot_product_attention = self._original


def check_sdpa_recorded(recorder: SdpaRecorder, model_name: str, hint: str) -> None:
    """Raise when no SDPA call was seen (nothing at all could be captured)."""
    if not recorder.layers:
        raise AttentionInputError(
            f"no attention modules found in {model_name}, and its forward called no "
            f"F.scaled_dot_product_attention. {hint}"
        )
