"""`train_model`: one entry for vocabulary → seed → model → fit → a wrapper that keeps them together.

Every text-classification recipe repeats the same five steps: build a vocabulary from the training
texts, seed, build the model from a config, fit it (seeded, cached, early-stopped on dev), and keep
model, vocabulary and collate together for the analyses. `train_model` does them once:

    trained = train_model(
        lambda vocab: AdditiveClassifier(AdditiveConfig(vocab_size=len(vocab))),
        train, dev, config=TrainConfig(epochs=8, weight_decay=1e-5), seed=0, device="cpu",
    )
    trained.model, trained.vocab, trained.collate, trained.training

`train` / `dev` are `TextDataset`s (turned into `(tokens, label)` examples) or example sequences
as `attnkit.train.fit` takes them (e.g. `(tokens, label, weights)` triples for imposed attention).
The model is built right after `set_seed(seed)`, so its initial weights — part of the trainer's
cache key — are a function of the seed; `TrainConfig.seed` and `.device` are replaced by `seed`
and `device`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from attnkit.data.types import TextDataset
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.train.trainer import (
    Collate,
    LossFn,
    MetricFn,
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy_loss,
    fit,
    set_seed,
)

ModelFactory = Callable[[Vocab], nn.Module]


@dataclass
class TrainedModel:
    """A fitted model (in eval mode, on `device`) with what it reads its inputs through."""

    model: nn.Module
    vocab: Vocab
    collate: Collate
    training: TrainResult
    seed: int
    device: str

    def examples(self, data: TextDataset | Sequence[Any]) -> list[Any]:
        """`(tokens, label)` examples of a dataset (sequences pass through unchanged)."""
        return labelled_examples(data) if isinstance(data, TextDataset) else list(data)


def _examples(data: TextDataset | Sequence[Any] | None) -> list[Any] | None:
    if data is None:
        return None
    return labelled_examples(data) if isinstance(data, TextDataset) else list(data)


def _texts(data: TextDataset | Sequence[Any]) -> list[Sequence[str]]:
    if isinstance(data, TextDataset):
        return data.texts
    return [example[0] for example in data]


def train_model(
    model_factory: ModelFactory,
    train: TextDataset | Sequence[Any],
    dev: TextDataset | Sequence[Any] | None = None,
    *,
    config: TrainConfig,
    seed: int = 0,
    device: str = "cpu",
    vocab: Vocab | None = None,
    min_count: int = 1,
    collate_factory: Callable[[Vocab], Collate] | None = None,
    loss_fn: LossFn = cross_entropy_loss,
    metric_fn: MetricFn | None = accuracy,
    cache: bool = True,
    cache_key_extra: Any = None,
    progress: bool = True,
) -> TrainedModel:
    """Build the vocabulary, seed, build the model, fit it; return it with vocab and collate.

    Args:
        model_factory: `vocab -> nn.Module`, called right after `set_seed(seed)`.
        train, dev: `TextDataset`s or example sequences (see the module docstring).
        config: the `TrainConfig`; its `seed` and `device` are replaced by the arguments.
        vocab: reuse this vocabulary (e.g. an adversary reading the base model's ids); by
            default one is built from the training texts, keeping tokens seen `min_count` times.
        collate_factory: `vocab -> collate`; default `AdditiveCollate(vocab)`.
        cache: look the run up in (and store it to) the trainer's checkpoint cache;
            `cache_key_extra` adds what the key cannot see (a recipe version).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be an attnkit.train.TrainConfig, got {type(config).__name__}")
    train_examples = _examples(train)
    if not train_examples:
        raise ValueError("train_model needs at least one training example")
    if vocab is None:
        vocab = Vocab.build(_texts(train), min_count=min_count)
    if collate_factory is None:
        from attnkit.models.additive import AdditiveCollate

        collate_factory = AdditiveCollate
    collate = collate_factory(vocab)
    set_seed(seed)  # the initial weights are part of the cache key
    model = model_factory(vocab)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    result = fit(
        model,
        train_examples,
        _examples(dev),
        loss_fn=loss_fn,
        metric_fn=metric_fn,
        collate=collate,
        config=dataclasses.replace(config, seed=seed, device=str(device)),
        cache=cache,
        cache_key_extra=cache_key_extra,
        progress=progress,
    )
    return TrainedModel(model, vocab, collate, result, seed, str(device))
