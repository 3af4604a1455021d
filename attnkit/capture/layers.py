"""Turn per-layer weights collected by either capture route into an `Attentions`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attnkit.attentions import AttentionInputError, Attentions


def stack_layers(layers: Sequence[tuple[str, Tensor]], source: str) -> Tensor:
    """Stack named `(B, H, T, S)` layer weights into `(L, B, H, T, S)`.

    `source` says where the weights came from, for error messages. Raises
    `AttentionInputError` when there are no layers or their shapes differ.
    """
    if not layers:
        raise AttentionInputError(f"no attention weights were captured from {source}.")
    shapes = {name: tuple(weights.shape) for name, weights in layers}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name}: {shape}" for name, shape in shapes.items())
        raise AttentionInputError(
            f"captured layers have different (batch, heads, query, key) shapes ({listing}). "
            "Capture self- and cross-attention, or modules with different head counts, in "
            "separate calls by passing modules=[...] for one group at a time."
        )
    return torch.stack([weights for _, weights in layers])  # (L, B, H, T, S)


def build_attentions(
    weights: Tensor,
    mask: Tensor | None,
    tokens: list[list[str]] | None,
    *,
    kind: str | None = None,
    key_mask: Tensor | None = None,
    extra: dict | None = None,
    layers: Sequence[tuple[str, Tensor]] | None = None,
) -> Attentions:
    """Wrap `(L, B, H, T, S)` weights; `kind` defaults to "self" for square maps, else "cross".

    `Attentions` validates the weights (NaN/inf, rank) and the masks' shapes. `layers` are the
    per-layer tensors the model computed (kept, when they carry a graph, for
    `Attentions.gradient`).
    """
    square = weights.shape[-1] == weights.shape[-2]
    kind = kind or ("self" if square else "cross")
    if mask is not None:
        mask = torch.as_tensor(mask).to(weights.device)
    if key_mask is not None:
        key_mask = torch.as_tensor(key_mask).to(weights.device)
    attentions = Attentions(
        weights, mask=mask, tokens=tokens, kind=kind, key_mask=key_mask, extra=extra or {}
    )
    if layers is not None and weights.requires_grad:
        attentions.graph_layers = tuple(layer for _, layer in layers)
    return attentions


def token_strings(tokenizer: Any | None, input_ids: Tensor | None) -> list[list[str]] | None:
    """Per-example token strings (padding included) of a `(B, T)` id tensor, or None."""
    if tokenizer is None or input_ids is None:
        return None
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    return [tokenizer.convert_ids_to_tokens(row) for row in input_ids.tolist()]
