"""Tests for attnkit.metrics against scipy, per example, with ties, padding and NaN rows."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import jensenshannon

from attnkit.attentions import Attentions
from attnkit.metrics import (
    MetricInputError,
    entropy,
    fraction_significant,
    jsd,
    kendall,
    mean_std,
    sparsity,
    spearman,
    tvd,
)


def scored_rows(seed: int, batch: int, length: int, *, ties: bool, min_length: int = 2):
    """Random `(B, T)` score pairs with ragged lengths, garbage in the padding, and (when `ties`)
    integer scores with many ties, plus a constant row and a one-token row."""
    rng = np.random.default_rng(seed)
    if ties:
        a = rng.integers(0, 4, (batch, length)).astype(float)
        b = rng.integers(0, 3, (batch, length)).astype(float)
    else:
        a = rng.normal(size=(batch, length))
        b = a + 2 * rng.normal(size=(batch, length))
    lengths = rng.integers(min_length, length + 1, batch)
    lengths[-1] = 1  # a single real token: correlation undefined
    a[0] = 7.0  # a constant row: correlation undefined
    mask = np.arange(length)[None, :] < lengths[:, None]
    a[~mask], b[~mask] = np.nan, 1e9  # padding must not matter
    return a, b, mask


def scipy_per_example(function, a, b, mask, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input; we expect NaN there
        results = [function(x[m], y[m], **kwargs) for x, y, m in zip(a, b, mask, strict=True)]
    return np.array([r.statistic for r in results]), np.array([r.pvalue for r in results])


@pytest.mark.parametrize("ties", [True, False])
def test_spearman_equals_scipy_per_example(ties):
    a, b, mask = scored_rows(0, 60, 12, ties=ties)
    expected, _ = scipy_per_example(scipy.stats.spearmanr, a, b, mask)
    rho = spearman(torch.tensor(a), torch.tensor(b), torch.tensor(mask))
    assert rho.shape == (60,) and rho.dtype == torch.float64
    np.testing.assert_allclose(rho.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert rho[[0, -1]].isnan().all()


@pytest.mark.parametrize(("ties", "length"), [(True, 12), (False, 20), (False, 45)])
def test_kendall_tau_b_and_p_value_equal_scipy_per_example(ties, length):
    # Ties -> asymptotic p; no ties and <= 33 tokens -> exact; 45 tokens -> mostly asymptotic.
    a, b, mask = scored_rows(1, 60, length, ties=ties)
    expected_tau, expected_p = scipy_per_example(scipy.stats.kendalltau, a, b, mask)
    result = kendall(a, b, mask)
    np.testing.assert_allclose(result.tau.numpy(), expected_tau, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.p_value.numpy(), expected_p, rtol=1e-10, atol=1e-300)
    assert result.tau[[0, -1]].isnan().all() and result.p_value[[0, -1]].isnan().all()


def test_kendall_methods_and_extreme_tails():
    # scipy's asymptotic variance divides by n - 2: rows of 2 tokens raise there.
    a, b, mask = scored_rows(2, 20, 10, ties=False, min_length=3)
    a, b, mask = a[:-1], b[:-1], mask[:-1]
    for method in ("exact", "asymptotic"):
        _, expected_p = scipy_per_example(scipy.stats.kendalltau, a, b, mask, method=method)
        np.testing.assert_allclose(
            kendall(a, b, mask, method=method).p_value, expected_p, rtol=1e-10
        )
    # 50 untied tokens one swap away from identical: scipy's auto mode is exact here.
    x = np.arange(50.0)
    y = x.copy()
    y[[3, 4]] = y[[4, 3]]
    expected = scipy.stats.kendalltau(x, y)
    result = kendall(x, y)
    assert result.tau.dim() == 0
    np.testing.assert_allclose(result.p_value.item(), expected.pvalue, rtol=1e-10)
    with pytest.raises(MetricInputError, match="tied scores"):
        kendall([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], method="exact")


def test_padded_equals_unpadded():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=7), rng.normal(size=7)
    padded_x = np.concatenate([x, [np.nan, 5.0]])[None]
    padded_y = np.concatenate([y, [0.0, -3.0]])[None]
    mask = np.array([[True] * 7 + [False] * 2])
    assert spearman(padded_x, padded_y, mask)[0] == spearman(x, y)
    assert kendall(padded_x, padded_y, mask).tau[0] == kendall(x, y).tau


def test_bad_scores_get_clear_errors():
    with pytest.raises(MetricInputError, match="same tokens"):
        spearman(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(MetricInputError, match="mask must have"):
        spearman(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 4)))
    with pytest.raises(MetricInputError, match=r"NaN/inf at a real token .* \[1, 2\]"):
        kendall(np.array([[1.0, 2, 3], [1, 2, np.nan]]), np.ones((2, 3)))


def test_mean_std_and_fraction_significant_leave_nan_out():
    summary = mean_std(torch.tensor([0.2, float("nan"), 0.4, 0.6]))
    assert summary.n == 3 and summary.n_nan == 1
    assert summary.mean == pytest.approx(0.4) and summary.std == pytest.approx(
        np.std([0.2, 0.4, 0.6])
    )
    assert "n=3, 1 NaN left out" in str(summary)
    assert math.isnan(mean_std([float("nan")]).mean)
    assert fraction_significant([0.01, 0.05, 0.2, float("nan")]) == pytest.approx(2 / 3)


def random_distributions(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p, q = rng.random(shape) ** 3, rng.random(shape) ** 3
    p[..., 0] = 0.0  # zeros exercise 0 log 0
    return p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)


def test_jsd_against_scipy_and_its_bounds():
    p, q = random_distributions(4, (30, 9))
    divergence = jsd(p, q)
    np.testing.assert_allclose(divergence, jensenshannon(p, q, axis=-1) ** 2, rtol=1e-10)
    torch.testing.assert_close(divergence, jsd(q, p), rtol=0, atol=1e-15)  # symmetric
    assert (jsd(p, p) == 0).all()
    assert (divergence <= math.log(2)).all()
    disjoint = jsd([[0.5, 0.5, 0, 0]], [[0, 0, 0.5, 0.5]])
    assert disjoint.item() == pytest.approx(math.log(2), abs=1e-15)


def test_distances_respect_masks_and_check_normalisation():
    p, q = random_distributions(5, (4, 6))
    padded_p = np.concatenate([p, np.full((4, 2), 0.3)], axis=-1)  # padding mass to ignore
    padded_q = np.concatenate([q, np.full((4, 2), 0.7)], axis=-1)
    mask = np.array([True] * 6 + [False] * 2)
    torch.testing.assert_close(jsd(padded_p, padded_q, mask), jsd(p, q))
    torch.testing.assert_close(tvd(padded_p, padded_q, mask), tvd(p, q))
    np.testing.assert_allclose(tvd(p, q), 0.5 * np.abs(p - q).sum(-1), rtol=1e-12)
    assert ((tvd(p, q) >= 0) & (tvd(p, q) <= 1)).all()
    with pytest.raises(MetricInputError, match="normalize=True"):
        jsd(2 * p, q)
    torch.testing.assert_close(jsd(2 * p, q, normalize=True), jsd(p, q))
    with pytest.raises(MetricInputError, match="broadcast"):
        tvd(p, q, np.ones(5, dtype=bool))


def test_entropy_against_scipy():
    p, _ = random_distributions(6, (5, 7))
    np.testing.assert_allclose(entropy(p), scipy.stats.entropy(p, axis=-1), rtol=1e-12)
    assert entropy(np.full(8, 1 / 8)).item() == pytest.approx(math.log(8))


def test_sparsity_counts_exact_zeros_among_real_entries():
    values = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.2, 0.0, 0.8, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert sparsity(values, mask).item() == pytest.approx(3 / 7)
    torch.testing.assert_close(
        sparsity(values, mask, dim=-1), torch.tensor([1 / 3, 2 / 4], dtype=torch.float64)
    )
    weights = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # (T, S)
    attentions = Attentions(weights[None, None, None], mask=torch.tensor([[1, 1, 0]]))
    assert sparsity(attentions).item() == pytest.approx(1 / 4)  # real (query, key) pairs only
