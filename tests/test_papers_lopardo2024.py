"""Tests for attnkit.papers.lopardo2024_attention_posthoc against independent oracles (autograd,
scipy, numpy least squares, direct calls)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from attnkit.data.types import TextDataset
from attnkit.importance import lime_approximation, lime_text
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig
from attnkit.models.vocab import Vocab
from attnkit.papers.lopardo2024_attention_posthoc import (
    GRADIENT_SCORES,
    LopardoModel,
    agreement_table,
    attention_peakedness,
    evaluate_accuracy,
    explain_documents,
    explanation_frame,
    gradient_check,
    gradient_scores,
    lime_error_by_length,
    top_tokens,
    train_model,
)
from attnkit.papers.lopardo2024_attention_posthoc import proportional_residual as paper_residual
from attnkit.train import TrainResult

WORDS = [f"w{i}" for i in range(30)]


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_trained(seed: int = 0, max_len: int = 24) -> LopardoModel:
    """A random double-precision model with peaked attention (init_range 1) and its vocab."""
    vocab = Vocab(WORDS)
    torch.manual_seed(seed)
    config = LopardoConfig(
        vocab_size=len(vocab),
        max_len=max_len,
        n_head=3,
        d_in=10,
        d_attn=6,
        d_out=5,
        init_range=1.0,
    )
    model = LopardoClassifier(config).double().eval()
    training = TrainResult([], None, False, 0.0, 0.0, False)
    return LopardoModel(model, vocab, training)


def documents(n: int, lengths=(20, 9, 14, 5), seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(WORDS, size=lengths[i % len(lengths)])) for i in range(n)]


def autograd_oracle(model, ids, mask, target):
    embeddings = model.tok_emb(ids).detach().requires_grad_()
    logits = model(inputs_embeds=embeddings, attention_mask=mask).logits
    logits.gather(1, target[:, None]).sum().backward()
    return embeddings.grad


def test_gradient_check_matches_an_independent_autograd():
    trained = tiny_trained()
    ids, mask = trained.encode(documents(4))
    check = gradient_check(trained, ids, mask)
    target = trained.model(ids, mask).logits.argmax(-1)
    oracle = autograd_oracle(trained.model, ids, mask, target)
    torch.testing.assert_close(check.autograd, oracle, rtol=0, atol=1e-12)
    assert check.max_abs_difference.shape == (4,)
    assert float(check.max_abs_difference.max()) < 1e-12
    assert float(check.max_abs_gradient.min()) > 1e-3  # the comparison is not of zeros
    torch.testing.assert_close(check.max_abs_gradient, oracle.abs().amax(dim=(1, 2)))


def test_gradient_scores_are_the_four_reductions():
    trained = tiny_trained()
    ids, mask = trained.encode(documents(2))
    gradient = torch.randn(*ids.shape, 10, dtype=torch.float64)
    scores = gradient_scores(trained.model, ids, gradient)
    assert list(scores) == list(GRADIENT_SCORES)
    e = trained.model.tok_emb(ids) + trained.model.pos_enc[: ids.shape[1]]
    b, t = 1, 3
    g = gradient[b, t].numpy()
    assert scores["gradient (mean)"][b, t].item() == pytest.approx(g.mean())
    assert scores["gradient (L1)"][b, t].item() == pytest.approx(np.abs(g).sum())
    assert scores["gradient (L2)"][b, t].item() == pytest.approx(np.sqrt((g**2).sum()))
    assert scores["gradient × input"][b, t].item() == pytest.approx(
        float(g @ e[b, t].detach().numpy())
    )


def test_explain_documents_lines_every_explanation_up_with_the_tokens():
    trained = tiny_trained()
    ids, mask = trained.encode(documents(3))
    explained = explain_documents(
        trained, ids, mask, lime_runs=2, lime_samples=300, seed=0, progress=False
    )
    out = trained.model(ids, mask)
    torch.testing.assert_close(explained.scores["attention (mean)"], out.attention.mean(1))
    torch.testing.assert_close(explained.scores["attention (max)"], out.attention.amax(1))
    assert set(GRADIENT_SCORES) <= set(explained.scores)
    for b in range(3):
        target = int(explained.target[b])
        direct = lime_text(
            trained.model, ids[b], mask[b], target=target, n_samples=300, seeds=[0, 1]
        )
        torch.testing.assert_close(explained.lime_runs[b], direct.coefficients)
        torch.testing.assert_close(
            explained.scores["LIME"][b], direct.token_scores().mean(0), rtol=0, atol=1e-12
        )
        beta_hat = lime_approximation(trained.model, ids[b], mask[b], target=target).double()
        torch.testing.assert_close(explained.lime_approx[b], beta_hat)
        where = direct.feature_of_position
        assert torch.equal(
            explained.scores["LIME approximation"][b][where >= 0], beta_hat[where[where >= 0]]
        )
        # CLS and padding get no LIME score
        assert (explained.scores["LIME"][b][where < 0] == 0).all()
        assert explained.feature_tokens[b] == trained.vocab.decode(direct.feature_token_ids)
    frame = explanation_frame(explained, 1, trained.vocab)
    assert len(frame) == int(mask[1].sum()) - 1 and list(frame.index) == documents(3)[1]


def test_agreement_table_equals_scipy_per_document():
    trained = tiny_trained()
    ids, mask = trained.encode(documents(4))
    explained = explain_documents(trained, ids, mask, lime_runs=1, lime_samples=200, progress=False)
    table, rho = agreement_table(explained)
    assert "attention (mean)" not in table.index and "LIME approximation" not in table.index
    for name in ("LIME", "gradient × input", "gradient (L2)"):
        expected_rho, expected_tau = [], []
        for b in range(4):
            n = int(mask[b].sum())
            a = explained.scores["attention (mean)"][b, 1:n].numpy()
            other = np.abs(explained.scores[name][b, 1:n].numpy())
            expected_rho.append(stats.spearmanr(a, other).statistic)
            expected_tau.append(stats.kendalltau(a, other).statistic)
        np.testing.assert_allclose(rho[name].numpy(), expected_rho, atol=1e-10)
        assert table.loc[name, "spearman_mean"] == pytest.approx(np.mean(expected_rho))
        assert table.loc[name, "kendall_mean"] == pytest.approx(np.mean(expected_tau))
        assert table.loc[name, "spearman_std"] == pytest.approx(np.std(expected_rho))


def test_lime_error_by_length_truncates_the_same_documents():
    trained = tiny_trained()
    docs = documents(3, lengths=(20, 4, 18))  # the 4-word one is too short and is skipped
    frame = lime_error_by_length(
        trained, docs, [5, 15], lime_samples=200, factors=(1.5, 1.0), progress=False
    )
    assert len(frame) == 2 * 2 * 2 and set(frame.document) == {0, 1}
    row = frame[(frame.document == 1) & (frame.length == 5) & (frame.factor == 1.0)].iloc[0]
    ids, mask = trained.vocab.encode([docs[2][:5]])
    full_ids, full_mask = trained.vocab.encode([docs[2]])
    target = int(trained.model(full_ids, full_mask).logits.argmax(-1)[0])
    beta = lime_text(trained.model, ids[0], mask[0], target=target, n_samples=200).coefficients[0]
    beta_hat = lime_approximation(trained.model, ids[0], mask[0], target=target, factor=1.0)
    assert row.mean_abs_error == pytest.approx(float((beta - beta_hat).abs().mean()))
    assert row.relative_error == pytest.approx(float((beta - beta_hat).norm() / beta.norm()))
    assert row.slope == pytest.approx(float(beta @ beta_hat / (beta_hat @ beta_hat)))
    assert row.n_words == len(set(docs[2][:5]))
    with pytest.raises(ValueError, match="max_len - 1"):
        lime_error_by_length(trained, [WORDS * 2], [40], progress=False)
    with pytest.raises(ValueError, match="no document"):
        lime_error_by_length(trained, docs, [50], progress=False)


def test_encode_truncates_with_a_warning_and_rejects_empty_documents():
    trained = tiny_trained(max_len=8)
    with pytest.warns(UserWarning, match="exceed max_len=8"):
        ids, mask = trained.encode([WORDS[:20]])
    assert ids.shape == (1, 8)
    with pytest.raises(ValueError, match="empty"):
        trained.encode([[]])
    ids, _ = trained.encode([["w1", "never-seen"]])
    assert trained.vocab.decode(ids[0]) == ["<cls>", "w1", "<unk>"]


@pytest.mark.parametrize("padding", ["masked", "unk"])
def test_train_model_learns_a_separable_task(tmp_path, monkeypatch, padding):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(64):
        label = i % 2
        words = list(rng.choice(WORDS[2:], size=6)) + ["good" if label else "bad"]
        rng.shuffle(words)
        texts.append(words)
        labels.append(label)
    data = TextDataset(texts, labels, ("negative", "positive"), "test")
    options = dict(profile="smoke", epochs=8, lr=1e-2, batch_size=16, seed=0, progress=False)
    trained = train_model(data, data, padding=padding, **options)
    assert trained.model.config.n_head == 2 and "good" in trained.vocab
    assert trained.padding == padding
    assert evaluate_accuracy(trained, data) >= 0.95
    again = train_model(data, data, padding=padding, **options)
    assert again.training.from_cache
    other = train_model(data, data, padding="masked" if padding == "unk" else "unk", **options)
    assert not other.training.from_cache  # the convention is part of the cache key


def per_head_autograd(model, ids, mask, target):
    """∇_{e_t} f_h for every head by autograd, `(B, H, T, d)`."""
    embeddings = model.tok_emb(ids).detach().requires_grad_()
    head_logits = model(inputs_embeds=embeddings, attention_mask=mask).head_logits
    grads = []
    for h in range(head_logits.size(1)):
        chosen = head_logits[:, h].gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(chosen, embeddings, retain_graph=True)
        grads.append(grad)
    return torch.stack(grads, dim=1)


def test_proportional_residual_equals_a_least_squares_oracle():
    trained = tiny_trained()
    ids, mask = trained.encode(documents(4))
    got = paper_residual(trained, ids, mask)
    out = trained.model(ids, mask)
    target = out.logits.argmax(-1)
    grads = per_head_autograd(trained.model, ids, mask, target).detach().numpy()
    alpha = out.attention.detach().numpy()
    for b in range(4):
        words = slice(1, int(mask[b].sum()))  # CLS left out
        residuals = []
        for h in range(3):
            G, a = grads[b, h, words], alpha[b, h, words]  # (n, d), (n,)
            # min_c ‖G − a cᵀ‖_F is a least-squares problem per dimension, one regressor a.
            c, *_ = np.linalg.lstsq(a[:, None], G, rcond=None)
            residuals.append(np.linalg.norm(G - a[:, None] @ c) / np.linalg.norm(G))
        assert float(got[b]) == pytest.approx(np.mean(residuals), rel=1e-9)
    assert 0 < float(got.min()) and float(got.max()) < 1


def test_proportional_residual_is_zero_when_attention_ignores_the_keys():
    """With W_k = 0 attention is uniform, q·k_t = 0, and ∇_{e_t} f_h = α_t w W_vᵀ exactly:
    proportional to attention, residual 0."""
    trained = tiny_trained()
    with torch.no_grad():
        trained.model.heads.W_k.zero_()
    ids, mask = trained.encode(documents(3))
    torch.testing.assert_close(
        paper_residual(trained, ids, mask), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_top_tokens_and_attention_peakedness():
    frame = pd.DataFrame(
        {"attention (mean)": [0.2, 0.5, 0.3], "LIME": [0.1, -0.2, -0.9]},
        index=pd.Index(["a", "b", "c"], name="token"),
    )
    assert top_tokens(frame) == {"attention (mean)": "b", "LIME": "c"}
    trained = tiny_trained()
    ids, mask = trained.encode(documents(2))
    explained = explain_documents(trained, ids, mask, lime_runs=1, lime_samples=50, progress=False)
    n = mask.sum(1).double()
    expected = (explained.attention.mean(1).amax(1) * n).mean()
    assert attention_peakedness(explained) == pytest.approx(float(expected))
    uniform = explain_documents(trained, ids, mask, lime_runs=1, lime_samples=50, progress=False)
    uniform.attention = mask[:, None, :].double().expand(-1, 3, -1) / n[:, None, None]
    uniform.scores["attention (mean)"] = uniform.attention.mean(1)
    assert attention_peakedness(uniform) == pytest.approx(1.0)
