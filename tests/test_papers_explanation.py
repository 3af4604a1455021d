"""The J&W and W&P paper modules' rule helpers against hand-computed answers on small tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from attnkit.papers import jain2019_not_explanation as jw
from attnkit.papers import wiegreffe2019_not_not_explanation as wp
from attnkit.recipes import explanation as ex


def test_peaked_permutation_keeps_documents_with_max_attention_at_least_the_peaked_cut():
    frame = pd.DataFrame(
        {
            "dataset": ["sst"] * 4 + ["imdb"] * 2,
            "encoder": ["lstm"] * 5 + ["average"],
            "max attention": [0.2, 0.25, 0.9, 0.7, 0.8, 0.9],
            "median |Δŷ|": [0.9, 0.01, 0.03, 0.5, 0.2, 0.0],
        }
    )
    table = jw.peaked_permutation(frame)
    assert table.loc["sst", "documents"] == 3
    assert table.loc["sst", "median |Δŷ|"] == pytest.approx(0.03)  # median of 0.01, 0.03, 0.5
    assert table.loc["imdb", "documents"] == 1  # the average encoder's row is left out
    assert table.loc["agnews", "documents"] == 0 and np.isnan(table.loc["agnews", "median |Δŷ|"])


def test_grad_minus_att_loo_is_the_per_document_difference_of_tau():
    mask = torch.ones(2, 4, dtype=torch.bool)
    attention = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]], dtype=torch.float64)
    loo = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    expl = ex.Explanations(attention, loo.clone(), loo, mask, torch.zeros(2, 2), torch.zeros(2))
    diff = jw.grad_minus_att_loo({("sst", "lstm"): expl, ("sst", "average"): expl})
    # τ(grad, LOO) = 1 for both; τ(att, LOO) = 1 and −1.
    np.testing.assert_allclose(diff["sst"], [0.0, 2.0])


def test_worst_seed_bin_ignores_bins_with_too_few_documents():
    table = pd.DataFrame(
        {"dataset": ["sst"] * 3, "median": [0.02, 0.5, 0.08], "count": [30, 3, 12]}
    )
    assert wp.worst_seed_bin(table, "sst") == (pytest.approx(0.08), 2)
    assert wp.worst_seed_bin(table, "imdb") == (None, 0)


def _adversary(lam, tvd, jsd):
    tvd, jsd = torch.tensor(tvd, dtype=torch.float64), torch.tensor(jsd, dtype=torch.float64)
    return SimpleNamespace(
        lam=lam, tvd=tvd, jsd=jsd, mean_tvd=float(tvd.mean()), mean_jsd=float(jsd.mean())
    )


def test_matched_comparison_holds_both_adversaries_to_the_same_per_document_budget(monkeypatch):
    monkeypatch.setattr(wp, "MIN_MATCHED_DOCUMENTS", 3)
    per_instance = SimpleNamespace(
        found=torch.tensor([True, True, False, True, True]),
        jsd=torch.tensor([0.6, 0.5, 0.6, 0.4, 0.3], dtype=torch.float64),
    )
    # λ = 0.1: documents 0, 3, 4 within 0.05 and found; its JSD there (0.4) is the largest.
    strong = _adversary(0.1, [0.01, 0.2, 0.0, 0.0, 0.05], [0.3, 0.9, 0.1, 0.5, 0.4])
    # λ = 1: documents 0, 1, 3, 4; mean JSD there 0.2.
    weak = _adversary(1.0, [0.0, 0.04, 0.1, 0.0, 0.0], [0.2, 0.2, 0.3, 0.2, 0.2])
    # λ = 3: only 2 matched documents (documents 0 and 1), below the minimum; JSD 0.95 ignored.
    few = _adversary(3.0, [0.0, 0.0, 0.0, 0.3, 0.3], [0.95, 0.95, 0.95, 0.95, 0.95])
    row = wp.matched_comparison({"sst": [strong, weak, few]}, {"sst": per_instance}).loc["sst"]
    assert row["λ"] == 0.1 and row["documents"] == 3
    assert row["consistent JSD"] == pytest.approx((0.3 + 0.5 + 0.4) / 3)
    assert row["per-instance JSD"] == pytest.approx((0.6 + 0.4 + 0.3) / 3)
    none = wp.matched_comparison({"sst": [few]}, {"sst": per_instance}).loc["sst"]
    assert none["documents"] == 0 and np.isnan(none["consistent JSD"])  # no 0-fallback


def test_seed_budget_is_the_farthest_seed_model_and_never_below_jw_budget():
    points = {("sst", 1): (0.08, 0.1), ("sst", 2): (0.11, 0.1), ("agnews", 1): (0.02, 0.1)}
    assert wp.seed_budget(points, "sst") == pytest.approx(0.11)
    assert wp.seed_budget(points, "agnews") == pytest.approx(wp.MAX_TVD)
    assert wp.seed_budget({}, "sst") == pytest.approx(wp.MAX_TVD)
    adversaries = [_adversary(0.1, [0.1, 0.1], [0.6, 0.6]), _adversary(1.0, [0.2, 0.2], [0.9, 0.9])]
    assert ex.pick_adversary(adversaries, max_tvd=wp.seed_budget(points, "sst")).lam == 0.1
    assert ex.pick_adversary(adversaries) is None  # J&W's 0.05 alone: none qualifies
