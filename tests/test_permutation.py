"""Tests for attnkit.adversarial.permutation (Jain & Wallace 2019's permutation test).

Oracles: a naive loop that permutes one instance's unpadded attention at a time, runs the
model's forward with it imposed and takes `statistics.median`; set-equality of permuted
positions; a uniform-attention model, which no permutation can change.
"""

from __future__ import annotations

import statistics

import pytest
import torch
from conftest import train_signal_classifier

from attnkit.adversarial import permutation_scores, permutation_scores_over, random_permutations
from attnkit.data import make_signal_task
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.vocab import labelled_examples

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def task():
    """A BiLSTM + additive attention model trained briefly on the synthetic signal task."""
    model, _, collate = train_signal_classifier(epochs=4)
    test = make_signal_task(20, seed=1, length=(3, 12))
    return model, labelled_examples(test), collate


def ragged_mask() -> torch.Tensor:
    lengths = torch.tensor([5, 1, 3, 7])
    return torch.arange(7)[None, :] < lengths[:, None]  # (B, T) right-padded


def test_permutations_move_weight_only_among_real_tokens():
    mask = ragged_mask()
    index = random_permutations(mask, 50, seed=3)
    assert index.shape == (4, 50, 7) and index.dtype == torch.long
    for row in range(4):
        real = set(mask[row].nonzero().flatten().tolist())
        for p in range(50):
            assert set(index[row, p, sorted(real)].tolist()) == real  # a permutation of real
            padding = [t for t in range(7) if t not in real]
            assert index[row, p, padding].tolist() == padding  # padding stays put
    weights = torch.rand(4, 7, dtype=torch.float64) * mask
    weights = weights / weights.sum(-1, keepdim=True)
    permuted = weights[:, None, :].expand(-1, 50, -1).gather(-1, index)  # (B, P, T)
    torch.testing.assert_close(permuted.sum(-1), weights.sum(-1, keepdim=True).expand(-1, 50))
    assert torch.all(permuted[~mask[:, None, :].expand_as(permuted)] == 0)
    assert not torch.equal(index[3, 0], index[3, 1])  # 7 tokens: permutations actually differ


def test_permutations_are_seeded_and_per_instance():
    mask = ragged_mask()
    first = random_permutations(mask, 20, seed=0)
    assert torch.equal(first, random_permutations(mask, 20, seed=0))
    assert not torch.equal(first, random_permutations(mask, 20, seed=1))
    alone = random_permutations(mask[3:4, :7], 20, seed=0, instance_ids=[3])
    assert torch.equal(alone[0], first[3])


def test_median_delta_y_equals_a_naive_loop(task):
    model, examples, collate = task
    batch = collate(examples[:8])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    result = permutation_scores(model, ids, mask, n_permutations=30, seed=5)
    assert result.median_delta_y.shape == (8,) and result.delta_y.shape == (8, 30)
    for i in range(8):
        n = int(mask[i].sum())
        with torch.no_grad():
            own = model(ids[i : i + 1, :n])
            p_own = torch.softmax(own.logits, -1)[0, 1].item()
            deltas = []
            for p in range(30):
                order = result.permutations[i, p, :n]
                shuffled = own.attention[0][order]
                out = model(ids[i : i + 1, :n], attention=shuffled[None])
                deltas.append(abs(torch.softmax(out.logits, -1)[0, 1].item() - p_own))
        assert result.median_delta_y[i].item() == pytest.approx(statistics.median(deltas), abs=1e-6)
        assert result.max_attention[i].item() == pytest.approx(own.attention.max().item(), abs=1e-6)
    assert result.median_delta_y.max() > 0  # the trained model does react to shuffling


def test_batching_does_not_change_results(task):
    model, examples, collate = task
    batch = collate(examples)
    whole = permutation_scores(model, batch["input_ids"], batch["attention_mask"], seed=2)
    assert whole.delta_y.shape == (len(examples), 100)  # J&W's 100 permutations by default
    over = permutation_scores_over(model, examples, collate, batch_size=7, seed=2)
    torch.testing.assert_close(over.median_delta_y, whole.median_delta_y, rtol=0, atol=1e-6)
    torch.testing.assert_close(over.max_attention, whole.max_attention, rtol=0, atol=1e-6)


def test_uniform_attention_is_permutation_invariant(task):
    _, examples, collate = task
    torch.manual_seed(0)
    uniform = AdditiveClassifier(AdditiveConfig(vocab_size=64, attention="uniform")).eval()
    batch = collate(examples[:6])
    result = permutation_scores(uniform, batch["input_ids"].clamp(max=63), batch["attention_mask"])
    torch.testing.assert_close(
        result.median_delta_y, torch.zeros(6, dtype=torch.float64), atol=1e-6, rtol=0
    )
