"""Fixtures and helpers shared by several test modules."""

import pytest
import torch

from attnkit.data import make_signal_task
from attnkit.models.additive import AdditiveClassifier, AdditiveCollate, AdditiveConfig
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.train import TrainConfig, cross_entropy_loss, fit, set_seed


@pytest.fixture(scope="module")
def single_thread():
    """Run a module on one torch thread: tiny models on a shared 2-core machine are far faster so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_signal_classifier(epochs: int, encoder: str = "lstm"):
    """A small additive-attention classifier trained briefly on the synthetic signal task.

    Returns `(model, train, collate)` with `train` the `(tokens, label)` pairs it was fit on.
    """
    train = make_signal_task(300, seed=0, length=(5, 12))
    vocab = Vocab.build(train.texts)
    collate = AdditiveCollate(vocab)
    set_seed(0)
    model = AdditiveClassifier(
        AdditiveConfig(len(vocab), embed_dim=16, hidden_size=16, encoder=encoder)
    )
    fit(
        model,
        labelled_examples(train),
        loss_fn=cross_entropy_loss,
        config=TrainConfig(epochs=epochs, lr=1e-2),
        collate=collate,
        cache=False,
        progress=False,
    )
    return model.eval(), labelled_examples(train), collate
