"""The EEV entry's GRU and linear interpolation; the paper module's Pearson metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from attnkit.models.expression_gru import ExpressionGRU, interpolate_linear
from attnkit.papers.eev2021_evoked_expression import mean_pearson


def test_interpolation_matches_numpy_interp():
    torch.manual_seed(0)
    sparse = torch.randn(2, 5, 3, dtype=torch.float64)
    dense = interpolate_linear(sparse, 6)
    assert dense.shape == (2, 30, 3)
    times = np.arange(30) / 6
    for b in range(2):
        for k in range(3):
            # np.interp holds the last value beyond the last sample, as interpolate_linear does.
            expected = np.interp(times, np.arange(5), sparse[b, :, k].numpy())
            np.testing.assert_allclose(dense[b, :, k].numpy(), expected)
    torch.testing.assert_close(interpolate_linear(sparse, 1), sparse)
    with pytest.raises(ValueError, match="rate"):
        interpolate_linear(sparse, 0)


def test_sparse_and_dense_gru_share_the_core_and_differ_in_output_rate():
    features = torch.randn(3, 7, 10)
    sparse, dense = ExpressionGRU(10, 8, 15, 1), ExpressionGRU(10, 8, 15, 6)
    assert sparse(features).shape == (3, 7, 15)
    assert dense(features).shape == (3, 42, 15)
    assert sum(p.numel() for p in dense.gru.parameters()) == sum(
        p.numel() for p in sparse.gru.parameters()
    )


def test_mean_pearson_against_scipy():
    torch.manual_seed(1)
    prediction = torch.randn(4, 50, 3, dtype=torch.float64)
    target = prediction + torch.randn(4, 50, 3, dtype=torch.float64)
    expected = np.mean(
        [pearsonr(prediction[b, :, k], target[b, :, k])[0] for b in range(4) for k in range(3)]
    )
    assert mean_pearson(prediction, target) == pytest.approx(expected)
    constant = torch.zeros(1, 50, 1, dtype=torch.float64)
    assert mean_pearson(constant, target[:1, :, :1]) == 0.0
