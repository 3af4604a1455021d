"""A 1–2 layer transformer text classifier with a swappable attention normaliser (Meister et al. 2021).

    e = Embedding(x)                                   (B, T, E), PAD embedding fixed at 0
    h = TransformerEncoder(e + positions, mask)        (B, T, H), n_layer pre-LN blocks whose
                                                       self-attention uses the normaliser
    α = normaliser(vᵀ tanh(W h + b), mask)             (B, T) additive attention over h
    logits = head(Σ_t α_t h_t)

It is `attnkit.models.AdditiveClassifier` with its token encoder swapped for a transformer
(composition: the additive attention, head, imposed attention, `embed / encode / attend /
decode` steps and `get_input_embeddings` are the additive model's), so the BiLSTM and the
transformer are analysed by the same code. The normaliser (`softmax`, `sparsemax`,
`entmax15`, ...) is used both in self-attention and in the pooling attention; build with
`transformer_classifier(AdditiveConfig(..., normalizer="sparsemax"), n_layer=1, n_head=2)`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.seq2seq import MultiHeadAttention


class TransformerBlock(nn.Module):
    """Pre-LN block: x + SelfAttn(LN(x)), then x + FFN(LN(x)); self-attention via `MultiHeadAttention`."""

    def __init__(self, d_model: int, n_head: int, normalizer: str, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.ln_attn, self.ln_ffn = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_head, normalizer, kwargs)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Linear(2 * d_model, d_model)
        )

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        normed = self.ln_attn(x)
        x = x + self.self_attn(normed, normed, key_mask)[0]
        return x + self.ffn(self.ln_ffn(x))


class TransformerTokenEncoder(nn.Module):
    """`(B, T, E), (B, T) -> (B, T, hidden_size)`, exactly 0 at padding (the encoder contract
    of `attnkit.models.encoders`). Learned positions, `n_layer` blocks, final LayerNorm."""

    def __init__(
        self,
        embed_dim: int,
        hidden_size: int,
        *,
        n_layer: int = 1,
        n_head: int = 2,
        normalizer: str = "softmax",
        normalizer_kwargs: dict[str, Any] | None = None,
        max_len: int = 512,
    ) -> None:
        super().__init__()
        if hidden_size % n_head:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by n_head ({n_head})")
        if n_layer < 1:
            raise ValueError(f"n_layer must be >= 1, got {n_layer}")
        self.input = nn.Linear(embed_dim, hidden_size)
        self.positions = nn.Embedding(max_len, hidden_size)
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_size, n_head, normalizer, normalizer_kwargs or {})
            for _ in range(n_layer)
        )
        self.final_ln = nn.LayerNorm(hidden_size)
        self.output_size = hidden_size
        self.max_len = max_len

    def forward(self, embeds: Tensor, mask: Tensor) -> Tensor:
        length = embeds.shape[1]
        if length > self.max_len:
            raise ValueError(
                f"sequence of {length} tokens exceeds the encoder's max_len={self.max_len}; "
                "truncate in the collate (AdditiveCollate(vocab, max_len, truncate=True))."
            )
        mask = mask.bool()
        x = self.input(embeds) + self.positions(torch.arange(length, device=embeds.device))
        key_mask = mask[:, None, None, :]  # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, key_mask)
        return self.final_ln(x) * mask[..., None].to(x.dtype)  # 0 at padding


def transformer_classifier(
    config: AdditiveConfig,
    *,
    n_layer: int = 1,
    n_head: int = 2,
    max_len: int = 512,
    self_normalizer: str | None = None,
) -> AdditiveClassifier:
    """An `AdditiveClassifier` whose encoder is a `TransformerTokenEncoder`.

    `config.hidden_size` is the transformer width; `config.normalizer` is used for the pooling
    attention and, unless `self_normalizer` is given, for self-attention too.
    """
    base = replace(config, encoder="average")  # builds the right-sized attention and head
    model = AdditiveClassifier(base)
    model.encoder = TransformerTokenEncoder(
        config.embed_dim,
        config.hidden_size,
        n_layer=n_layer,
        n_head=n_head,
        normalizer=self_normalizer or config.normalizer,
        normalizer_kwargs=config.normalizer_kwargs,
        max_len=max_len,
    )
    # In the repr, hence in the trainer's cache key.
    model.extra_repr = lambda: (  # type: ignore[method-assign]
        f"encoder=transformer(n_layer={n_layer}, n_head={n_head}, "
        f"self={self_normalizer or config.normalizer}), normalizer={config.normalizer}, "
        f"head={config.head}, n_classes={config.n_classes}"
    )
    return model
