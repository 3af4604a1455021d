"""Lopardo, Precioso & Garreau's (2024) single-layer multi-head attention classifier.

"Attention Meets Post-hoc Interpretability: A Mathematical Perspective" (ICML 2024) studies a
model small enough that its gradient and its LIME coefficients have closed forms. With the
document w_1..w_{T-1} behind a [CLS] token w_0, embeddings plus sinusoidal positions

    e_t = E[w_t] + p_t                                            (B, T, d_in)

and H independent single-head attentions (no bias anywhere), head h reads only the CLS query:

    q   = e_0 W_q^h                   k_t = e_t W_k^h             v_t = e_t W_v^h
    α_t = softmax_t(q · k_t / √d_attn)                            (attention of the CLS query)
    f_h = (Σ_t α_t v_t) W_ℓ^h                                     (head logits, C classes)
    f   = (1/H) Σ_h f_h                                           (model logits)

There is no residual, feed-forward block, layer norm or output softmax: `f` is raw logits.
Row-vector convention: W_q, W_k: d_in -> d_attn, W_v: d_in -> d_out, W_ℓ: d_out -> C.
The paper's sizes (authors' `params.py`) are the `full` profile: H = 6, d_in = 128,
d_attn = d_out = 64, MAX_LEN = 256. Their heads are initialised U(-0.1, 0.1) and the token
embedding keeps torch's N(0, 1) default; so do we.

Padding (`LopardoConfig.padding`). The authors pad every document to MAX_LEN with UNK and do
not mask it, so padding takes attention (their `process_text`; `padding="unk"`). Our default,
`padding="masked"`, gives padding α_t = 0, so a document's output does not depend on how much
padding shares its batch. Under `"unk"` the model reads every PAD id as UNK and attends to every
position, and inputs must be exactly `max_len` long (`lopardo_collate(..., padding="unk")` and
`pad_to_max_len` pad them); `attention_mask` still says which positions are the document's
words (LIME's features, the CLS and empty-document checks), not which ones are attended.

Input handling:
* too long: `lopardo_collate` (like the paper's `process_text`) keeps the first `max_len`
  tokens, CLS included, and warns; `forward` itself raises `ValueError` on longer input.
* empty document (CLS only, or nothing): `ValueError` naming the examples.
* unknown words: `Vocab.encode` maps them to UNK (id 1), the token LIME uses for removal.

Training with `attnkit.train.fit`::

    vocab = Vocab.build(tokens for tokens, _ in train)           # train: (tokens, label) pairs
    model = LopardoClassifier(LopardoConfig.profile("quick", vocab_size=len(vocab)))
    fit(model, train, dev, loss_fn=cross_entropy_loss, metric_fn=accuracy,
        collate=lopardo_collate(vocab, model.config.max_len), config=TrainConfig(...))

The authors trained with AdamW (torch's default weight decay 0.01), lr 1e-4, batch 16, 10 epochs:
`TrainConfig(optimizer="adamw", weight_decay=0.01, lr=1e-4, batch_size=16, epochs=10)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.models.vocab import CLS_ID, PAD_ID, UNK_ID, ClassificationCollate, Vocab

Padding = Literal["masked", "unk"]
PADDINGS = ("masked", "unk")

# Sizes per notebook profile. `full` is the paper's; `quick` keeps its widths with shorter
# documents (CLAIMS.md §7 "Faithful CPU scale-down": MAX_LEN 64-128); `smoke` is for CI.
PROFILES: dict[str, dict[str, int]] = {
    "smoke": dict(max_len=32, n_head=2, d_in=16, d_attn=8, d_out=8),
    "quick": dict(max_len=128, n_head=6, d_in=128, d_attn=64, d_out=64),
    "full": dict(max_len=256, n_head=6, d_in=128, d_attn=64, d_out=64),
}


@dataclass(frozen=True)
class LopardoConfig:
    """Sizes of the model; the defaults are the paper's (`full` profile).

    `max_len` counts the CLS token. `init_range`: heads start U(-init_range, init_range).
    `padding`: "masked" (ours: padding takes no attention) or "unk" (the authors': inputs are
    padded to `max_len` with UNK, which takes part in attention; see the module docstring).
    """

    vocab_size: int
    max_len: int = 256
    n_head: int = 6
    d_in: int = 128
    d_attn: int = 64
    d_out: int = 64
    n_classes: int = 2
    init_range: float = 0.1
    pad_id: int = PAD_ID
    cls_id: int = CLS_ID
    unk_id: int = UNK_ID
    padding: Padding = "masked"

    def __post_init__(self) -> None:
        if self.padding not in PADDINGS:
            raise ValueError(
                f"padding must be one of {PADDINGS} ('masked': padding takes no attention; "
                f"'unk': Lopardo et al.'s UNK padding to max_len, attended), got {self.padding!r}"
            )
        for name in ("vocab_size", "max_len", "n_head", "d_in", "d_attn", "d_out", "n_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_len < 2:
            raise ValueError(f"max_len must leave room for CLS and one word, got {self.max_len}")
        for name in ("pad_id", "cls_id", "unk_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"{name} {getattr(self, name)} is outside the vocabulary "
                    f"0..{self.vocab_size - 1}"
                )

    @classmethod
    def profile(cls, name: str, vocab_size: int, **overrides: Any) -> LopardoConfig:
        """The sizes of profile `name` ("smoke" | "quick" | "full"), then `overrides`."""
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
        return replace(cls(vocab_size=vocab_size, **PROFILES[name]), **overrides)


class LopardoOutput(NamedTuple):
    """What `LopardoClassifier.forward` returns (a tuple, so `logits, attention, ... = out`).

    logits:         (B, C)        f = mean over heads of the head logits
    attention:      (B, H, T)     α of the CLS query per head, 0 on padding
    head_logits:    (B, H, C)     f_h
    attention_maps: (B, H, T, T)  every query's row (0 on padding rows and keys), only when
                                  asked for (`return_full_attention=True`), else None
    """

    logits: Tensor
    attention: Tensor
    head_logits: Tensor
    attention_maps: Tensor | None = None


def sinusoidal_positions(max_len: int, d_in: int) -> Tensor:
    """Vaswani et al.'s encoding `(max_len, d_in)`: p[t, 2i] = sin(t / 10000^(2i/d_in)),
    p[t, 2i+1] = cos(same angle)."""
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (T, 1)
    inverse_wavelength = torch.exp(
        torch.arange(0, d_in, 2, dtype=torch.float64) * (-math.log(10000.0) / d_in)
    )  # (ceil(d_in / 2),)
    angle = position * inverse_wavelength  # (T, ceil(d_in / 2))
    encoding = torch.zeros(max_len, d_in, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : d_in // 2])  # odd d_in: one cosine fewer
    return encoding.float()


class LopardoHeads(nn.Module):
    """The H independent heads, stored stacked so they run as one batched product.

    `forward(e (B, T, d_in), key_mask (B, T) bool, full_maps) -> (head_logits (B, H, C),
    weights)`. `weights` are the CLS rows `(B, H, 1, T)`, or every row `(B, H, T, T)` when
    `full_maps` is true or `attnkit.capture` has hooked the module (so capture always records
    square self-attention maps). Padding keys get weight exactly 0 (and padding rows of the
    full maps are 0).
    """

    def __init__(self, config: LopardoConfig) -> None:
        super().__init__()
        H, d_in, d_attn, d_out, C = (
            config.n_head,
            config.d_in,
            config.d_attn,
            config.d_out,
            config.n_classes,
        )
        self.W_q = nn.Parameter(torch.empty(H, d_in, d_attn))  # query map of each head
        self.W_k = nn.Parameter(torch.empty(H, d_in, d_attn))  # key map
        self.W_v = nn.Parameter(torch.empty(H, d_in, d_out))  # value map
        self.W_l = nn.Parameter(torch.empty(H, d_out, C))  # each head's own classifier W_ℓ^h
        for weight in (self.W_q, self.W_k, self.W_v, self.W_l):
            nn.init.uniform_(weight, -config.init_range, config.init_range)
        # Marks this module for attnkit.capture (its module contract). It stays None: the
        # weights come back as the second output.
        self.last_attention: Tensor | None = None

    def forward(
        self, e: Tensor, key_mask: Tensor, full_maps: bool = False
    ) -> tuple[Tensor, Tensor]:
        full_maps = full_maps or bool(self._forward_hooks)
        if full_maps:
            weights = self.attention_maps(e, key_mask)  # (B, H, T, T)
            cls_weights = weights[:, :, 0]  # (B, H, T)
        else:
            cls_weights = self.cls_attention(e, key_mask)  # (B, H, T)
            weights = cls_weights[:, :, None]  # (B, H, 1, T)
        # Σ_t α_t v_t = (Σ_t α_t e_t) W_v: pool the embeddings first, so the values are never
        # materialised (LIME runs thousands of documents through this).
        pooled = torch.einsum("bht,btd->bhd", cls_weights, e)  # (B, H, d_in)
        cls_value = torch.einsum("bhd,hdo->bho", pooled, self.W_v)  # (B, H, d_out)
        head_logits = torch.einsum("bho,hoc->bhc", cls_value, self.W_l)  # (B, H, C)
        return head_logits, weights

    def cls_attention(self, e: Tensor, key_mask: Tensor) -> Tensor:
        """α_t = softmax_t(q · k_t / √d_attn) of the CLS query, `(B, H, T)`."""
        q = torch.einsum("bd,hda->bha", e[:, 0], self.W_q)  # (B, H, d_attn)
        # q · k_t = e_t · (q W_kᵀ): fold the query into the key map instead of computing keys.
        key_direction = torch.einsum("bha,hda->bhd", q, self.W_k)  # (B, H, d_in)
        scores = torch.einsum("btd,bhd->bht", e, key_direction) / math.sqrt(self.W_k.size(-1))
        # -inf before the softmax gives padding keys an exact 0 weight (not just a small one).
        scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        return F.softmax(scores, dim=-1)  # (B, H, T)

    def attention_maps(self, e: Tensor, key_mask: Tensor) -> Tensor:
        """Every query's attention `(B, H, T, T)`; padding keys and padding rows are 0."""
        q = torch.einsum("btd,hda->bhta", e, self.W_q)  # (B, H, T, d_attn)
        k = torch.einsum("btd,hda->bhta", e, self.W_k)  # (B, H, T, d_attn)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))  # (B, H, T, T)
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = F.softmax(scores, dim=-1)  # (B, H, T, T)
        return weights * key_mask[:, None, :, None]  # padding query rows -> 0


class LopardoClassifier(nn.Module):
    """The paper's classifier: mean over H single-head CLS attentions with linear read-outs.

    `forward(input_ids (B, T) = None, attention_mask (B, T) = None, inputs_embeds (B, T, d_in)
    = None, return_full_attention=False) -> LopardoOutput`. Position 0 must hold CLS
    (`Vocab.encode` / `lopardo_collate` put it there). `attention_mask` defaults to
    `input_ids != pad_id`. `inputs_embeds` replaces the token embeddings E[w_t] (positions are
    still added, as in Hugging Face models), so autograd w.r.t. it gives ∇_{e_t} f;
    `get_input_embeddings()` returns the token embedding for `attnkit.importance`.

    Raises `ValueError` for a sequence longer than `max_len` (encode with `lopardo_collate`,
    which truncates with a warning), an empty document, ids outside the vocabulary, or a
    missing CLS at position 0.
    """

    def __init__(self, config: LopardoConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_in, padding_idx=config.pad_id)
        # Not a parameter and not saved: a fixed function of (max_len, d_in).
        self.register_buffer(
            "pos_enc", sinusoidal_positions(config.max_len, config.d_in), persistent=False
        )
        self.heads = LopardoHeads(config)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding module (Hugging Face's name), used by attnkit.importance."""
        return self.tok_emb

    def embed(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None) -> Tensor:
        """e_t = E[w_t] + p_t, `(B, T, d_in)`: what the heads see (and what ∇_{e_t} is taken of)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids (B, T) or inputs_embeds (B, T, d_in)")
        if inputs_embeds is None:
            self._check_ids(input_ids)
            if self.config.padding == "unk":  # the authors' padding token is UNK
                input_ids = input_ids.masked_fill(
                    input_ids == self.config.pad_id, self.config.unk_id
                )
            inputs_embeds = self.tok_emb(input_ids)  # (B, T, d_in)
        if inputs_embeds.dim() != 3 or inputs_embeds.size(-1) != self.config.d_in:
            raise ValueError(
                f"inputs_embeds must be (batch, tokens, d_in={self.config.d_in}), got "
                f"{tuple(inputs_embeds.shape)}"
            )
        T = inputs_embeds.size(1)
        if T > self.config.max_len:
            raise ValueError(
                f"sequence length {T} exceeds the model's max_len={self.config.max_len} (CLS "
                "included); encode with lopardo_collate / Vocab.encode(truncate=True), which keep "
                "the first max_len tokens, or build the model with a larger max_len."
            )
        if self.config.padding == "unk" and T != self.config.max_len:
            raise ValueError(
                f"padding='unk' (the authors' convention) attends to UNK padding up to max_len="
                f"{self.config.max_len}, so inputs must have exactly that many positions, got {T}; "
                "pad them with pad_to_max_len or lopardo_collate(..., padding='unk')."
            )
        return inputs_embeds + self.pos_enc[:T]  # (B, T, d_in)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        return_full_attention: bool = False,
    ) -> LopardoOutput:
        e = self.embed(input_ids, inputs_embeds)  # (B, T, d_in)
        key_mask = self.key_mask(input_ids, attention_mask, e)  # (B, T) bool
        head_logits, weights = self.heads(e, key_mask, return_full_attention)
        return LopardoOutput(
            logits=head_logits.mean(dim=1),  # (B, C)
            attention=weights[:, :, 0],  # (B, H, T)
            head_logits=head_logits,  # (B, H, C)
            attention_maps=weights if weights.size(2) > 1 else None,  # T >= 2: CLS + a word
        )

    def key_mask(
        self, input_ids: Tensor | None, attention_mask: Tensor | None, e: Tensor
    ) -> Tensor:
        """Boolean `(B, T)` mask of the attended keys, checked: CLS real, at least one word per
        example. It is the real-token mask, or all ones under `padding="unk"`."""
        B, T, _ = e.shape
        if attention_mask is None:
            if input_ids is None:
                return torch.ones(B, T, dtype=torch.bool, device=e.device)
            attention_mask = input_ids != self.config.pad_id
        if tuple(attention_mask.shape) != (B, T):
            raise ValueError(
                f"attention_mask must have shape (batch, tokens) = ({B}, {T}), got "
                f"{tuple(attention_mask.shape)}; pass the mask Vocab.encode returned."
            )
        key_mask = attention_mask.bool().to(e.device)
        if not key_mask[:, 0].all():
            bad = (~key_mask[:, 0]).nonzero().flatten().tolist()
            raise ValueError(
                f"examples {bad[:10]} have padding at position 0; the model reads CLS there: "
                "encode with Vocab.encode(add_cls=True) and pad on the right."
            )
        empty = (~key_mask[:, 1:].any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"examples {empty[:10]} are empty documents (CLS and no word); drop them before "
                "encoding."
            )
        if self.config.padding == "unk":  # the authors': UNK padding takes part in attention
            return torch.ones_like(key_mask)
        return key_mask

    def _check_ids(self, input_ids: Tensor) -> None:
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point:
            raise ValueError(
                f"input_ids must be integer ids (batch, tokens), got shape "
                f"{tuple(input_ids.shape)} and dtype {input_ids.dtype}; use .unsqueeze(0) for "
                "a single document."
            )
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"input_ids hold ids outside the vocabulary 0..{self.config.vocab_size - 1} "
                f"(min {int(input_ids.min())}, max {int(input_ids.max())}); encode with the "
                "Vocab the model was built for."
            )
        if input_ids.size(1) and not (input_ids[:, 0] == self.config.cls_id).all():
            raise ValueError(
                f"position 0 must hold the CLS token (id {self.config.cls_id}); encode with "
                "Vocab.encode(add_cls=True) or lopardo_collate."
            )


def pad_to_max_len(
    input_ids: Tensor, attention_mask: Tensor, max_len: int
) -> tuple[Tensor, Tensor]:
    """Right-pad `(B, T)` ids (with PAD, which a `padding="unk"` model reads as UNK) and the mask
    (with 0) to `(B, max_len)`, as the authors' `process_text` pads every document."""
    B, T = input_ids.shape
    if T > max_len:
        raise ValueError(f"{T} positions exceed max_len={max_len}; encode with truncate=True")
    ids = input_ids.new_full((B, max_len), PAD_ID)  # (B, max_len)
    mask = attention_mask.new_zeros((B, max_len))  # (B, max_len)
    ids[:, :T], mask[:, :T] = input_ids, attention_mask
    return ids, mask


class _PaddedToMaxLen(ClassificationCollate):
    """`ClassificationCollate` whose batches are padded to `max_len` (the authors' convention)."""

    def __call__(self, examples: Any) -> dict[str, Tensor]:
        batch = super().__call__(examples)
        ids, mask = pad_to_max_len(batch["input_ids"], batch["attention_mask"], self.max_len)
        return {**batch, "input_ids": ids, "attention_mask": mask}

    def __repr__(self) -> str:  # part of the trainer's cache key
        return "PaddedToMaxLen" + super().__repr__()


def lopardo_collate(
    vocab: Vocab, max_len: int, padding: Padding = "masked"
) -> ClassificationCollate:
    """`collate` for `attnkit.train.fit`: CLS + tokens, right-padded, `{"input_ids",
    "attention_mask", "labels"}`.

    Documents longer than `max_len` (CLS included) keep their first tokens, with a warning --
    the paper's `process_text` truncates the same way. Unknown words become UNK; an empty
    document is a `ValueError`. Takes `(tokens, label)` pairs (`labelled_examples(dataset)` for
    a `TextDataset` from `attnkit.data.load`). `padding="unk"` pads every batch to `max_len`
    (for a model built with the authors' padding); "masked" pads to the longest document.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    collate = _PaddedToMaxLen if padding == "unk" else ClassificationCollate
    return collate(vocab, max_len, add_cls=True, truncate=True)
