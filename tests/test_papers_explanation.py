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


def test_matched_comparison_uses_the_same_prediction_budget_and_no_fallback():
    per_instance = SimpleNamespace(
        found=torch.tensor([True, True, False, True]),
        jsd=torch.tensor([0.6, 0.5, 0.6, 0.4], dtype=torch.float64),
    )
    within = _adversary(0.1, [0.01, 0.2, 0.0, 0.0], [0.3, 0.6, 0.1, 0.1])  # mean TVD 0.0525 > 0.05
    close = _adversary(1.0, [0.0, 0.04, 0.1, 0.0], [0.2, 0.2, 0.3, 0.2])  # mean TVD 0.035
    table = wp.matched_comparison({"sst": [within, close]}, {"sst": per_instance})
    row = table.loc["sst"]
    assert row["λ"] == 1.0 and row["documents"] == 3  # docs 0, 1, 3: both within 0.05
    assert row["consistent JSD"] == pytest.approx(0.2)
    assert row["per-instance JSD"] == pytest.approx(0.5)
    none = wp.matched_comparison({"sst": [within]}, {"sst": per_instance}).loc["sst"]
    assert none["documents"] == 0 and np.isnan(none["consistent JSD"])
    assert ex.pick_adversary([within]) is None
