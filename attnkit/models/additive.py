"""The additive-attention text classifier of Jain & Wallace (2019) and Wiegreffe & Pinter (2019).

    e = Embedding(x)                          # (B, T, E), PAD embedding fixed at 0
    h = encoder(e, mask)                      # (B, T, H), 0 at padding; BiLSTM or "average"
    s_t = vᵀ tanh(W h_t + b)                  # (B, T)  additive (Bahdanau) scores
    α = normaliser(s, mask)                   # (B, T)  softmax by default
    c = Σ_t α_t h_t                           # (B, H)
    logits = head(c)                          # (B, C)

J&W's sizes (`successar/AttentionExplanation`, `TanhAttention`): W maps H → H/2 with a bias, v
maps H/2 → 1 without one; the BiLSTM has 128 units per direction (`AdditiveConfig.for_profile`).
The normaliser is any `attnkit.normalizers` name, so Meister et al.'s (2021) sparsemax and
1.5-entmax variants are the same model with `normalizer="sparsemax"` / `"entmax15"`.

Output head. J&W's binary models have one output z and predict ŷ = σ(z) (trained with
BCE-with-logits). With `head="sigmoid"` this model keeps that single z but returns the logits
`[0, z]`: softmax([0, z]) = [1 − σ(z), σ(z)], and cross-entropy on them equals J&W's BCE, so the
model is both the paper's and a standard `(B, C)`-logits classifier (`attnkit.train`,
`attnkit.importance`). `head="softmax"` is a plain C-way linear layer.

Attention can also be
* frozen to uniform over the real tokens (`attention="uniform"`): Wiegreffe & Pinter §3.1;
* imposed from outside per call, `forward(ids, mask, attention=weights (B, T))`, used verbatim
  (each row a distribution over the real tokens):
  their §3.3 diagnostic, J&W's permutations and adversaries (`attnkit.adversarial`).

Gradient methods: `get_input_embeddings()` is the embedding module and `inputs_embeds=` replaces
its output; `embed`, `encode`, `attend` and `decode` are the forward's steps, so callers can
differentiate with respect to embeddings or hidden states, or reuse hidden states while only
the attention varies. J&W's gradients treat the attention as a constant ("detached"): impose
the model's own weights, detached, e.g. `attnkit.importance.gradient_x_input(model,
{"input_ids": ids, "attention_mask": mask, "attention": model(ids, mask).attention.detach()})`.

Training with `attnkit.train.fit`::

    vocab = Vocab.build(train.texts)
    model = AdditiveClassifier(AdditiveConfig.for_profile("quick", len(vocab)))
    fit(model, labelled_examples(train), loss_fn=cross_entropy_loss, metric_fn=accuracy,
        collate=AdditiveCollate(vocab), config=TrainConfig(weight_decay=1e-5))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError
from attnkit.models.encoders import ENCODERS
from attnkit.models.vocab import PAD_ID, ClassificationCollate, Vocab
from attnkit.normalizers import get_normalizer

EncoderName = Literal["lstm", "average"]
AttentionMode = Literal["learned", "uniform"]
Head = Literal["sigmoid", "softmax"]

# (embed_dim, hidden_size) per notebook profile. `full` is J&W's (300-d word vectors, 128 LSTM
# units per direction); `quick` is the CPU scale-down in CLAIMS.md; `smoke` only has to run.
PROFILE_SIZES: dict[str, tuple[int, int]] = {
    "smoke": (16, 16),
    "quick": (32, 32),
    "full": (300, 128),
}


@dataclass(frozen=True)
class AdditiveConfig:
    """Architecture of `AdditiveClassifier`.

    `hidden_size` is per direction for the BiLSTM (H = 2·hidden_size) and the projection size
    for the average encoder (H = hidden_size). `attention_dim` is W's output size, H // 2 when
    None (J&W). `normalizer` is an `attnkit.normalizers` name, built with `normalizer_kwargs`.
    `attention="uniform"` freezes α to 1/len over the real tokens (the scorer is then unused).
    `head`: see the module docstring; "sigmoid" needs `n_classes == 2`.
    `freeze_embeddings`: keep the embedding table fixed in training (pretrained vectors loaded
    with `AdditiveClassifier.load_embeddings`).
    """

    vocab_size: int
    embed_dim: int = 32
    hidden_size: int = 32
    encoder: EncoderName = "lstm"
    attention_dim: int | None = None
    normalizer: str = "softmax"
    normalizer_kwargs: dict[str, Any] = field(default_factory=dict)
    attention: AttentionMode = "learned"
    n_classes: int = 2
    head: Head = "sigmoid"
    pad_id: int = PAD_ID
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_size", "n_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attention_dim is not None and self.attention_dim < 1:
            raise ValueError(f"attention_dim must be None or >= 1, got {self.attention_dim}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {self.encoder!r}")
        if self.attention not in ("learned", "uniform"):
            raise ValueError(f"attention must be 'learned' or 'uniform', got {self.attention!r}")
        if self.head not in ("sigmoid", "softmax"):
            raise ValueError(f"head must be 'sigmoid' or 'softmax', got {self.head!r}")
        if self.head == "sigmoid" and self.n_classes != 2:
            raise ValueError(
                f"head='sigmoid' is J&W's binary output and needs n_classes=2, got "
                f"{self.n_classes}; use head='softmax' for more classes."
            )
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(
                f"pad_id {self.pad_id} is outside the vocabulary 0..{self.vocab_size - 1}"
            )

    @classmethod
    def for_profile(cls, profile: str, vocab_size: int, **overrides: Any) -> AdditiveConfig:
        """The config with a notebook profile's sizes (`PROFILE_SIZES`), then `overrides`."""
        if profile not in PROFILE_SIZES:
            raise ValueError(f"profile must be one of {list(PROFILE_SIZES)}, got {profile!r}")
        embed_dim, hidden_size = PROFILE_SIZES[profile]
        config = cls(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size)
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"AdditiveConfig has no fields {unknown}")
        return replace(config, **overrides)


class AdditiveOutput(NamedTuple):
    """What `AdditiveClassifier.forward` returns.

    logits: `(B, C)`; `softmax(logits)` are the class probabilities (for `head="sigmoid"`,
        column 1 is J&W's σ(z)).
    attention: `(B, T)`, 0 at padding; the imposed weights when `attention=` was given.
    hidden: `(B, T, H)` encoder states, 0 at padding.
    """

    logits: Tensor
    attention: Tensor
    hidden: Tensor


class AdditiveAttention(nn.Module):
    """α = normaliser(vᵀ tanh(W h + b), mask): `(B, T, H), (B, T) -> (B, T)` (Bahdanau et al.).

    Stores the last weights as `last_attention` `(B, 1, T)` (one query) so `attnkit.capture`
    finds this module by itself.
    """

    def __init__(self, hidden_size: int, attention_dim: int, normalizer: nn.Module) -> None:
        super().__init__()
        self.W = nn.Linear(hidden_size, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)
        self.normalizer = normalizer
        self.last_attention: Tensor | None = None

    def scores(self, hidden: Tensor) -> Tensor:
        """Unnormalised scores s_t = vᵀ tanh(W h_t + b), `(B, T)`."""
        return self.v(torch.tanh(self.W(hidden))).squeeze(-1)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        weights = self.normalizer(self.scores(hidden), mask=mask)  # (B, T)
        self.last_attention = weights.detach()[:, None, :]  # (B, 1, T)
        return weights


class AdditiveClassifier(nn.Module):
    """Embedding → BiLSTM / average encoder → additive attention → linear head (J&W 2019).

    `forward(input_ids (B, T), attention_mask (B, T) = None, attention (B, T) = None,
    inputs_embeds (B, T, E) = None) -> AdditiveOutput(logits, attention, hidden)`.
    The mask is 1/True for real tokens, right-padded; without one, `input_ids != pad_id`.
    """

    def __init__(self, config: AdditiveConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(
            config.vocab_size, config.embed_dim, padding_idx=config.pad_id
        )
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)
        self.encoder = ENCODERS[config.encoder](config.embed_dim, config.hidden_size)
        hidden = self.encoder.output_size
        normalizer = get_normalizer(config.normalizer, **config.normalizer_kwargs)
        self.attention = AdditiveAttention(hidden, config.attention_dim or hidden // 2, normalizer)
        # One output z for the sigmoid head (logits [0, z]), C outputs for softmax.
        self.output = nn.Linear(hidden, 1 if config.head == "sigmoid" else config.n_classes)

    @property
    def hidden_size(self) -> int:
        """H, the size of the encoder states the attention averages."""
        return self.encoder.output_size

    def extra_repr(self) -> str:
        # In the repr, hence in attnkit.train's cache key: a uniform and a learned model have
        # the same weights' shapes and could otherwise share a cache entry.
        c = self.config
        return (
            f"encoder={c.encoder}, attention={c.attention}, normalizer={c.normalizer}"
            f"{c.normalizer_kwargs or ''}, head={c.head}, n_classes={c.n_classes}"
            + (", frozen embeddings" if c.freeze_embeddings else "")
        )

    @torch.no_grad()
    def load_embeddings(self, vectors: Tensor) -> AdditiveClassifier:
        """Copy pretrained vectors `(vocab_size, embed_dim)` into the embedding table (the PAD
        row stays 0); returns the model."""
        expected = (self.config.vocab_size, self.config.embed_dim)
        if tuple(vectors.shape) != expected:
            raise ValueError(
                f"pretrained vectors must be (vocab_size, embed_dim) = {expected}, got "
                f"{tuple(vectors.shape)}; build the config with embed_dim=vectors.shape[1]."
            )
        self.embedding.weight.copy_(vectors)
        self.embedding.weight[self.config.pad_id] = 0
        return self

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding module (Hugging Face's name), used by `attnkit.importance`."""
        return self.embedding

    # ------------------------------------------------------------------ forward's steps

    def embed(self, input_ids: Tensor) -> Tensor:
        """Token embeddings `(B, T, E)`; differentiate with respect to these for gradients."""
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise AttentionInputError(
                f"input_ids must be integer ids shaped (batch, tokens), got {input_ids.dtype} "
                f"{tuple(input_ids.shape)}; use .unsqueeze(0) for a single sequence."
            )
        size = self.config.vocab_size
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= size):
            raise AttentionInputError(
                f"input_ids hold ids outside the vocabulary 0..{size - 1} (min "
                f"{int(input_ids.min())}, max {int(input_ids.max())}); encode the text with the "
                "Vocab the model was built for (AdditiveCollate(vocab) / Vocab.encode)."
            )
        return self.embedding(input_ids)

    def encode(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """Hidden states `(B, T, H)` from embeddings `(B, T, E)`, 0 at padding."""
        return self.encoder(embeds, mask)

    def attend(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """The model's own attention `(B, T)`: learned scores normalised, or uniform."""
        if self.config.attention == "uniform":
            real = mask.to(hidden.dtype)  # (B, T)
            return real / real.sum(dim=-1, keepdim=True)
        return self.attention(hidden, mask)

    def decode(self, hidden: Tensor, attention: Tensor) -> Tensor:
        """Logits `(B, ..., C)` for attention `(B, ..., T)` over hidden states `(B, T, H)`.

        Extra middle dimensions are extra distributions per example (K adversaries, P
        permutations): the encoder runs once and only the attention varies.
        """
        B, T, H = hidden.shape
        if attention.shape[0] != B or attention.shape[-1] != T:
            raise AttentionInputError(
                f"attention of shape {tuple(attention.shape)} does not fit hidden states "
                f"{tuple(hidden.shape)}: it must be (batch={B}, ..., tokens={T})."
            )
        weights = attention.to(hidden.dtype).reshape(B, -1, T)  # (B, N, T)
        context = torch.matmul(weights, hidden).reshape(*attention.shape[:-1], H)  # (B, ..., H)
        z = self.output(context)  # (B, ..., 1) or (B, ..., C)
        if self.config.head == "sigmoid":
            return torch.cat([torch.zeros_like(z), z], dim=-1)  # (B, ..., 2): softmax = [1-σ, σ]
        return z

    @staticmethod
    def probabilities(logits: Tensor) -> Tensor:
        """Class probabilities `(..., C)`; for the sigmoid head column 1 is σ(z)."""
        return torch.softmax(logits, dim=-1)

    def real_token_mask(
        self, input_ids: Tensor | None, attention_mask: Tensor | None, shape: torch.Size
    ) -> Tensor:
        """Boolean `(B, T)` mask of real tokens: given, else `input_ids != pad_id`, else all."""
        B, T = shape[0], shape[1]
        if attention_mask is None:
            if input_ids is None:
                return torch.ones(B, T, dtype=torch.bool)
            attention_mask = input_ids != self.config.pad_id
        if tuple(attention_mask.shape) != (B, T):
            raise AttentionInputError(
                f"attention_mask must have shape (batch, tokens) = ({B}, {T}), got "
                f"{tuple(attention_mask.shape)}; pass the mask Vocab.encode returned."
            )
        mask = attention_mask.bool()
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise AttentionInputError(
                f"examples {empty[:10]} have no real tokens (empty sequences); drop them first."
            )
        return mask

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        attention: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> AdditiveOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids (B, T) or inputs_embeds (B, T, E)")
        embeds = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, E)
        mask = self.real_token_mask(input_ids, attention_mask, embeds.shape).to(embeds.device)
        hidden = self.encode(embeds, mask)  # (B, T, H)
        if attention is None:
            attention = self.attend(hidden, mask)  # (B, T)
        else:
            check_imposed_attention(attention, mask)
        return AdditiveOutput(self.decode(hidden, attention), attention, hidden)


def check_imposed_attention(attention: Tensor, mask: Tensor) -> None:
    """Raise unless `attention` is a finite `(B, T)` distribution with no weight on padding."""
    if not isinstance(attention, Tensor) or tuple(attention.shape) != tuple(mask.shape):
        shape = tuple(attention.shape) if isinstance(attention, Tensor) else type(attention)
        raise AttentionInputError(
            f"imposed attention must be a (batch, tokens) = {tuple(mask.shape)} tensor, "
            f"got shape {shape}."
        )
    if not torch.isfinite(attention).all():
        raise AttentionInputError("imposed attention contains NaN or inf.")
    if (attention.masked_fill(mask, 0) != 0).any():
        raise AttentionInputError(
            "imposed attention puts weight on padding positions; zero it there (padding hidden "
            "states are 0, so that weight would silently vanish)."
        )
    # The diagnostic (Wiegreffe & Pinter §3.3) imposes distributions over the real tokens; a
    # row with another total rescales the context vector and changes the prediction silently.
    sums = attention.sum(dim=-1)  # (B,)
    off = (sums - 1).abs() > 1e-4
    if off.any():
        row = int(off.nonzero()[0])
        raise AttentionInputError(
            f"imposed attention must sum to 1 over each example's tokens; example {row} sums to "
            f"{float(sums[row]):.4f}. Normalise it first, e.g. weights / weights.sum(-1, keepdim=True)."
        )


class AdditiveCollate:
    """`collate` for `attnkit.train.fit`: examples -> `{"input_ids", "attention_mask", "labels"}`.

    No CLS token (the model reads every token through attention). An example is a
    `(tokens, label)` pair or a `{"tokens", "label"}` mapping, or — to train or evaluate with
    imposed attention (Wiegreffe & Pinter §3.3) — a `(tokens, label, weights)` triple or a
    mapping with `"attention"`: the weights (one per token) go into the batch as `"attention"`
    `(B, T)`, zero-padded, and `fit` hands them to `model(attention=...)`.
    """

    def __init__(self, vocab: Vocab, max_len: int | None = None, *, truncate: bool = False) -> None:
        self.vocab, self.max_len, self.truncate = vocab, max_len, truncate
        self._tokens = ClassificationCollate(vocab, max_len, add_cls=False, truncate=truncate)

    def __call__(self, examples: Sequence[Any]) -> dict[str, Tensor]:
        imposed = [_imposed_weights(example) for example in examples]
        pairs = [example[:2] if _is_triple(example) else example for example in examples]
        batch = self._tokens(pairs)
        if all(weights is None for weights in imposed):
            return batch
        if any(weights is None for weights in imposed):
            raise ValueError(
                "either every example in a batch carries imposed attention or none does"
            )
        mask = batch["attention_mask"].bool()  # (B, T)
        attention = torch.zeros(mask.shape, dtype=torch.float32)  # (B, T)
        for row, weights in enumerate(imposed):
            values = torch.as_tensor(weights, dtype=torch.float32).flatten()
            n_real = int(mask[row].sum())
            if values.numel() != n_real:
                raise ValueError(
                    f"example {row} has {n_real} tokens but {values.numel()} attention weights; "
                    "give one weight per token (and do not truncate imposed-attention examples)."
                )
            attention[row, :n_real] = values
        return {**batch, "attention": attention}

    def __repr__(self) -> str:
        return f"AdditiveCollate({self.vocab!r}, max_len={self.max_len})"


def _is_triple(example: Any) -> bool:
    return isinstance(example, tuple | list) and len(example) == 3


def _imposed_weights(example: Any) -> Any:
    if _is_triple(example):
        return example[2]
    if isinstance(example, Mapping):
        return example.get("attention")
    return None
