"""`Seq2SeqAttentions`: the three attention kinds of an encoder–decoder model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from attnkit.attentions import Attentions


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

    def to_bertviz(self) -> dict[str, tuple[Tensor, ...]]:
        """Keyword arguments for `bertviz.model_view` / `head_view` (per-layer `(B, H, T, S)` tuples)."""
        return {
            "encoder_attention": self.encoder.to_bertviz(),
            "decoder_attention": self.decoder.to_bertviz(),
            "cross_attention": self.cross.to_bertviz(),
        }
