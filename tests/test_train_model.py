"""attnkit.train.train_model: the same run as the steps done by hand; seeded; cached."""

from __future__ import annotations

import pytest
import torch

from attnkit.data.types import TextDataset
from attnkit.models import AdditiveClassifier, AdditiveCollate, AdditiveConfig, Vocab
from attnkit.models.vocab import labelled_examples
from attnkit.train import (
    TrainConfig,
    TrainedModel,
    accuracy,
    cross_entropy_loss,
    fit,
    set_seed,
    train_model,
)

torch.set_num_threads(1)


def _data(n=40):
    texts = [["good", "film"] if i % 2 else ["bad", "film", "plot"] for i in range(n)]
    return TextDataset(
        texts=texts, labels=[i % 2 for i in range(n)], label_names=("neg", "pos"), origin="test"
    )


def _factory(vocab):
    return AdditiveClassifier(AdditiveConfig(vocab_size=len(vocab), embed_dim=4, hidden_size=3))


def test_train_model_equals_vocab_seed_build_fit_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    train, dev = _data(), _data(10)
    config = TrainConfig(epochs=2, batch_size=8)
    trained = train_model(_factory, train, dev, config=config, seed=3)
    assert isinstance(trained, TrainedModel) and trained.seed == 3
    vocab = Vocab.build(train.texts)
    set_seed(3)
    model = _factory(vocab)
    fit(
        model,
        labelled_examples(train),
        labelled_examples(dev),
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=AdditiveCollate(vocab),
        config=TrainConfig(epochs=2, batch_size=8, seed=3),
        cache=False,
        progress=False,
    )
    assert trained.vocab == vocab
    for (name, a), b in zip(
        trained.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    again = train_model(_factory, train, dev, config=config, seed=3)
    assert again.training.from_cache
    other = train_model(_factory, train, dev, config=config, seed=4, cache=False)
    assert not torch.equal(other.model.output.weight, trained.model.output.weight)


def test_train_model_rejects_bad_input():
    with pytest.raises(TypeError, match="TrainConfig"):
        train_model(_factory, _data(), config={"epochs": 1})
    with pytest.raises(ValueError, match="at least one"):
        train_model(_factory, [], config=TrainConfig(epochs=1))
    with pytest.raises(TypeError, match="nn.Module"):
        train_model(lambda vocab: None, _data(), config=TrainConfig(epochs=1), cache=False)
