"""Every Lopardo step is device-clean: run against a model on a (fake) accelerator, it moves its
CPU inputs to the model's device and returns the same numbers, on the CPU, as with a CPU model.

`fake_accelerator` (tests/fake_accelerator.py) raises on any op that mixes accelerator and CPU
tensors, as CUDA does, and `DeviceCheckingLopardo.forward` asserts that its inputs sit on its
parameters' device, so a step that feeds a CPU batch to a moved model fails here as it would
with `--device cuda`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from fake_accelerator import FakeAccelerator, to_fake_accelerator

from attnkit.models.lopardo import LopardoClassifier, LopardoConfig
from attnkit.models.vocab import Vocab
from attnkit.papers import lopardo2024_attention_posthoc as paper
from attnkit.train import TrainResult

pytestmark = pytest.mark.usefixtures("single_thread")
WORDS = [f"w{i}" for i in range(30)]


class DeviceCheckingLopardo(LopardoClassifier):
    """The paper's classifier whose forward asserts its inputs sit on its parameters' device."""

    def forward(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, return_full_attention=False
    ):
        home = self.heads.W_q.device
        for name, value in (
            ("input_ids", input_ids),
            ("attention_mask", attention_mask),
            ("inputs_embeds", inputs_embeds),
        ):
            assert value is None or value.device == home, (
                f"{name} on {value.device}, model on {home}"
            )
        return super().forward(input_ids, attention_mask, inputs_embeds, return_full_attention)


def trained(padding: str) -> paper.LopardoModel:
    vocab = Vocab(WORDS)
    torch.manual_seed(0)
    config = LopardoConfig(
        vocab_size=len(vocab),
        max_len=16,
        n_head=2,
        d_in=8,
        d_attn=4,
        d_out=4,
        init_range=1.0,
        padding=padding,
    )
    model = DeviceCheckingLopardo(config).double().eval()
    return paper.LopardoModel(model, vocab, TrainResult([], None, False, 0.0, 0.0, False))


def documents(n: int = 3) -> list[list[str]]:
    rng = np.random.default_rng(0)
    return [list(rng.choice(WORDS, size=size)) for size in (12, 5, 9)[:n]]


def on_accelerator(model: paper.LopardoModel) -> paper.LopardoModel:
    moved = copy.deepcopy(model)
    to_fake_accelerator(moved.model)
    return moved


def test_the_checks_catch_a_cpu_batch_fed_to_a_moved_model():
    cpu = trained("masked")
    ids, mask = cpu.encode(documents())
    with FakeAccelerator():
        moved = on_accelerator(cpu)
        assert paper.model_device(moved.model).type == "meta"
        with pytest.raises((AssertionError, RuntimeError), match="device"):
            moved.model(ids, mask)


@pytest.mark.parametrize("padding", ["masked", "unk"])
def test_every_step_is_device_clean_and_exact(padding):
    cpu = trained(padding)
    ids, mask = cpu.encode(documents())
    options = dict(lime_runs=2, lime_samples=60, seed=0, progress=False)
    expected = paper.explain_documents(cpu, ids, mask, **options)
    residual = paper.proportional_residual(cpu, ids, mask)
    by_length = paper.lime_error_by_length(
        cpu, documents(), [3, 8], lime_samples=60, progress=False
    )
    with FakeAccelerator():
        moved = on_accelerator(cpu)
        got = paper.explain_documents(moved, ids, mask, **options)
        got_residual = paper.proportional_residual(moved, ids, mask)
        got_by_length = paper.lime_error_by_length(
            moved, documents(), [3, 8], lime_samples=60, progress=False
        )
    for name, value in expected.scores.items():
        assert got.scores[name].device.type == "cpu", name
        torch.testing.assert_close(got.scores[name], value, msg=name)
    torch.testing.assert_close(got.gradient.closed_form, expected.gradient.closed_form)
    torch.testing.assert_close(got.attention, expected.attention)
    assert got.target.device.type == "cpu" and torch.equal(got.target, expected.target)
    torch.testing.assert_close(got_residual, residual)
    assert np.allclose(got_by_length.relative_error, by_length.relative_error)
