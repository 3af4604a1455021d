"""Abnar & Zuidema's (2020) verb-number model: GPT-2 blocks without the causal mask.

The paper's model (§3, "Quantifying Attention Flow in Transformers") is a Transformer encoder
built from GPT-2 blocks (Radford et al. 2019) with bidirectional attention: 6 layers, 8 heads,
hidden size 128. A CLS token is prepended and its final hidden state goes to the classifier
(singular vs plural verb). The blocks follow nanoGPT: pre-LayerNorm,

    x = x + attn(ln_1(x));   x = x + mlp(ln_2(x));   mlp = Linear(D, 4D) -> GELU -> Linear(4D, D)

with learned token and position embeddings and a final LayerNorm (ln_f).

Training with `attnkit.train.fit`::

    vocab = Vocab.build(tokens for tokens, _ in train)           # train: (tokens, label) pairs
    model = GPT2Encoder(GPT2EncoderConfig(vocab_size=len(vocab), max_len=32))
    fit(model, train, dev, loss_fn=cross_entropy_loss, metric_fn=accuracy,
        collate=agreement_collate(vocab, 32), config=TrainConfig(...))

The collate builds `{"input_ids", "attention_mask", "labels"}` batches; `cross_entropy_loss`
and `accuracy` call `model(input_ids=..., attention_mask=...)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError
from attnkit.models.vocab import PAD_ID, ClassificationCollate, Vocab


@dataclass(frozen=True)
class GPT2EncoderConfig:
    """Sizes of the encoder; the defaults are the paper's (6 layers, 8 heads, d=128).

    `max_len` counts the CLS token. `pad_id` is the padding token id (also the token whose
    embedding is fixed at zero, see `GPT2Encoder`).
    """

    vocab_size: int
    max_len: int = 64
    n_layer: int = 6
    n_head: int = 8
    d_model: int = 128
    dropout: float = 0.1
    n_classes: int = 2
    pad_id: int = PAD_ID

    def __post_init__(self) -> None:
        if self.d_model % self.n_head != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})"
            )
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "n_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(
                f"pad_id {self.pad_id} is outside the vocabulary 0..{self.vocab_size - 1}"
            )


class BidirectionalSelfAttention(nn.Module):
    """GPT-2's multi-head self-attention without the causal mask; padding keys are masked.

    `forward(x (B, T, D), key_mask (B, T) bool) -> (y (B, T, D), weights (B, H, T, T))`.
    `weights` are the softmax probabilities before attention dropout: exactly 0 on padding
    keys, and rows of padding queries are set to 0 so padding never enters rollout or flow.
    """

    def __init__(self, config: GPT2EncoderConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.d_model, 3 * config.d_model)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.d_model, config.d_model)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # Marks this module for attnkit.capture (its module contract). It stays None: the
        # weights come back as the second output, so no graph is kept alive on the module.
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)  # 3 x (B, T, D)
        q = q.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)  # (B, H, T, Dh)
        k = k.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)  # (B, H, T, Dh)
        v = v.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)  # (B, H, T, Dh)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, H, T, T)
        # -inf before the softmax gives padding keys an exact 0 weight (not just a small one).
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = F.softmax(scores, dim=-1)  # (B, H, T, T)
        weights = weights * key_mask[:, None, :, None]  # padding query rows -> 0
        y = self.attn_dropout(weights) @ v  # (B, H, T, Dh)
        y = y.transpose(1, 2).contiguous().view(B, T, D)  # (B, T, D)
        return self.resid_dropout(self.c_proj(y)), weights


class MLP(nn.Module):
    """GPT-2 feed-forward: Linear(D, 4D) -> GELU -> Linear(4D, D) -> dropout."""

    def __init__(self, config: GPT2EncoderConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.d_model, 4 * config.d_model)
        self.c_proj = nn.Linear(4 * config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (B, T, D)


class Block(nn.Module):
    """Pre-LN GPT-2 block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`."""

    def __init__(self, config: GPT2EncoderConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = BidirectionalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        attended, weights = self.attn(self.ln_1(x), key_mask)  # (B, T, D), (B, H, T, T)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class GPT2Encoder(nn.Module):
    """CLS classifier over a bidirectional GPT-2 encoder (Abnar & Zuidema 2020).

    `forward(input_ids (B, T), attention_mask (B, T) = None, inputs_embeds (B, T, D) = None,
    output_attentions=False)` returns logits `(B, n_classes)`, or `(logits, attentions)` with
    one `(B, H, T, T)` tensor per layer. Position 0 must hold the CLS token (`Vocab.encode`
    puts it there). `inputs_embeds` replaces the token embeddings (position embeddings are
    still added, as in Hugging Face models), so gradient methods can differentiate with
    respect to them; `get_input_embeddings()` returns the token embedding module.

    The PAD embedding is a fixed zero vector (`padding_idx`), so a PAD baseline for
    integrated gradients is the usual all-zero token-embedding baseline.

    Every read of the residual stream goes through a LayerNorm (pre-LN), so the output does not
    change when an embedding moves along (1, ..., 1): Abnar & Zuidema's summed input gradient
    `|sum_d dy/de_{t,d}|` is exactly 0 for this model (the authors' TF model has the same
    blocks). See `attnkit.importance.gradient` for the alternatives.
    """

    def __init__(self, config: GPT2EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.classifier = nn.Linear(config.d_model, config.n_classes)
        self.apply(self._init_weights)
        # GPT-2: scale residual projections by 1/sqrt(2 * n_layer) so the residual stream's
        # variance does not grow with depth.
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding module (Hugging Face's name), used by attnkit.importance."""
        return self.tok_emb

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_attentions: bool = False,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, ...]]:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids (B, T) or inputs_embeds (B, T, D)")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(
                    f"input_ids must be (batch, tokens), got shape {tuple(input_ids.shape)}; "
                    "use input_ids.unsqueeze(0) for a single sequence."
                )
            inputs_embeds = self.tok_emb(input_ids)  # (B, T, D)
        B, T, _ = inputs_embeds.shape
        if T > self.config.max_len:
            raise ValueError(
                f"sequence length {T} exceeds the model's max_len={self.config.max_len}; "
                "build the model with a larger max_len or encode with truncate=True."
            )
        key_mask = self._key_mask(input_ids, attention_mask, B, T, inputs_embeds.device)
        positions = torch.arange(T, device=inputs_embeds.device)  # (T,)
        x = self.drop(inputs_embeds + self.pos_emb(positions))  # (B, T, D)
        attentions = []
        for block in self.blocks:
            x, weights = block(x, key_mask)  # (B, T, D), (B, H, T, T)
            attentions.append(weights)
        cls_state = self.ln_f(x)[:, 0]  # (B, D)
        logits = self.classifier(cls_state)  # (B, n_classes)
        return (logits, tuple(attentions)) if output_attentions else logits

    def _key_mask(
        self,
        input_ids: Tensor | None,
        attention_mask: Tensor | None,
        B: int,
        T: int,
        device: torch.device,
    ) -> Tensor:
        """Boolean `(B, T)` real-token mask: given, else `input_ids != pad_id`, else all True."""
        if attention_mask is None:
            if input_ids is None:
                return torch.ones(B, T, dtype=torch.bool, device=device)
            attention_mask = input_ids != self.config.pad_id
        if attention_mask.shape != (B, T):
            raise AttentionInputError(
                f"attention_mask must have shape (batch, tokens) = ({B}, {T}), got "
                f"{tuple(attention_mask.shape)}; pass the mask Vocab.encode returned."
            )
        key_mask = attention_mask.bool()
        if not key_mask[:, 0].all():
            # Every example needs a real token to attend to; the CLS at position 0 is it.
            empty = (~key_mask[:, 0]).nonzero().flatten().tolist()
            raise AttentionInputError(
                f"examples {empty[:10]} have padding at position 0 (empty or left-padded); "
                "the model reads CLS at position 0: encode with Vocab.encode(add_cls=True)."
            )
        return key_mask


def agreement_collate(vocab: Vocab, max_len: int | None = None) -> ClassificationCollate:
    """`collate` for `attnkit.train.fit` on agreement data: CLS + prefix tokens, label 0/1.

    Takes `attnkit.data.AgreementExample`s or `(tokens, label)` pairs (see
    `attnkit.models.vocab.labelled_examples` for a `TextDataset` from `attnkit.data.load`).
    Pair it with `loss_fn=attnkit.train.cross_entropy_loss`, `metric_fn=accuracy`.
    """
    return ClassificationCollate(vocab, max_len, add_cls=True)
