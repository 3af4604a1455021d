"""Abnar & Zuidema's Table 3 setup on the shipped MiniLM: fine-tune on SST-2, then explain.

The paper fine-tunes DistilBERT on SST-2; here the pretrained encoder is all-MiniLM-L6-v2
(6 layers, 12 heads), the only pretrained transformer available offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.attentions import Attentions
from attnkit.capture import capture
from attnkit.data.types import TextDataset
from attnkit.importance import input_gradient
from attnkit.models import load_minilm
from attnkit.train import (
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy_loss,
    fit,
    predict,
    set_seed,
)


class TokenizerCollate:
    """`collate` for the trainer: `(text, label)` pairs -> a tokenizer batch with `labels`."""

    def __init__(self, tokenizer: Any, max_len: int = 64) -> None:
        self.tokenizer, self.max_len = tokenizer, max_len

    def __call__(self, examples: Sequence[tuple[str, int]]) -> dict[str, Tensor]:
        texts, labels = zip(*examples, strict=True)
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_len, return_tensors="pt"
        )
        return {**batch, "labels": torch.tensor(labels, dtype=torch.long)}

    def __repr__(self) -> str:  # part of the trainer's cache key
        return f"TokenizerCollate({type(self.tokenizer).__name__}, max_len={self.max_len})"


@dataclass
class FineTuned:
    model: nn.Module
    tokenizer: Any
    training: TrainResult
    max_len: int


def fine_tune_minilm(
    train: TextDataset,
    dev: TextDataset,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_len: int = 64,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> FineTuned:
    """Fine-tune MiniLM with a fresh 2-way head (cached by config, data and seed)."""
    set_seed(seed)
    model, tokenizer = load_minilm(device, num_labels=len(train.label_names))
    pairs = lambda data: [(text, int(y)) for text, y in zip(data.raw, data.labels, strict=True)]  # noqa: E731
    result = fit(
        model,
        pairs(train),
        pairs(dev),
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=TokenizerCollate(tokenizer, max_len),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer="adamw",
            weight_decay=0.01,
            patience=None,
            max_grad_norm=1.0,
            seed=seed,
            device=device,
        ),
        progress=progress,
    )
    return FineTuned(model, tokenizer, result, max_len)


def test_accuracy(tuned: FineTuned, data: TextDataset) -> float:
    pairs = [(text, int(y)) for text, y in zip(data.raw, data.labels, strict=True)]
    logits = predict(tuned.model, pairs, TokenizerCollate(tuned.tokenizer, tuned.max_len))
    return (logits.argmax(-1) == torch.tensor(data.labels)).float().mean().item()


@dataclass
class ExplainedSentences:
    attentions: Attentions  # (L, B, H, T, T)
    gradient: Tensor  # (B, T)
    special: Tensor  # (B, T) True at [CLS]/[SEP]
    labels: Tensor  # (B,)


def explain_sentences(tuned: FineTuned, data: TextDataset) -> ExplainedSentences:
    """Attention of every layer and input gradients of the correct class for each sentence.

    The gradient is |Σ_d ∂p/∂e_{t,d}| taken at the output of BERT's embedding block (after its
    LayerNorm), which is where the authors' DistilBERT script differentiates; on the word
    embeddings themselves the sum is 0 because that LayerNorm follows them.
    """
    batch = tuned.tokenizer(
        list(data.raw), padding=True, truncation=True, max_length=tuned.max_len, return_tensors="pt"
    )
    device = next(tuned.model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = torch.tensor(data.labels, device=device)
    attn = capture(tuned.model, tokenizer=tuned.tokenizer, **batch)
    embeddings_block = tuned.model.base_model.embeddings
    gradient = input_gradient(tuned.model, batch, labels, embedding=embeddings_block, reduce="sum")
    ids = batch["input_ids"]
    special = (ids == tuned.tokenizer.cls_token_id) | (ids == tuned.tokenizer.sep_token_id)
    return ExplainedSentences(attn, gradient.cpu(), special.cpu(), labels.cpu())
