"""Abnar & Zuidema's subject–verb agreement setup: train the GPT-2-block encoder, score it.

The model reads "[CLS] the keys to the cabinet" (a sentence prefix up to the verb) and predicts
whether the verb is singular or plural (Linzen et al. 2016). Abnar & Zuidema (2020, §3) use
6 layers, 8 heads and 128 dimensions; the profile decides the size here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from attnkit.attentions import Attentions
from attnkit.capture import capture
from attnkit.data.types import TextDataset
from attnkit.importance import blank_out, input_gradient
from attnkit.models import GPT2Encoder, GPT2EncoderConfig, Vocab, agreement_collate
from attnkit.models.vocab import UNK_ID, labelled_examples
from attnkit.train import (
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy_loss,
    fit,
    predict,
    set_seed,
)


def agreement_splits(
    data_dir: str | None,
    *,
    n_test: int,
    n_dev: int,
    n_train: int | None = None,
    seed: int = 0,
    require_data: bool = False,
) -> tuple[TextDataset, TextDataset, TextDataset]:
    """Train, dev and test sets of the sizes a profile asks for, from the agreement data.

    The Linzen file is one pool of sentences; its three splits are pooled and re-cut with the
    seed so that `full` can test on the paper's 2000 examples. Falls back to the synthetic
    agreement grammar (with a warning in the notebook) when the files are missing.
    """
    from attnkit.data import load

    parts = [
        load("agreement", split, data_dir=data_dir, require_data=require_data, seed=seed)
        for split in ("train", "dev", "test")
    ]
    pool = _concat(parts)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    if n_test + n_dev >= len(pool):
        raise ValueError(
            f"asked for {n_test} test + {n_dev} dev examples but the agreement data has "
            f"{len(pool)}; lower n_test/n_dev."
        )
    test, dev = order[:n_test], order[n_test : n_test + n_dev]
    train = order[n_test + n_dev :][:n_train]
    return pool.subset(train), pool.subset(dev), pool.subset(test)


def _concat(parts: list[TextDataset]) -> TextDataset:
    first = parts[0]
    return TextDataset(
        texts=[t for p in parts for t in p.texts],
        labels=[y for p in parts for y in p.labels],
        label_names=first.label_names,
        origin=first.origin.split(" (split=")[0],
        raw=[r for p in parts for r in p.raw],
        synthetic=first.synthetic,
        name=first.name,
        split="pooled",
        extra={key: [v for p in parts for v in p.extra[key]] for key in first.extra},
    )


@dataclass
class AgreementModel:
    """A trained agreement classifier with the vocabulary it reads."""

    model: GPT2Encoder
    vocab: Vocab
    training: TrainResult


def train_agreement_model(
    train: TextDataset,
    dev: TextDataset,
    *,
    n_layer: int = 6,
    n_head: int = 8,
    d_model: int = 128,
    dropout: float = 0.1,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 3,
    min_count: int = 2,
    max_len: int = 64,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> AgreementModel:
    """Build a vocabulary on `train` and fit the encoder (cached by config, data and seed).

    Prefixes longer than `max_len - 1` tokens are dropped from training (CLS takes one slot);
    words seen fewer than `min_count` times map to UNK, so the model learns an UNK embedding
    that blank-out can use.
    """
    vocab = Vocab.build(train.texts, min_count=min_count)
    keep = [i for i, tokens in enumerate(train.texts) if 0 < len(tokens) < max_len]
    train_examples = labelled_examples(train.subset(keep))
    dev_keep = [i for i, tokens in enumerate(dev.texts) if 0 < len(tokens) < max_len]
    dev_examples = labelled_examples(dev.subset(dev_keep))
    set_seed(seed)  # the initial weights are part of the cache key
    config = GPT2EncoderConfig(
        vocab_size=len(vocab),
        max_len=max_len,
        n_layer=n_layer,
        n_head=n_head,
        d_model=d_model,
        dropout=dropout,
        n_classes=len(train.label_names),
    )
    model = GPT2Encoder(config)
    result = fit(
        model,
        train_examples,
        dev_examples,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=agreement_collate(vocab, max_len),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer="adamw",
            weight_decay=0.01,
            patience=patience,
            max_grad_norm=1.0,
            seed=seed,
            device=device,
        ),
        progress=progress,
    )
    return AgreementModel(model, vocab, result)


def predictions(trained: AgreementModel, data: TextDataset, batch_size: int = 256) -> Tensor:
    """Predicted class per example `(N,)`."""
    collate = agreement_collate(trained.vocab, trained.model.config.max_len)
    logits = predict(trained.model, labelled_examples(data), collate, batch_size=batch_size)
    return logits.argmax(dim=-1)


def accuracy_by_attractors(trained: AgreementModel, data: TextDataset) -> pd.DataFrame:
    """Accuracy overall and per number of attractors (Linzen et al. 2016's breakdown)."""
    predicted = predictions(trained, data)
    correct = (predicted == torch.tensor(data.labels)).tolist()
    attractors = data.extra.get("n_attractors", [0] * len(data))
    frame = pd.DataFrame({"attractors": attractors, "correct": correct})
    table = frame.groupby("attractors")["correct"].agg(["mean", "size"])
    table.columns = ["accuracy", "examples"]
    table.loc["all"] = [frame["correct"].mean(), len(frame)]
    return table


@dataclass
class ExplainedBatch:
    """Attention and post-hoc importance for a batch of examples, lined up token by token."""

    attentions: Attentions  # (L, B, H, T, T), tokens included
    blank_out: Tensor  # (B, T)
    gradient: Tensor  # (B, T)
    labels: Tensor  # (B,)
    predicted: Tensor  # (B,)


def explain(
    trained: AgreementModel,
    data: TextDataset,
    *,
    gradient_reduce: str = "l2",
) -> ExplainedBatch:
    """Capture attention and compute blank-out and input-gradient importance for `data`.

    Blank-out is |Δp(correct class)| when a token becomes UNK; the gradient score is the norm of
    ∂p(correct)/∂e_t over embedding dimensions (`gradient_reduce="l2"`). Abnar & Zuidema's
    summed gradient |Σ_d ∂p/∂e_{t,d}| is identically 0 for a pre-LN encoder (see
    `GPT2Encoder`), so it carries no ranking; `gradient_reduce="sum"` still computes it.
    """
    model, vocab = trained.model, trained.vocab
    input_ids, mask = vocab.encode(data.texts, model.config.max_len)  # (B, T), (B, T)
    labels = torch.tensor(data.labels)
    device = next(model.parameters()).device
    input_ids, mask, labels = input_ids.to(device), mask.to(device), labels.to(device)
    tokens = [["[CLS]", *t] + ["[PAD]"] * (input_ids.shape[1] - 1 - len(t)) for t in data.texts]
    attn, logits = capture(model, input_ids=input_ids, attention_mask=mask, return_outputs=True)
    attn.tokens = tokens
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    blank = blank_out(model, input_ids, mask, labels, UNK_ID, absolute=True)
    gradient = input_gradient(model, inputs, labels, reduce=gradient_reduce)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return ExplainedBatch(attn, blank, gradient, labels.cpu(), logits.argmax(-1).cpu())
