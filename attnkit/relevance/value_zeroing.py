"""Value zeroing (Mohebbi, Zuidema, Chrupała & Alishahi 2023, "Quantifying Context Mixing in
Transformers", EACL, §2).

For layer l and token j, the layer is re-run with j's value vector zeroed in every head (the
attention weights are kept); the score of j for token i is how far token i's output moved:

    x̃_i^{¬j} = layer_l(x) with v_j^h := 0 for every head h                  # (D,)
    VZ_l[i, j] = 1 − cos(x̃_i, x̃_i^{¬j})     (cosine distance, the whole layer output)
    rows normalised to sum to 1 over real tokens                            # (L, B, T, T)

Batched: the T alterations of a layer run as one batch. With A the attention and v the values,
zeroing v_j changes each head's mix by a rank-one term, A v − A[:, j] v_jᵀ, so the alterations
share the attention matmul; the output projection, LayerNorms and FFN then run on a
(chunk, B, T, D) batch (`chunk_size` alterations at a time, default sized to ~16 MB: larger chunks measured slower).

The paper aggregates with rollout (no extra identity); `contribution_rollout(vz, mask,
residual=0.0)` does that. Padding: rows and columns of padding tokens are 0, and only real tokens
are zeroed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.relevance._encoder import (
    EncoderLayer,
    RelevanceInputError,
    encoder_layers,
    normalize_rows,
    real_pairs,
    record,
)

_CHUNK_ELEMENTS = 2**22  # float32 elements of the widest (chunk, B, T, 4D) FFN activation (16 MB)


@torch.no_grad()
def value_zeroing(
    model: nn.Module, inputs: Mapping[str, Any], *, chunk_size: int | None = None
) -> Tensor:
    """Value-zeroing context mixing of every layer (Mohebbi et al. 2023).

    Args:
        model: a supported encoder (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        chunk_size: alterations (zeroed tokens) per batched pass; default fits ~16 MB.

    Returns:
        (L, B, T, T): row i of [l, b] is how much zeroing each token's value moves token i's
        output of layer l, rows summing to 1 over real tokens, 0 at padding.
    """
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise RelevanceInputError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    _, layers = encoder_layers(model)
    recorded = record(model, inputs)
    mask = recorded.mask
    pairs = real_pairs(mask, recorded.inputs[0].dtype)  # (B, T, T)
    out = [
        normalize_rows(_layer_distances(layer, x, attn, chunk_size) * pairs)
        for layer, x, attn in zip(layers, recorded.inputs, recorded.attentions, strict=True)
    ]
    return torch.stack(out)


def _layer_distances(
    layer: EncoderLayer, x: Tensor, attn: Tensor, chunk_size: int | None
) -> Tensor:
    """(B, T, T): cosine distance of every output token i when token j's value is zeroed."""
    B, T, D = x.shape
    values = layer.values(x)  # (B, H, T, Dh)
    mixed = attn @ values  # (B, H, T, Dh)
    original = layer.ffn_block(layer.attention_output(layer.residual_sum(x, mixed)))  # (B, T, D)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (B * T * 4 * D))
    distances = torch.empty(B, T, T, dtype=x.dtype, device=x.device)  # [b, i, j]
    for start in range(0, T, chunk_size):
        js = torch.arange(start, min(start + chunk_size, T), device=x.device)  # (J,)
        # A v − A[:, :, :, j] v_j: (J, B, H, T, Dh)
        removed = (
            attn[..., js].permute(3, 0, 1, 2)[..., None]
            * values[:, :, js].permute(2, 0, 1, 3)[:, :, :, None, :]
        )
        altered = layer.ffn_block(
            layer.attention_output(layer.residual_sum(x, mixed - removed))
        )  # (J, B, T, D)
        distances[:, :, js] = cosine_distance(altered, original).permute(1, 2, 0)  # (B, T, J)
    return distances


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 − cos(a, b) over the last axis, as ½‖a/‖a‖ − b/‖b‖‖²: no cancellation for nearly equal
    vectors, where 1 − cos in float32 loses most digits (value zeroing's distances are often ~1e-4).
    """
    return 0.5 * (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).square().sum(-1)
