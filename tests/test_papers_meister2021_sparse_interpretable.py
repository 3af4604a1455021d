"""attnkit.papers.meister2021_sparse_interpretable: τ within the support and the support
indicator against scipy, the anchored co-indexed share, input influence against exact
Jacobians, the gates and summaries on hand-made tables."""

import math

import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

from attnkit.data import make_signal_task
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.vocab import Vocab
from attnkit.papers.meister2021_sparse_interpretable import (
    Classifier,
    anchored_share,
    entropy_drops,
    finite,
    gated,
    input_influence,
    interpretability_row,
    kendall_within_support,
    quality_gates,
    sizes,
    support_indicator_tau,
    tau_gain,
)

torch.set_num_threads(1)

ATTENTION = torch.tensor(
    [
        [0.5, 0.3, 0.2, 0.0, 0.0, 0.0],  # support of 3, pad-free
        [0.6, 0.0, 0.4, 0.0, 0.0, 0.0],  # support of 2, last two tokens padding
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # support of 1: τ within it undefined
    ],
    dtype=torch.float64,
)
IMPORTANCE = torch.tensor(
    [
        [0.1, 0.9, 0.4, 0.3, 0.3, 0.2],  # ties in importance outside the support
        [0.7, 0.2, 0.1, 0.5, 9.0, 9.0],
        [0.3, 0.1, 0.2, 0.4, 0.5, 0.6],
    ],
    dtype=torch.float64,
)
MASK = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool)


def _scipy_tau(x, y):
    return kendalltau(x.numpy(), y.numpy()).statistic  # τ-b, scipy's default


def test_kendall_within_support_matches_scipy_on_the_support():
    tau = kendall_within_support(ATTENTION, IMPORTANCE, MASK)
    for row in range(2):
        support = MASK[row] & (ATTENTION[row] > 0)
        expected = _scipy_tau(ATTENTION[row][support], IMPORTANCE[row][support])
        assert tau[row].item() == pytest.approx(expected, abs=1e-12)
    assert tau[0].item() == pytest.approx(-1 / 3)  # ranks (3, 2, 1) vs (1, 3, 2)
    assert tau[1].item() == pytest.approx(1.0)
    assert math.isnan(tau[2].item())  # one token in the support: no pair to rank


def test_support_indicator_tau_matches_scipy_and_explains_tau_over_all_tokens():
    tau = support_indicator_tau(ATTENTION, IMPORTANCE, MASK)
    for row in range(3):
        real = MASK[row]
        expected = _scipy_tau((ATTENTION[row][real] > 0).double(), IMPORTANCE[row][real])
        assert tau[row].item() == pytest.approx(expected, abs=1e-12)
    # Attention flat on its support: τ-b over all tokens is exactly the indicator's τ-b.
    flat = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0]], dtype=torch.float64)
    importance = torch.tensor([[0.9, 0.1, 0.5, 0.2, 0.3]], dtype=torch.float64)
    mask = torch.ones(1, 5, dtype=torch.bool)
    all_tokens = _scipy_tau(flat[0], importance[0])
    assert support_indicator_tau(flat, importance, mask)[0].item() == pytest.approx(all_tokens)
    # Softmax-like full support: the indicator is constant, τ undefined.
    dense = torch.full((1, 4), 0.25, dtype=torch.float64)
    assert math.isnan(support_indicator_tau(dense, importance[:, :4], mask[:, :4])[0].item())


def test_anchored_share_runs_from_chance_to_one():
    lengths = torch.tensor([4, 2, 1])
    share = torch.tensor([[0.25, 1.0, 0.625], [0.5, 0.75, float("nan")], [1.0, 0, 0]])
    out = anchored_share(share, lengths)
    assert out[0].tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert out[1, :2].tolist() == pytest.approx([0.0, 0.5])
    assert out[2].isnan().all()  # n = 1: no chance level


def _results(accuracy, tau=None, entropies=None):
    index = pd.MultiIndex.from_tuples(
        [("d", "lstm", n) for n in ("softmax", "sparsemax", "entmax15")],
        names=["dataset", "model", "normalizer"],
    )
    frame = pd.DataFrame({"accuracy": accuracy}, index=index)
    if tau is not None:
        frame["tau_gradient"], frame["tau_loo"] = tau, tau
    if entropies is not None:
        frame["attention_entropy"], frame["influence_entropy"] = entropies
    return frame


def test_quality_gates_pass_pairs_and_gated_keeps_them():
    table, requires = quality_gates(_results([0.80, 0.78, 0.74]))
    assert table.loc[("d", "lstm"), "entmax15 − softmax"] == pytest.approx(-0.06)
    assert not table.loc[("d", "lstm"), "passes"]  # a gap of 0.06 > 0.05
    assert list(requires.values()) == [False] and "passing: none of 1" in list(requires)[0]
    assert list(quality_gates(_results([0.64, 0.64, 0.64]))[1].values()) == [False]
    results = pd.concat(
        [
            _results([0.80, 0.78, 0.76]),
            _results([0.9, 0.6, 0.9]).rename(index={"lstm": "transformer"}),
        ]
    )
    table, requires = quality_gates(results)
    assert table["passes"].tolist() == [True, False] and list(requires.values()) == [True]
    assert "passing: d/lstm of 2" in list(requires)[0]
    kept = gated(results, table)
    assert set(kept.index.get_level_values("model")) == {"lstm"} and len(kept) == 3
    assert finite(float("nan")) is None and finite(0.5) == 0.5


def test_tau_gain_and_entropy_drops_on_a_hand_table():
    results = _results([0.8] * 3, tau=[0.2, 0.1, 0.3], entropies=([0.9, 0.3, 0.5], [0.8, 0.7, 0.7]))
    assert tau_gain(results) == pytest.approx(0.1)  # the better sparse map, 0.3, minus 0.2
    attention, influence = entropy_drops(results)
    assert attention == pytest.approx(0.5) and influence == pytest.approx(0.1)
    assert math.isnan(tau_gain(results.iloc[:0])) and math.isnan(entropy_drops(results.iloc[:0])[0])


def test_sizes_reject_an_unknown_profile():
    assert sizes("smoke")["n_explain"] <= sizes("smoke")["n_test"]
    with pytest.raises(ValueError, match="smoke"):
        sizes("medium")


def _classifier(encoder: str, hidden: int = 4) -> Classifier:
    torch.manual_seed(0)
    vocab = Vocab(["a", "b", "c", "d", "e"])
    config = AdditiveConfig(vocab_size=len(vocab), embed_dim=3, hidden_size=hidden, encoder=encoder)
    return Classifier("x", encoder, "softmax", AdditiveClassifier(config).eval(), vocab, 16, None)


def _exact_block_norms(model, ids):
    """‖∂h_t/∂e_s‖_F for one unpadded example by full Jacobian."""
    embeds = model.embed(ids).detach()
    mask = torch.ones_like(ids, dtype=torch.bool)

    def hidden_of(e):
        return model.encode(e, mask)[0]  # (T, H)

    jac = torch.autograd.functional.jacobian(hidden_of, embeds)  # (T, H, 1, T, E)
    return jac[:, :, 0].pow(2).sum((1, 3)).sqrt()  # (T, T)


def test_coindexed_share_is_one_for_the_average_encoder():
    clf = _classifier("average")
    ids = torch.tensor([[3, 4, 5, 6], [7, 3, 0, 0]])
    out = input_influence(clf, ids, ids.ne(0), n_probes=3)
    real = ids.ne(0)
    torch.testing.assert_close(
        out["coindexed"][real], torch.ones(int(real.sum()), dtype=torch.float64)
    )
    assert out["coindexed"][~real].isnan().all()
    # context influence ∝ α_s ‖∂h_s/∂e_s‖-ish, sums to 1 over real tokens, 0 at padding
    torch.testing.assert_close(out["context"].sum(-1), torch.ones(2, dtype=torch.float64))
    assert out["context"][~real].abs().max() == 0


def test_coindexed_share_matches_exact_jacobian_for_the_bilstm():
    clf = _classifier("lstm", hidden=3)
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    exact = _exact_block_norms(clf.model, ids)
    exact_share = torch.diagonal(exact) / exact.sum(-1)
    exact_path = input_influence(clf, ids, ids.ne(0), n_probes=None)["coindexed"][0]
    torch.testing.assert_close(exact_path, exact_share.double(), atol=1e-6, rtol=1e-6)
    estimate = input_influence(clf, ids, ids.ne(0), n_probes=300, seed=1)["coindexed"][0]
    torch.testing.assert_close(estimate, exact_share.double(), atol=0.05, rtol=0)
    assert (exact_share < 1).all()


def test_interpretability_row_on_a_tiny_task():
    data = make_signal_task(12, seed=0)
    vocab = Vocab.build(data.texts)
    torch.manual_seed(0)
    config = AdditiveConfig(
        vocab_size=len(vocab), embed_dim=4, hidden_size=4, normalizer="sparsemax"
    )
    clf = Classifier("x", "lstm", "sparsemax", AdditiveClassifier(config).eval(), vocab, 32, None)
    row = interpretability_row(clf, data, n_explain=8, n_probes=2)
    assert 0 <= row["accuracy"] <= 1 and 0 <= row["attention_sparsity"] <= 1
    assert 0 < row["coindexed_share"] <= 1
    assert row["coindexed_anchored"] <= 1
    assert 0 <= row["influence_entropy"] <= 1.0 + 1e-9
    for name in ("tau_gradient", "tau_gradient_all", "tau_loo", "tau_loo_indicator"):
        assert math.isnan(row[name]) or -1 <= row[name] <= 1
    assert 0 <= row["tau_loo_defined"] <= 1


@pytest.mark.parametrize("architecture", ["lstm", "transformer"])
def test_train_classifier_loads_the_pretrained_vectors_and_keeps_them_frozen(
    architecture, tmp_path, monkeypatch
):
    from attnkit.models.word_vectors import vocabulary_vectors
    from attnkit.papers.meister2021_sparse_interpretable import train_classifier

    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    data = make_signal_task(48, seed=0)
    clf = train_classifier(
        data, data, architecture=architecture, normalizer="sparsemax", pretrained=True,
        epochs=1, max_len=16, hidden_size=8,
    )  # fmt: skip
    expected = vocabulary_vectors(clf.vocab.itos)  # (V, 384)
    assert expected.abs().sum() > 0  # the signal words have MiniLM vectors: the test has signal
    torch.testing.assert_close(clf.model.embedding.weight.detach(), expected)
    assert not clf.model.embedding.weight.requires_grad
    assert clf.training.history  # it trained (the other weights moved, the table did not)
