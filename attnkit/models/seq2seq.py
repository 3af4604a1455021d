"""A small encoder–decoder transformer with a swappable attention normaliser.

The model of Zhang, Titov & Sennrich (2021, ReLA) and Zhao et al. (2019, Explicit Sparse
Transformer) at CPU scale: pre-LayerNorm blocks, learned positions, tied nothing.

    encoder block:  x = x + SelfAttn(LN(x));            x = x + FFN(LN(x))
    decoder block:  y = y + CausalSelfAttn(LN(y));       y = y + CrossAttn(LN(y), enc);
                    y = y + FFN(LN(y))
    attention:      W = normaliser(Q Kᵀ / √d_h, mask);  O = W_o · [norm](combine_heads(W V))

`self_normalizer` (encoder and decoder self-attention) and `cross_normalizer` are any
`attnkit.normalizers` names (`softmax`, `sparsemax`, `entmax15`, `rela`, `topk`), built with
`normalizer_kwargs` (e.g. `{"k": 4}` for top-k). For ReLA, which does not normalise its weights,
the combined heads go through the gated RMS norm (`RMSNormGate`) before the output projection,
as in the authors' `modules/rela.py`; the other normalisers have no such norm.

Every attention module returns `(out, weights)` and keeps the last weights in
`last_attention`, so `attnkit.capture(model, modules=[names ending in "cross_attn"], ...)` finds
it (one kind per call); `Seq2SeqTransformer.attentions(...)` returns
the three kinds (encoder, decoder self, cross) as `attnkit.capture.Seq2SeqAttentions` directly.

Token ids: PAD=0, UNK=1 (from `attnkit.models.vocab`), BOS=3, EOS=4 in a `seq2seq_vocab`.
Sources carry no BOS/EOS (so cross-attention columns are source words, 1:1 with the gold
alignment); targets are `BOS y EOS`, the decoder reads `BOS y` and predicts `y EOS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.capture.seq2seq import Seq2SeqAttentions
from attnkit.models.vocab import PAD_ID, Vocab
from attnkit.normalizers import RMSNormGate, get_normalizer, scaled_dot_product_attention

BOS, EOS = "<bos>", "<eos>"
BOS_ID, EOS_ID = 3, 4


def seq2seq_vocab(token_lists: Iterable[Sequence[str]], *, min_count: int = 1) -> Vocab:
    """A `Vocab` with PAD=0, UNK=1, CLS=2 (unused), BOS=3, EOS=4, then the data's tokens."""
    built = Vocab.build(token_lists, min_count=min_count)
    vocab = Vocab([BOS, EOS, *(t for t in built.itos[3:] if t not in (BOS, EOS))])
    assert vocab.stoi[BOS] == BOS_ID and vocab.stoi[EOS] == EOS_ID
    return vocab


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Architecture of `Seq2SeqTransformer` (defaults: the CLAIMS.md CPU scale-down, 2+2 × 64 × 4)."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    n_head: int = 4
    n_enc_layers: int = 2
    n_dec_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    attn_dropout: float = 0.0
    max_len: int = 64
    self_normalizer: str = "softmax"
    cross_normalizer: str = "softmax"
    normalizer_kwargs: dict[str, Any] = field(default_factory=dict)
    rela_gated: bool = True

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_head", "d_ff", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"Seq2SeqConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_enc_layers < 1 or self.n_dec_layers < 1:
            raise ValueError("Seq2SeqConfig: n_enc_layers and n_dec_layers must be >= 1")
        if self.d_model % self.n_head:
            raise ValueError(
                f"Seq2SeqConfig: d_model ({self.d_model}) must be divisible by n_head "
                f"({self.n_head})."
            )
        for name in ("self_normalizer", "cross_normalizer"):  # fail early on an unknown name
            _build_normalizer(getattr(self, name), self.normalizer_kwargs)


def _build_normalizer(name: str, kwargs: dict[str, Any]) -> nn.Module:
    # normalizer_kwargs are meant for the normaliser that takes them (e.g. k for topk); a
    # softmax self-attention beside a top-k cross-attention ignores them.
    try:
        return get_normalizer(name, **kwargs)
    except ValueError as error:
        if "does not take" not in str(error):
            raise
        return get_normalizer(name)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with a swappable normaliser; `forward -> (out, weights)`.

    `weights` is `(B, H, T, S)`; for ReLA the combined heads pass through `RMSNormGate`.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        normalizer: str = "softmax",
        normalizer_kwargs: dict[str, Any] | None = None,
        attn_dropout: float = 0.0,
        rela_gated: bool = True,
    ) -> None:
        super().__init__()
        self.n_head, self.d_head = n_head, d_model // n_head
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.normalizer = _build_normalizer(normalizer, normalizer_kwargs or {})
        self.normalizer_name = normalizer
        self.dropout = _AttentionDropout(attn_dropout)
        unnormalised = not getattr(self.normalizer, "normalized", True)
        self.out_norm = RMSNormGate(d_model, gated=rela_gated) if unnormalised else None
        self.last_attention: Tensor | None = None

    def _split(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_head, self.d_head).transpose(1, 2)  # (B, H, L, d)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """query `(B, T, D)`, memory `(B, S, D)`, mask bool broadcastable to `(B, H, T, S)`."""
        q, k, v = (
            self._split(self.q_proj(query)),
            self._split(self.k_proj(memory)),
            self._split(self.v_proj(memory)),
        )
        normalizer = (
            self.normalizer
            if not self.training or self.dropout.p == 0
            else self.dropout.wrap(self.normalizer)
        )
        out, weights = scaled_dot_product_attention(q, k, v, mask, normalizer)
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, -1)  # (B, T, D)
        if self.out_norm is not None:
            out = self.out_norm(out)
        self.last_attention = weights.detach()
        return self.out_proj(out), weights


class _AttentionDropout(nn.Module):
    """Dropout on the attention weights (as in both papers' code), applied after normalising."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def wrap(self, normalizer: nn.Module):
        def normalise_then_drop(scores: Tensor, mask: Tensor | None = None) -> Tensor:
            return nn.functional.dropout(normalizer(scores, mask=mask), self.p, training=True)

        normalise_then_drop.dim = -1  # type: ignore[attr-defined]
        return normalise_then_drop


def _ffn(d_model: int, d_ff: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
    )


def _attention(c: Seq2SeqConfig, normalizer: str) -> MultiHeadAttention:
    return MultiHeadAttention(
        c.d_model, c.n_head, normalizer, c.normalizer_kwargs, c.attn_dropout, c.rela_gated
    )


class EncoderLayer(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = config
        self.ln_attn, self.ln_ffn = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.self_attn = _attention(c, c.self_normalizer)
        self.ffn = _ffn(c.d_model, c.d_ff, c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        normed = self.ln_attn(x)
        attended, weights = self.self_attn(normed, normed, mask)
        x = x + self.drop(attended)
        return x + self.drop(self.ffn(self.ln_ffn(x))), weights


class DecoderLayer(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = config
        self.ln_self, self.ln_cross, self.ln_ffn = (nn.LayerNorm(c.d_model) for _ in range(3))
        self.self_attn = _attention(c, c.self_normalizer)
        self.cross_attn = _attention(c, c.cross_normalizer)
        self.ffn = _ffn(c.d_model, c.d_ff, c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(
        self, y: Tensor, memory: Tensor, self_mask: Tensor, cross_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        normed = self.ln_self(y)
        attended, self_weights = self.self_attn(normed, normed, self_mask)
        y = y + self.drop(attended)
        attended, cross_weights = self.cross_attn(self.ln_cross(y), memory, cross_mask)
        y = y + self.drop(attended)
        return y + self.drop(self.ffn(self.ln_ffn(y))), self_weights, cross_weights


class Seq2SeqTransformer(nn.Module):
    """Encoder–decoder transformer; `forward(src_ids, src_mask, tgt_ids, tgt_mask) -> logits`.

    `src_ids (B, S)`, `tgt_ids (B, T)` (decoder input, starting with BOS), masks `(B, ·)` with 1
    for real tokens. Returns `(B, T, tgt_vocab)` next-token logits. `greedy_decode` translates,
    `attentions` captures the weights of every layer.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model, padding_idx=PAD_ID)
        self.src_pos = nn.Embedding(c.max_len, c.d_model)
        self.tgt_pos = nn.Embedding(c.max_len, c.d_model)
        self.encoder_layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.n_enc_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_dec_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)
        self.drop = nn.Dropout(c.dropout)
        self.scale = c.d_model**0.5

    def _check(self, ids: Tensor, mask: Tensor | None, what: str) -> Tensor:
        if ids.dim() != 2:
            raise AttentionInputError(f"{what}_ids must be (batch, length), got {tuple(ids.shape)}")
        if ids.shape[1] > self.config.max_len:
            raise AttentionInputError(
                f"{what} length {ids.shape[1]} exceeds max_len={self.config.max_len}; build the "
                "model with a larger max_len or filter long sentences."
            )
        if ids.shape[1] == 0:
            raise AttentionInputError(f"{what} is empty: every sentence needs at least one token")
        mask = ids.ne(PAD_ID) if mask is None else mask.bool()
        if mask.shape != ids.shape:
            raise AttentionInputError(
                f"{what}_mask shape {tuple(mask.shape)} does not match {what}_ids {tuple(ids.shape)}"
            )
        return mask

    def encode(
        self, src_ids: Tensor, src_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """`(memory (B, S, D), src_mask (B, S) bool, per-layer self-attention weights)`."""
        src_mask = self._check(src_ids, src_mask, "src")
        positions = torch.arange(src_ids.shape[1], device=src_ids.device)
        x = self.drop(self.src_embed(src_ids) * self.scale + self.src_pos(positions))
        key_mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        weights = []
        for layer in self.encoder_layers:
            x, w = layer(x, key_mask)
            weights.append(w)
        return self.enc_ln(x), src_mask, weights

    def decode(
        self, memory: Tensor, src_mask: Tensor, tgt_ids: Tensor, tgt_mask: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """`(logits (B, T, V), per-layer decoder self weights, per-layer cross weights)`."""
        tgt_mask = self._check(tgt_ids, tgt_mask, "tgt")
        length = tgt_ids.shape[1]
        positions = torch.arange(length, device=tgt_ids.device)
        y = self.drop(self.tgt_embed(tgt_ids) * self.scale + self.tgt_pos(positions))
        causal = torch.ones(length, length, dtype=torch.bool, device=tgt_ids.device).tril()
        self_mask = causal[None, None] & tgt_mask[:, None, None, :]  # (B, 1, T, T)
        cross_mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        self_weights, cross_weights = [], []
        for layer in self.decoder_layers:
            y, ws, wc = layer(y, memory, self_mask, cross_mask)
            self_weights.append(ws)
            cross_weights.append(wc)
        return self.generator(self.dec_ln(y)), self_weights, cross_weights

    def forward(
        self,
        src_ids: Tensor,
        tgt_ids: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
    ) -> Tensor:
        memory, src_mask, _ = self.encode(src_ids, src_mask)
        logits, _, _ = self.decode(memory, src_mask, tgt_ids, tgt_mask)
        return logits

    @torch.no_grad()
    def attentions(
        self,
        src_ids: Tensor,
        tgt_ids: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
    ) -> Seq2SeqAttentions:
        """All attention weights of a teacher-forced pass, in eval mode.

        Cross-attention query i is the decoder position reading `tgt_ids[:, i]`, i.e. the one
        that predicts target token i when `tgt_ids` starts with BOS.
        """
        was_training = self.training
        self.eval()
        try:
            memory, src_mask, enc = self.encode(src_ids, src_mask)
            tgt_mask = self._check(tgt_ids, tgt_mask, "tgt")
            _, dec, cross = self.decode(memory, src_mask, tgt_ids, tgt_mask)
        finally:
            self.train(was_training)
        return Seq2SeqAttentions(
            encoder=Attentions(torch.stack(enc), mask=src_mask),
            decoder=Attentions(torch.stack(dec), mask=tgt_mask, kind="decoder_self"),
            cross=Attentions(torch.stack(cross), mask=tgt_mask, kind="cross", key_mask=src_mask),
        )

    @torch.no_grad()
    def greedy_decode(
        self,
        src_ids: Tensor,
        src_mask: Tensor | None = None,
        max_len: int | None = None,
        *,
        stop_at_eos: bool = True,
    ) -> Tensor:
        """Greedy translation `(B, ≤ max_len)` of target ids without BOS; PAD after EOS.

        Recomputes the decoder over the prefix at each step (no incremental cache), the same
        work for every normaliser. `stop_at_eos=False` always runs `max_len` steps, so timings do
        not depend on when a model emits EOS.
        """
        was_training = self.training
        self.eval()
        try:
            memory, src_mask, _ = self.encode(src_ids, src_mask)
            limit = min(max_len or 2 * src_ids.shape[1] + 4, self.config.max_len - 1)
            batch = src_ids.shape[0]
            out = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=src_ids.device)
            finished = torch.zeros(batch, dtype=torch.bool, device=src_ids.device)
            for _ in range(limit):
                logits, _, _ = self.decode(memory, src_mask, out)
                next_ids = logits[:, -1].argmax(-1)
                next_ids = next_ids.masked_fill(finished, PAD_ID)
                out = torch.cat([out, next_ids[:, None]], dim=1)
                finished |= next_ids.eq(EOS_ID)
                if stop_at_eos and bool(finished.all()):
                    break
        finally:
            self.train(was_training)
        return out[:, 1:]


# --------------------------------------------------------------------------- batches


class TranslationCollate:
    """Pairs `(src_tokens, tgt_tokens)` → dict batch for `Seq2SeqTransformer` and the trainer.

    Keys: `src_ids`, `src_mask` `(B, S)`; `tgt_ids`, `tgt_mask` `(B, T)` = BOS y (decoder input);
    `labels` `(B, T)` = y EOS with PAD where there is no token.
    """

    def __init__(self, src_vocab: Vocab, tgt_vocab: Vocab) -> None:
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab

    def __repr__(self) -> str:  # part of the trainer's cache key
        return f"TranslationCollate(src={len(self.src_vocab)}, tgt={len(self.tgt_vocab)})"

    def __call__(self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict[str, Tensor]:
        if len(pairs) == 0:
            raise ValueError("TranslationCollate: empty batch")
        if any(len(source) == 0 for source, _ in pairs):
            raise ValueError("TranslationCollate: a source sentence is empty")
        src_ids, src_mask = self.src_vocab.encode([s for s, _ in pairs], add_cls=False)
        tgt_ids, tgt_mask = self.tgt_vocab.encode([[BOS, *y] for _, y in pairs], add_cls=False)
        labels, _ = self.tgt_vocab.encode([[*y, EOS] for _, y in pairs], add_cls=False)
        return {
            "src_ids": src_ids,
            "src_mask": src_mask.bool(),
            "tgt_ids": tgt_ids,
            "tgt_mask": tgt_mask.bool(),
            "labels": labels,
        }


def translation_loss(
    model: nn.Module, batch: dict[str, Tensor], label_smoothing: float = 0.0
) -> Tensor:
    """Mean token cross-entropy of teacher-forced logits over non-PAD labels."""
    logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_mask"], batch["tgt_mask"])
    return nn.functional.cross_entropy(
        logits.flatten(0, 1),
        batch["labels"].flatten(),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
    )


@torch.no_grad()
def token_accuracy(model: nn.Module, batch: dict[str, Tensor]) -> tuple[int, int]:
    """`(correct, total)` teacher-forced next-token predictions over non-PAD labels (EOS included)."""
    logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_mask"], batch["tgt_mask"])
    real = batch["labels"].ne(PAD_ID)
    return int((logits.argmax(-1).eq(batch["labels"]) & real).sum()), int(real.sum())


def strip_special(ids: Sequence[int] | Tensor, vocab: Vocab) -> list[str]:
    """Decoded tokens up to the first EOS, without PAD/BOS."""
    ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
    out = []
    for i in ids:
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(vocab.itos[i])
    return out
