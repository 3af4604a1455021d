"""Every J&W / W&P recipe step is device-clean: run against a model on a (fake) accelerator,
it moves its CPU batches to the model's device and returns the same numbers as on the CPU.

`fake_accelerator` raises on any op that mixes accelerator and CPU tensors, as CUDA does, so a
step that feeds a CPU batch to a moved model fails here as it would with `--device cuda`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from fake_accelerator import FakeAccelerator, to_fake_accelerator

from attnkit.adversarial import (
    AdversaryConfig,
    adversarial_attention_over,
    compare_to_base,
    permutation_scores_over,
)
from attnkit.data.types import TextDataset
from attnkit.importance.jw_gradient import jw_gradient
from attnkit.importance.leave_one_out import leave_one_out
from attnkit.models import AdditiveClassifier, AdditiveCollate, AdditiveConfig, Vocab
from attnkit.recipes import explanation as ex
from attnkit.train import TrainResult

torch.set_num_threads(1)
WORDS = "good bad fine awful great poor the a movie plot".split()


class DeviceCheckingClassifier(AdditiveClassifier):
    """J&W's classifier whose forward asserts its inputs sit on its parameters' device."""

    def forward(self, input_ids=None, attention_mask=None, attention=None, inputs_embeds=None):
        home = self.output.weight.device
        for name, value in (
            ("input_ids", input_ids),
            ("attention_mask", attention_mask),
            ("attention", attention),
            ("inputs_embeds", inputs_embeds),
        ):
            assert value is None or value.device == home, (
                f"{name} on {value.device}, model on {home}"
            )
        return super().forward(input_ids, attention_mask, attention, inputs_embeds)


def _classifier() -> ex.Classifier:
    torch.manual_seed(0)
    vocab = Vocab(WORDS)
    model = DeviceCheckingClassifier(
        AdditiveConfig(vocab_size=len(vocab), embed_dim=8, hidden_size=6)
    ).eval()
    result = TrainResult([], None, False, 0.0, 0.0, False)
    return ex.Classifier(model, vocab, AdditiveCollate(vocab), result, "toy", "lstm", "learned")


def _data(n=6) -> TextDataset:
    rng = np.random.default_rng(0)
    texts = [list(rng.choice(WORDS, size=int(rng.integers(2, 8)))) for _ in range(n)]
    return TextDataset(
        texts=texts, labels=[i % 2 for i in range(n)], label_names=("n", "p"), origin="t"
    )


def _on_accelerator(clf: ex.Classifier) -> ex.Classifier:
    moved = copy.deepcopy(clf)
    to_fake_accelerator(moved.model)
    return moved


def test_the_fake_accelerator_catches_a_cpu_batch_fed_to_a_moved_model():
    clf, data = _classifier(), _data()
    batch = clf.collate(clf.examples(data))
    with FakeAccelerator():
        moved = _on_accelerator(clf)
        with pytest.raises((AssertionError, RuntimeError), match="device"):
            moved.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])


def test_explain_and_importance_are_device_clean_and_exact():
    clf, data = _classifier(), _data()
    expected = ex.explain(clf, data)
    batch = clf.collate(clf.examples(data))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    loo, grad = leave_one_out(clf.model, ids, mask), jw_gradient(clf.model, ids, mask)
    with FakeAccelerator():
        moved = _on_accelerator(clf)
        got = ex.explain(moved, data)
        torch.testing.assert_close(leave_one_out(moved.model, ids, mask), loo)
        torch.testing.assert_close(jw_gradient(moved.model, ids, mask), grad)
        f1 = ex.evaluate(moved, data)
        rows = ex.attention_of(moved, data)
    for name in ("attention", "gradient", "loo", "probs"):
        assert getattr(got, name).device.type == "cpu"
        torch.testing.assert_close(getattr(got, name), getattr(expected, name))
    assert f1 == ex.evaluate(clf, data)
    for got_row, want_row in zip(rows, ex.attention_of(clf, data), strict=True):
        assert got_row == pytest.approx(want_row)


def test_adversarial_steps_are_device_clean():
    clf, data = _classifier(), _data()
    docs = clf.examples(data)
    config = AdversaryConfig(steps=3, seed=0)
    with FakeAccelerator():
        moved = _on_accelerator(clf)
        permuted = permutation_scores_over(moved.model, docs, moved.collate, n_permutations=4)
        adversary = adversarial_attention_over(moved.model, docs, moved.collate, config=config)
        tvd, jsd = compare_to_base(moved.model, moved.model, docs, moved.collate)
    assert permuted.median_delta_y.shape == (len(docs),)
    assert adversary.jsd.shape == (len(docs),)
    torch.testing.assert_close(tvd, torch.zeros_like(tvd))
    torch.testing.assert_close(jsd, torch.zeros_like(jsd))
