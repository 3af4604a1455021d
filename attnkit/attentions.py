"""The `Attentions` container and the input checks every attention method shares.

Shapes used throughout the package:

    L  layers      B  batch      H  heads      T  query positions      S  key positions

Self-attention has T == S. A padding mask is `(B, T)` with 1 (or True) for a real token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attnkit.errors import AttnkitError

KINDS = ("self", "decoder_self", "cross")  # Attentions.kind


class AttentionInputError(AttnkitError):
    """Attention weights or a mask that a method cannot work with; the message says how to fix it."""


def check_weights(weights: Tensor, *, square: bool = True, name: str = "attention") -> Tensor:
    """Validate attention weights shaped `(L, B, H, T, S)` and return them unchanged.

    Raises `AttentionInputError` for a tensor of the wrong rank, non-square maps (when `square`),
    an empty sequence, or NaN/inf values.
    """
    if not isinstance(weights, Tensor):
        raise AttentionInputError(
            f"{name} must be a torch.Tensor shaped (layers, batch, heads, query, key) or an "
            f"attnkit.Attentions, got {type(weights).__name__}. Wrap a per-layer tuple with "
            "Attentions.from_bertviz(...)."
        )
    if weights.dim() != 5:
        raise AttentionInputError(
            f"{name} must have 5 dimensions (layers, batch, heads, query, key), got shape "
            f"{tuple(weights.shape)}. A single layer (batch, heads, T, T) needs .unsqueeze(0); "
            "a bertviz tuple needs Attentions.from_bertviz(...)."
        )
    if not weights.is_floating_point():
        raise AttentionInputError(
            f"{name} must hold floating-point probabilities, got dtype {weights.dtype}; "
            "convert hard (0/1) maps with .float() and normalise their rows."
        )
    layers, batch, heads, queries, keys = weights.shape
    if min(layers, batch, heads) == 0 or queries == 0 or keys == 0:
        raise AttentionInputError(
            f"{name} is empty (shape {tuple(weights.shape)}): every sequence needs at least one "
            "token and there must be at least one layer, example and head."
        )
    if square and queries != keys:
        raise AttentionInputError(
            f"{name} maps must be square self-attention (query == key length), got {queries}x{keys}. "
            "Rollout and flow chain self-attention layers; pass encoder or decoder self-attention, "
            "not cross-attention."
        )
    # One reduction first: a NaN or inf anywhere makes the sum non-finite, and summing is far
    # cheaper than an elementwise isfinite mask on a large attention tensor. Only then look
    # element by element (which also rules out a sum that merely overflowed).
    if not torch.isfinite(weights.sum()) and not torch.isfinite(weights).all():
        bad = (~torch.isfinite(weights)).nonzero()[0].tolist()
        raise AttentionInputError(
            f"{name} contains NaN or inf (first at index {bad} of (layer, batch, head, query, key)). "
            "Check the model's forward pass; a fully masked row under softmax gives NaN — use a "
            "normaliser from attnkit.normalizers, which returns zeros for such rows."
        )
    return weights


def check_mask(mask: Tensor | None, batch: int, length: int) -> Tensor:
    """Return a boolean `(B, T)` mask (True = real token); all-True when `mask` is None."""
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool)
    mask = torch.as_tensor(mask)
    if mask.shape != (batch, length):
        raise AttentionInputError(
            f"padding mask must have shape (batch, tokens) = ({batch}, {length}), got "
            f"{tuple(mask.shape)}. Pass the tokenizer's attention_mask for the same batch."
        )
    mask = mask.bool()
    if not mask.any(dim=1).all():
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise AttentionInputError(
            f"examples {empty} have no real tokens in the padding mask (an empty sequence); "
            "drop them from the batch."
        )
    return mask


def check_row_stochastic(
    matrices: Tensor, mask: Tensor, *, atol: float = 1e-3, name: str = "attention"
) -> None:
    """Check that rows of real query positions sum to 1 over real keys.

    `matrices` is `(L, B, H, T, T)`, `mask` a boolean `(B, T)`.
    """
    real_keys = mask[None, :, None, None, :]  # (1, B, 1, 1, T)
    row_sums = (matrices * real_keys).sum(-1)  # (L, B, H, T)
    real_rows = mask[None, :, None, :].expand_as(row_sums)
    deviation = (row_sums - 1).abs().masked_fill(~real_rows, 0)
    if deviation.max() > atol:
        where = (deviation == deviation.max()).nonzero()[0].tolist()
        raise AttentionInputError(
            f"{name} rows must sum to 1 over real tokens, but the row at (layer, batch, head, "
            f"query) = {where} sums to {row_sums[tuple(where)].item():.4f}. Pass probabilities "
            "(softmax output), not scores, or set renormalize=True where the method offers it."
        )


@dataclass
class Attentions:
    """Attention weights of every layer of a model for one batch.

    Attributes:
        weights: `(L, B, H, T, S)` attention probabilities; rows are queries, columns keys.
        mask: `(B, T)` bool, True for real tokens (padding is False). For cross-attention this
            is the query-side mask and `key_mask` the key side.
        tokens: per example, the token strings (padding included) when known.
        kind: "self", "decoder_self" or "cross".
        key_mask: `(B, S)` bool, only when keys differ from queries (cross-attention).
        extra: what the capture knows besides (hooked module names, a wrapped model's name,
            cross-attention of a decoder); kept by slicing and `.to()`.

    `capture(..., grad=True)` also keeps `graph_layers`, the per-layer tensors the model used,
    for `gradient(output)`; slicing, `.to()` or rebuilding drops them.
    """

    weights: Tensor
    mask: Tensor | None = None
    tokens: list[list[str]] | None = None
    kind: str = "self"
    key_mask: Tensor | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AttentionInputError(
                f"unknown attention kind {self.kind!r}; use one of {', '.join(map(repr, KINDS))}."
            )
        check_weights(self.weights, square=self.kind != "cross")
        _, batch, _, queries, keys = self.weights.shape
        self.mask = check_mask(self.mask, batch, queries).to(self.weights.device)
        if self.kind == "cross" or self.key_mask is not None:
            self.key_mask = check_mask(self.key_mask, batch, keys).to(self.weights.device)
        if self.tokens is not None and len(self.tokens) != batch:
            raise AttentionInputError(
                f"tokens has {len(self.tokens)} examples but the weights have batch size {batch}; "
                "pass one token list per example (padding included), or tokens=None."
            )

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[2]

    def __len__(self) -> int:
        return self.weights.shape[1]

    def __repr__(self) -> str:
        L, B, H, T, S = self.weights.shape
        lengths = self.mask.sum(1).tolist()
        shown = ", ".join(map(str, lengths[:8])) + (", ..." if B > 8 else "")
        parts = [
            f"kind={self.kind!r}",
            f"layers={L}, batch={B}, heads={H}, queries={T}" + (f", keys={S}" if S != T else ""),
            f"real tokens=[{shown}]",
            f"dtype={str(self.weights.dtype).replace('torch.', '')}",
            f"device={self.weights.device}",
        ]
        if self.weights.requires_grad:
            parts.append("requires_grad=True")
        if self.tokens is not None:
            first = self.real_tokens(0) or []
            preview = " ".join(first[:8]) + (" ..." if len(first) > 8 else "")
            parts.append(f"tokens[0]={preview!r}")
        if self.extra:
            parts.append(f"extra={sorted(self.extra)}")
        return f"Attentions({', '.join(parts)})"

    def __getitem__(self, index: int | slice) -> Attentions:
        """Select examples of the batch (keeps the batch dimension); `extra` is kept."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Attentions(
            weights=self.weights[:, index],
            mask=self.mask[index],
            tokens=self.tokens[index] if self.tokens is not None else None,
            kind=self.kind,
            key_mask=self.key_mask[index] if self.key_mask is not None else None,
            extra=_map_extra(self.extra, lambda value: value[index]),
        )

    def real_tokens(self, example: int = 0) -> list[str] | None:
        """Token strings of one example without padding."""
        if self.tokens is None:
            return None
        keep = self.mask[example].tolist()
        return [tok for tok, real in zip(self.tokens[example], keep, strict=False) if real]

    def to(self, device: str | torch.device) -> Attentions:
        """The same attention on `device` (`extra` kept, nested `Attentions` moved too)."""
        return Attentions(
            self.weights.to(device),
            self.mask.to(device),
            self.tokens,
            self.kind,
            None if self.key_mask is None else self.key_mask.to(device),
            extra=_map_extra(self.extra, lambda value: value.to(device)),
        )

    def gradient(self, output: Tensor, grad_output: Tensor | None = None) -> Tensor:
        """d output / d weights, `(L, B, H, T, S)`, for attention captured with `grad=True`.

        `output` is a scalar (or give `grad_output` of its shape) computed by the same forward
        pass. Needs the per-layer tensors the model itself used (`graph_layers`): Hugging Face
        models, modules that return or store the weights they apply, and the SDPA route keep
        them; `nn.MultiheadAttention` returns a reshaped copy, which is not in the graph.
        """
        layers = getattr(self, "graph_layers", None)
        if layers is None:
            raise AttentionInputError(
                "gradient() needs the attention of capture(model, grad=True, ...) itself: "
                "slicing, .to() or building Attentions by hand keeps no graph. Capture again "
                "with grad=True and call gradient on the result."
            )
        grads = torch.autograd.grad(
            output, layers, grad_outputs=grad_output, retain_graph=True, allow_unused=True
        )
        unused = [index for index, grad in enumerate(grads) if grad is None]
        if unused:
            raise AttentionInputError(
                f"the output does not depend on the captured weights of layers {unused}: the "
                "module returned a copy of the weights it used (nn.MultiheadAttention reshapes "
                "them), or the output was computed without them. Rollout of the weights is still "
                "differentiable w.r.t. the inputs and parameters."
            )
        return torch.stack(grads)  # (L, B, H, T, S)

    # bertviz exchanges attention as a tuple with one (B, H, T, S) tensor per layer.
    def to_bertviz(self, example: int | None = None) -> tuple[Tensor, ...]:
        """Per-layer tuple of `(B, H, T, S)` tensors, the format bertviz and HF models use.

        `example=i` gives that example alone, `(1, H, n, m)` with its padding rows and columns
        removed, so it lines up with `real_tokens(i)` (bertviz needs one label per position).
        """
        if example is None:
            return tuple(layer for layer in self.weights)
        if not -len(self) <= example < len(self):
            raise AttentionInputError(
                f"example={example} is out of range for a batch of {len(self)}; use "
                f"0..{len(self) - 1}."
            )
        queries = self.mask[example]
        keys = queries if self.key_mask is None else self.key_mask[example]
        one = self.weights[:, example][:, :, queries][:, :, :, keys]  # (L, H, n, m)
        return tuple(layer.unsqueeze(0) for layer in one)

    @classmethod
    def from_bertviz(
        cls,
        layers: Sequence[Tensor],
        mask: Tensor | None = None,
        tokens: list[list[str]] | list[str] | None = None,
        kind: str = "self",
    ) -> Attentions:
        """Build from a per-layer tuple of `(B, H, T, S)` (or unbatched `(H, T, S)`) tensors."""
        if len(layers) == 0:
            raise AttentionInputError(
                "no attention layers given; did the model run with output_attentions=True and "
                "eager attention?"
            )
        layers = [torch.as_tensor(layer) for layer in layers]
        if layers[0].dim() == 3:
            layers = [layer.unsqueeze(0) for layer in layers]
        shapes = {tuple(layer.shape) for layer in layers}
        if len(shapes) != 1:
            raise AttentionInputError(
                f"all layers must have the same (batch, heads, query, key) shape, got {sorted(shapes)}."
            )
        if tokens is not None and tokens and isinstance(tokens[0], str):
            tokens = [list(tokens)]
        return cls(torch.stack(layers), mask=mask, tokens=tokens, kind=kind)


def _map_extra(extra: dict, batched: Callable[[Any], Any]) -> dict:
    """`extra` with `batched` applied to nested `Attentions` (other values are shared)."""
    return {
        name: batched(value) if isinstance(value, Attentions) else value
        for name, value in extra.items()
    }


@dataclass
class Seq2SeqAttentions:
    """Attention of an encoder–decoder model for one batch.

    Attributes:
        encoder: encoder self-attention, weights `(L_enc, B, H, S, S)`, mask = encoder mask.
        decoder: decoder (causal) self-attention, weights `(L_dec, B, H, T, T)`,
            kind "decoder_self", mask = decoder mask.
        cross: decoder-to-encoder attention, weights `(L_dec, B, H, T, S)`, kind "cross",
            mask = decoder mask, key_mask = encoder mask.
    """

    encoder: Attentions
    decoder: Attentions
    cross: Attentions

    def __len__(self) -> int:
        return len(self.encoder)

    def parts(self) -> list[Attentions]:
        """[encoder, decoder, cross]."""
        return [self.encoder, self.decoder, self.cross]

    def __getitem__(self, index: int | slice) -> Seq2SeqAttentions:
        """Select examples of the batch in all three parts."""
        return Seq2SeqAttentions(self.encoder[index], self.decoder[index], self.cross[index])

    def to(self, device: str | torch.device) -> Seq2SeqAttentions:
        return Seq2SeqAttentions(
            self.encoder.to(device), self.decoder.to(device), self.cross.to(device)
        )

    def __repr__(self) -> str:
        return (
            f"Seq2SeqAttentions(\n  encoder={self.encoder!r},\n  decoder={self.decoder!r},\n"
            f"  cross={self.cross!r})"
        )

    def to_bertviz(self, example: int | None = None) -> dict[str, tuple[Tensor, ...]]:
        """Keyword arguments for `bertviz.model_view` / `head_view` (per-layer `(B, H, T, S)`
        tuples); `example=i` trims that example's padding as `Attentions.to_bertviz` does."""
        return {
            "encoder_attention": self.encoder.to_bertviz(example),
            "decoder_attention": self.decoder.to_bertviz(example),
            "cross_attention": self.cross.to_bertviz(example),
        }


def as_weights_and_mask(
    attn: Attentions | Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Accept an `Attentions` or a bare `(L, B, H, T, T)` tensor; return checked weights and mask.

    Propagation chains self-attention layers, so an encoder–decoder's `Seq2SeqAttentions` or
    its cross-attention is refused with the part to pass instead.
    """
    if isinstance(attn, Seq2SeqAttentions):
        raise AttentionInputError(
            "rollout and flow chain one stack of self-attention layers, got Seq2SeqAttentions "
            "(encoder, decoder and cross-attention). Pass attn.encoder for the source tokens or "
            "attn.decoder for the target tokens; cross-attention (attn.cross) is not chained."
        )
    if isinstance(attn, Attentions) and attn.kind == "cross":
        L, B, H, T, S = attn.weights.shape
        raise AttentionInputError(
            f"rollout and flow chain self-attention layers, got cross-attention ({T} target x "
            f"{S} source positions). Pass the encoder's (attn.encoder) or the decoder's "
            "(attn.decoder) self-attention of the Seq2SeqAttentions instead."
        )
    if isinstance(attn, Attentions):
        if mask is not None:
            raise AttentionInputError(
                "pass the padding mask either inside the Attentions or as mask=, not both."
            )
        return attn.weights, attn.mask
    weights = check_weights(attn)
    _, batch, _, length, _ = weights.shape
    return weights, check_mask(mask, batch, length).to(weights.device)
