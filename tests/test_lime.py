"""Tests for attnkit.importance.lime: LIME for text with UNK masking and Lopardo et al.'s β̂."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from attnkit.importance._common import ImportanceInputError
from attnkit.importance.lime import (
    evaluate_in_batches,
    interpretable_features,
    kernel_weights,
    lime_approximation,
    lime_approximation_terms,
    lime_head_additivity,
    lime_text,
    perturbed_ids,
    sample_presence,
    target_forward,
    weighted_ridge,
)
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig
from attnkit.models.vocab import CLS_ID, PAD_ID, UNK_ID

pytestmark = pytest.mark.usefixtures("single_thread")


class BagOfWords(nn.Module):
    """logits = Σ_t W[w_t] over real tokens, with W[UNK] = W[CLS] = 0: exactly linear in the
    presence indicators, β_j = (count of word j) · W[j, c] for the logit of class c."""

    def __init__(self, vocab_size: int = 30, n_classes: int = 2, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(vocab_size, n_classes, generator=generator).double())
        with torch.no_grad():
            self.weight[[PAD_ID, UNK_ID, CLS_ID]] = 0

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return (self.weight[input_ids] * attention_mask[..., None]).sum(dim=1)  # (B, C)


def tiny_lopardo(seed: int = 0, vocab_size: int = 300, max_len: int = 80) -> LopardoClassifier:
    torch.manual_seed(seed)
    config = LopardoConfig(
        vocab_size=vocab_size, max_len=max_len, n_head=2, d_in=16, d_attn=8, d_out=8
    )
    return LopardoClassifier(config).double().eval()


def document(length: int, seed: int = 0, vocab_size: int = 300) -> Tensor:
    """CLS + `length` distinct random words, `(1 + length,)`."""
    generator = torch.Generator().manual_seed(seed)
    words = torch.randperm(vocab_size - 3, generator=generator)[:length] + 3
    return torch.cat([torch.tensor([CLS_ID]), words])


# --------------------------------------------------------------------------- the pieces


def test_interpretable_features_words_positions_and_padding():
    ids = torch.tensor([CLS_ID, 7, 8, 7, 9, PAD_ID, PAD_ID])
    mask = ids != PAD_ID
    assert interpretable_features(ids, mask).tolist() == [-1, 0, 1, 0, 2, -1, -1]
    assert interpretable_features(ids, mask, features="position").tolist() == [
        -1, 0, 1, 2, 3, -1, -1,
    ]  # fmt: skip
    with pytest.raises(ImportanceInputError, match="features must be"):
        interpretable_features(ids, mask, features="sentence")


def test_sampling_distribution_is_lime_texts():
    n_features, n_samples = 5, 40_000
    presence = sample_presence(n_features, n_samples, torch.Generator().manual_seed(0))
    assert presence.shape == (n_samples, n_features)
    assert (presence[0] == 1).all()  # the document itself
    removed = n_features - presence[1:].sum(dim=1)  # s ~ U{1..D}
    counts = torch.bincount(removed.long(), minlength=n_features + 1)
    assert counts[0] == 0
    shares = counts[1:] / (n_samples - 1)
    assert (shares - 1 / n_features).abs().max() < 0.01
    # Given s, which features go is uniform: every feature is kept with P = (D - 1) / (2D).
    kept_share = presence[1:].mean(dim=0)
    assert (kept_share - (n_features - 1) / (2 * n_features)).abs().max() < 0.01
    again = sample_presence(n_features, n_samples, torch.Generator().manual_seed(0))
    assert torch.equal(presence, again)


def test_kernel_weights_are_limes_cosine_kernel():
    presence = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]).double()
    ones = torch.ones(4, dtype=torch.float64)
    cosine = torch.nn.functional.cosine_similarity(presence, ones[None], dim=1)  # 0 for zeros
    distance = 100 * (1 - cosine)
    expected = torch.sqrt(torch.exp(-(distance**2) / 25**2))
    torch.testing.assert_close(kernel_weights(presence), expected)
    assert kernel_weights(presence)[0] == 1


def test_weighted_ridge_matches_the_augmented_normal_equations():
    generator = torch.Generator().manual_seed(0)
    Z = torch.randint(0, 2, (50, 6), generator=generator).double()
    y = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    weights = torch.rand(50, generator=generator, dtype=torch.float64)
    alpha = 0.7
    beta, intercept = weighted_ridge(Z, y, weights, alpha)
    # Oracle: [1, Z] with an unpenalised intercept, (XᵀWX + diag(0, α, ..)) θ = XᵀWy.
    X = torch.cat([torch.ones(50, 1, dtype=torch.float64), Z], dim=1)
    penalty = torch.diag(torch.tensor([0.0] + [alpha] * 6, dtype=torch.float64))
    theta = torch.linalg.solve(X.T @ (weights[:, None] * X) + penalty, X.T @ (weights[:, None] * y))
    torch.testing.assert_close(beta, theta[1:].T)
    torch.testing.assert_close(intercept, theta[0])
    beta_1, intercept_1 = weighted_ridge(Z, y[:, 1], weights, alpha)  # one output
    torch.testing.assert_close(beta_1, beta[1])
    torch.testing.assert_close(intercept_1, intercept[1])


def test_perturbation_replaces_every_occurrence_in_place():
    ids = torch.tensor([CLS_ID, 7, 8, 7, 9, PAD_ID])
    features = interpretable_features(ids, ids != PAD_ID)
    presence = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0]]).double()
    assert perturbed_ids(ids, features, presence).tolist() == [
        [CLS_ID, 7, 8, 7, 9, PAD_ID],
        [CLS_ID, UNK_ID, 8, UNK_ID, 9, PAD_ID],
        [CLS_ID, 7, UNK_ID, 7, UNK_ID, PAD_ID],
        [CLS_ID, UNK_ID, UNK_ID, UNK_ID, UNK_ID, PAD_ID],
    ]


def test_batched_perturbations_equal_a_looped_evaluation():
    model = tiny_lopardo()
    ids = document(20)
    mask = torch.ones_like(ids, dtype=torch.bool)
    features = interpretable_features(ids, mask)
    presence = sample_presence(20, 37, torch.Generator().manual_seed(1))
    documents = perturbed_ids(ids, features, presence)  # (37, T)
    forward = target_forward(model, target=1)
    with torch.no_grad():
        batched = evaluate_in_batches(forward, documents, mask, batch_size=8)
        looped = torch.stack([forward(row[None], mask[None])[0] for row in documents])
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-12)
    small = lime_text(model, ids, target=1, n_samples=300, batch_size=7)
    large = lime_text(model, ids, target=1, n_samples=300, batch_size=300)
    torch.testing.assert_close(small.coefficients, large.coefficients, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- LIME


def test_lime_recovers_a_model_linear_in_the_presence_indicators():
    model = BagOfWords()
    ids = torch.tensor([CLS_ID, 5, 9, 5, 12, 20, 3, PAD_ID, PAD_ID])  # word 5 twice
    mask = (ids != PAD_ID).long()
    features = interpretable_features(ids, mask)
    words = torch.tensor([5, 9, 12, 20, 3])  # in feature order (first occurrence)
    expected = torch.tensor([2.0, 1, 1, 1, 1], dtype=torch.float64) * model.weight[words, 1]
    exact = lime_text(model, ids, mask, target=1, n_samples=200, alpha=0.0)  # plain WLS
    torch.testing.assert_close(exact.coefficients[0], expected.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(exact.intercepts[0], torch.tensor(0.0, dtype=torch.float64))
    # LIME's own surrogate (ridge, alpha = 1) with LIME's 5000 samples: close to w.
    ridge = lime_text(model, ids, mask, target=1, n_samples=5000, seeds=(0, 1))
    assert (ridge.coefficients - expected.detach()).abs().max() < 0.02 * expected.abs().max()
    # token_scores lines the coefficients up with positions, 0 at CLS and padding.
    scores = exact.token_scores()[0]
    assert scores.shape == ids.shape
    assert scores[0] == 0 and (scores[~mask.bool()] == 0).all()
    torch.testing.assert_close(scores[1], scores[3])
    assert exact.feature_token_ids.tolist() == words.tolist()
    assert torch.equal(exact.feature_of_position, features)


def test_runs_are_seeded_and_shaped():
    model = tiny_lopardo()
    ids = document(12)
    explanation = lime_text(model, ids, target=0, n_samples=200, seeds=(3, 4, 3))
    assert explanation.coefficients.shape == (3, 12)
    assert explanation.intercepts.shape == (3,)
    assert explanation.seeds == (3, 4, 3)
    assert torch.equal(explanation.coefficients[0], explanation.coefficients[2])
    assert not torch.equal(explanation.coefficients[0], explanation.coefficients[1])
    by_position = lime_text(model, ids, target=0, n_samples=200, features="position")
    assert by_position.coefficients.shape == (1, 12)  # distinct words: same features
    as_batch = lime_text(model, ids[None], torch.ones(1, 13), target=0, n_samples=200, seeds=3)
    torch.testing.assert_close(as_batch.coefficients[0], explanation.coefficients[0])
    predicted = int(model(ids[None]).logits.argmax())
    torch.testing.assert_close(
        lime_text(model, ids, n_samples=200).coefficients,
        lime_text(model, ids, target=predicted, n_samples=200).coefficients,
    )


def test_lime_input_errors():
    model = tiny_lopardo()
    with pytest.raises(ImportanceInputError, match="one document at a time"):
        lime_text(model, torch.stack([document(5), document(5, seed=1)]))
    with pytest.raises(ImportanceInputError, match="empty"):
        lime_text(model, torch.tensor([CLS_ID, PAD_ID]), torch.tensor([1, 0]))
    with pytest.raises(ImportanceInputError, match="explained as is"):
        lime_text(lambda ids, mask: ids.sum(1).double(), document(5), target=1)
    with pytest.raises(ImportanceInputError, match="n_samples"):
        lime_text(model, document(5), n_samples=1)


def test_lime_is_additive_over_heads_with_shared_samples():
    model = tiny_lopardo(seed=1)
    ids = document(15, seed=1)
    additivity = lime_head_additivity(model, ids, target=1, n_samples=500)
    assert additivity.head_coefficients.shape == (2, 15)
    assert additivity.max_abs_difference < 1e-12
    single = lime_text(model, ids, target=1, n_samples=500, seeds=0)
    torch.testing.assert_close(additivity.model_coefficients, single.coefficients[0])


# --------------------------------------------------------------------------- the approximation


def test_approximation_is_the_papers_formula():
    """Eq. (19) written out with g̃ = exp(q·k̃/√d) as in the authors' notebook."""
    model = tiny_lopardo(seed=2, vocab_size=30, max_len=12)
    ids = torch.tensor([CLS_ID, 5, 9, 5, 12])
    heads, T = model.heads, ids.numel()
    unk = torch.tensor([CLS_ID] + [UNK_ID] * (T - 1))
    e, e_unk = model.embed(ids[None])[0], model.embed(unk[None])[0]  # (T, d_in)
    expected = torch.zeros(3, dtype=torch.float64)  # words 5, 9, 12
    positions = {0: [1, 3], 1: [2], 2: [4]}
    with torch.no_grad():
        for h in range(2):
            q = e[0] @ heads.W_q[h]
            alpha = torch.softmax(e @ heads.W_k[h] @ q / math.sqrt(8), dim=0)
            g_unk = torch.exp(e_unk @ heads.W_k[h] @ q / math.sqrt(8))  # g̃_s, s = 0..T-1
            v, v_unk, w = e @ heads.W_v[h], e_unk @ heads.W_v[h], heads.W_l[h][:, 1]
            for j, occurrences in positions.items():
                for t in occurrences:
                    term = alpha[t] * v[t] - g_unk[t] * v_unk[t] / g_unk.sum()
                    expected[j] += 1.5 * float(term @ w) / 2
    torch.testing.assert_close(lime_approximation(model, ids, target=1), expected)
    torch.testing.assert_close(lime_approximation(model, ids, target=1, factor=1.0), expected / 1.5)


def test_approximation_terms_batched_with_padding():
    model = tiny_lopardo()
    ids = torch.stack([torch.cat([document(6), torch.zeros(4, dtype=torch.long)]), document(10)])
    mask = (ids != PAD_ID).long()
    terms = lime_approximation_terms(model, ids, mask, target=torch.tensor([0, 1]))  # (B, T)
    assert terms.shape == (2, 11)
    assert (terms[:, 0] == 0).all() and (terms[0, 7:] == 0).all()
    alone = lime_approximation_terms(model, ids[:1, :7], target=0)
    torch.testing.assert_close(terms[:1, :7], alone, rtol=0, atol=1e-12)


def test_lime_is_close_to_the_approximation_and_closer_in_absolute_terms_when_longer():
    """Weak check of Eq. (19) on a random model: β̂ tracks LIME (correlation, scale within
    a factor 2) and |β - β̂| shrinks with the document's length."""
    model = tiny_lopardo(seed=0)
    mean_errors = []
    for length in (8, 64):
        ids = document(length, seed=length)
        beta = lime_text(model, ids, target=1, n_samples=2000).coefficients[0]
        beta_hat = lime_approximation(model, ids, target=1)
        correlation = torch.corrcoef(torch.stack([beta, beta_hat]))[0, 1]
        slope = (beta @ beta_hat) / (beta_hat @ beta_hat)  # LIME ≈ slope · β̂
        assert correlation > 0.9, (length, float(correlation))
        assert 0.5 < slope < 2.0, (length, float(slope))
        mean_errors.append(float((beta - beta_hat).abs().mean()))
    assert mean_errors[1] < mean_errors[0]


def test_lopardo_only_functions_reject_other_models():
    with pytest.raises(ImportanceInputError, match="specific to LopardoClassifier"):
        lime_approximation(BagOfWords(), document(4, vocab_size=30))
    with pytest.raises(ImportanceInputError, match="specific to LopardoClassifier"):
        lime_head_additivity(BagOfWords(), document(4, vocab_size=30))
