"""Tests for attnkit.adversarial: J&W's per-instance search and W&P's consistent adversary.

Oracles: `attnkit.metrics.jsd` / `tvd` and hand-computed losses on made-up numbers, the model's
own forward with the found attention imposed, single-instance runs, `nn.KLDivLoss` called as
Wiegreffe & Pinter's code calls it, and a short training run on a tiny signal task.
"""

from __future__ import annotations

import pytest
import torch
from conftest import train_signal_classifier
from torch import nn

from attnkit import metrics
from attnkit.adversarial import (
    AdversaryConfig,
    adversarial_attention,
    adversarial_attention_over,
    adversary_loss,
    consistent_adversary_loss,
    kl_divergence,
    train_consistent_adversary,
)
from attnkit.adversarial._common import soft_jsd, soft_tvd
from attnkit.data import make_signal_task
from attnkit.models.vocab import labelled_examples
from attnkit.train import TrainConfig

SMOKE = AdversaryConfig(steps=60)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def task():
    """A BiLSTM + additive attention model trained briefly on the synthetic signal task."""
    model, train, collate = train_signal_classifier(epochs=5)
    test = make_signal_task(60, seed=1, length=(5, 12))
    return model, train, labelled_examples(test), collate


def _distributions(*shape: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(*shape, generator=generator, dtype=torch.float64)
    weights[..., -1] = 0  # an exact zero, as padding gives
    return weights / weights.sum(-1, keepdim=True)


# --------------------------------------------------------------------------- losses


def test_soft_divergences_match_metrics():
    p, q = _distributions(4, 3, 7, seed=0), _distributions(4, 3, 7, seed=1)
    torch.testing.assert_close(soft_jsd(p, q), metrics.jsd(p, q), rtol=0, atol=1e-8)
    torch.testing.assert_close(soft_tvd(p, q), metrics.tvd(p, q), rtol=0, atol=1e-12)


def test_adversary_loss_on_a_hand_made_case():
    original = torch.tensor([[0.5, 0.3, 0.2, 0.0]], dtype=torch.float64)  # (B=1, T), last = pad
    candidates = torch.tensor(
        [[[0.1, 0.1, 0.8, 0.0], [0.6, 0.2, 0.2, 0.0]]], dtype=torch.float64
    )  # (1, K=2, T)
    original_probs = torch.tensor([[0.2, 0.8]], dtype=torch.float64)
    candidate_probs = torch.tensor([[[0.25, 0.75], [0.205, 0.795]]], dtype=torch.float64)
    loss = adversary_loss(candidates, original, candidate_probs, original_probs)

    jsd = [metrics.jsd(candidates[0, k], original[0]).item() for k in range(2)]
    delta_y = [0.05, 0.005]  # |Δσ|: the TVD of two-class distributions
    hinge = [500 * max(0.0, d - 0.01) for d in delta_y]  # [20, 0]
    cross = metrics.jsd(candidates[0, 0], candidates[0, 1]).item()
    diversity = (0 + cross + cross + 0) / 4  # mean over K × K ordered pairs, self-pairs included
    expected = sum(h - j for h, j in zip(hinge, jsd, strict=True)) - diversity

    assert loss.total.item() == pytest.approx(expected, abs=1e-9)
    torch.testing.assert_close(loss.delta_y[0], torch.tensor(delta_y, dtype=torch.float64))
    torch.testing.assert_close(loss.penalty[0], torch.tensor(hinge, dtype=torch.float64))
    assert loss.diversity.item() == pytest.approx(diversity, abs=1e-9)
    assert loss.jsd[0].tolist() == pytest.approx(jsd, abs=1e-9)


def test_adversary_loss_sums_over_instances():
    candidates, original = _distributions(3, 5, 6, seed=2), _distributions(3, 6, seed=3)
    probs, original_probs = _distributions(3, 5, 2, seed=4), _distributions(3, 2, seed=5)
    batched = adversary_loss(candidates, original, probs, original_probs).total
    alone = sum(
        adversary_loss(
            candidates[i : i + 1], original[i : i + 1], probs[i : i + 1], original_probs[i : i + 1]
        ).total
        for i in range(3)
    )
    torch.testing.assert_close(batched, alone)


# --------------------------------------------------------------------------- per-instance search


def test_found_adversaries_keep_the_prediction_and_move_the_attention(task):
    model, _, test, collate = task
    batch = collate(test[:12])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    result = adversarial_attention(model, ids, mask, config=SMOKE)
    assert result.found.float().mean() >= 0.75
    # Independent check: impose the found attention through the model's own forward.
    with torch.no_grad():
        imposed = model(ids, mask, attention=result.attention)
        own = model(ids, mask)
    delta_y = (model.probabilities(imposed.logits) - model.probabilities(own.logits))[:, 1].abs()
    jsd = metrics.jsd(result.attention, own.attention, mask)
    found = result.found
    assert (delta_y[found] <= 0.05 + 1e-6).all()
    assert (jsd[found] > 0.05).all()  # far from the original's JSD of 0
    torch.testing.assert_close(jsd, result.jsd, rtol=0, atol=1e-6)
    torch.testing.assert_close(delta_y.double(), result.delta_y, rtol=0, atol=1e-6)
    # Candidates are distributions over the real tokens.
    assert torch.all(result.candidates[~mask.bool()[:, None, :].expand_as(result.candidates)] == 0)
    torch.testing.assert_close(result.candidates.sum(-1), torch.ones(12, SMOKE.k))


def test_selection_is_max_jsd_among_feasible_candidates(task):
    model, _, test, collate = task
    batch = collate(test[:8])
    result = adversarial_attention(model, batch["input_ids"], batch["attention_mask"], config=SMOKE)
    for i in range(8):
        feasible = [k for k in range(SMOKE.k) if result.candidate_delta_y[i, k] <= 0.05]
        if feasible:
            best = max(feasible, key=lambda k: result.candidate_jsd[i, k].item())
        else:
            best = min(range(SMOKE.k), key=lambda k: result.candidate_delta_y[i, k].item())
        assert bool(result.found[i]) == bool(feasible)
        assert torch.equal(result.attention[i], result.candidates[i, best])
    impossible = AdversaryConfig(steps=5, max_delta_y=-1.0)
    none = adversarial_attention(
        model, batch["input_ids"], batch["attention_mask"], config=impossible
    )
    assert not none.found.any()


def test_batch_equals_single_instance_runs_with_the_same_seed(task):
    model, _, test, collate = task
    examples = test[:6]
    batch = collate(examples)
    result = adversarial_attention(model, batch["input_ids"], batch["attention_mask"], config=SMOKE)
    for i, example in enumerate(examples):
        single = collate([example])
        alone = adversarial_attention(
            model, single["input_ids"], single["attention_mask"], config=SMOKE, instance_ids=[i]
        )
        n = single["input_ids"].shape[1]
        torch.testing.assert_close(
            result.candidates[i, :, :n], alone.candidates[0], rtol=0, atol=1e-5
        )
        assert bool(result.found[i]) == bool(alone.found[0])
    over = adversarial_attention_over(model, examples, collate, batch_size=4, config=SMOKE)
    torch.testing.assert_close(over.candidates, result.candidates, rtol=0, atol=1e-5)


def test_search_is_seeded_and_leaves_the_model_alone(task):
    model, _, test, collate = task
    batch = collate(test[:4])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)  # fit leaves the last step's gradients
    model.train()
    first = adversarial_attention(model, batch["input_ids"], batch["attention_mask"], config=SMOKE)
    assert model.training  # mode restored
    model.eval()
    again = adversarial_attention(model, batch["input_ids"], batch["attention_mask"], config=SMOKE)
    other = AdversaryConfig(steps=SMOKE.steps, seed=1)
    reseeded = adversarial_attention(
        model, batch["input_ids"], batch["attention_mask"], config=other
    )
    assert torch.equal(first.candidates, again.candidates)
    assert not torch.allclose(first.candidates, reseeded.candidates)
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]) and parameter.grad is None, name


# --------------------------------------------------------------------------- consistent adversary


def test_kl_direction_matches_wiegreffe_pinter_code():
    adv, base = _distributions(3, 6, seed=6), _distributions(3, 6, seed=7)
    base = (base + 0.01) / (base + 0.01).sum(-1, keepdim=True)  # strictly positive, as softmax
    # Their call: nn.KLDivLoss(reduction="sum")(target_attn.log(), attn) = KL(α_adv ‖ α_base).
    theirs = nn.KLDivLoss(reduction="sum")(base.log(), adv)
    torch.testing.assert_close(kl_divergence(adv, base).sum(), theirs)


def test_consistent_adversary_loss_on_a_hand_made_case():
    adv_probs = torch.tensor([[0.3, 0.7], [0.9, 0.1]], dtype=torch.float64)
    base_probs = torch.tensor([[0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    adv_attention = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    base_attention = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    kl_first = 0.5 * torch.log(torch.tensor(0.5 / 0.9)) + 0.5 * torch.log(torch.tensor(0.5 / 0.1))
    expected = ((0.1 - 2.0 * kl_first) + (0.3 - 0.0)) / 2
    loss = consistent_adversary_loss(adv_probs, base_probs, adv_attention, base_attention, lam=2.0)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-8)


def test_consistent_adversary_imitates_at_zero_and_diverges_with_lambda(task, tmp_path):
    model, train, test, collate = task
    config = TrainConfig(epochs=6, lr=1e-2)
    results = train_consistent_adversary(
        model, train, [0.0, 1.0], collate=collate, config=config, eval_data=test, cache_dir=tmp_path
    )
    imitation, adversary = results
    assert [r.lam for r in results] == [0.0, 1.0]
    assert imitation.mean_tvd < 0.15  # it learns to reproduce the base predictions
    assert adversary.mean_jsd > imitation.mean_jsd + 0.2  # and λ pushes its attention away
    assert imitation.tvd.shape == (len(test),) and imitation.jsd.dtype == torch.float64
    assert not imitation.train.from_cache
    # λ is part of the cache key: the same λ comes back from the cache, another does not.
    again = train_consistent_adversary(
        model, train, 1.0, collate=collate, config=config, eval_data=test, cache_dir=tmp_path
    )
    assert again[0].train.from_cache and again[0].mean_jsd == pytest.approx(adversary.mean_jsd)
