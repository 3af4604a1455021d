"""attnkit.recipes.sparse: data splits, speed table, input influence against exact Jacobians."""

import pytest
import torch

from attnkit.data import make_signal_task
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.vocab import Vocab
from attnkit.recipes.sparse import (
    Classifier,
    input_influence,
    interpretability_row,
    speed_table,
    toy_translation_splits,
    train_translator,
    translation_table,
)

torch.set_num_threads(1)


def test_toy_translation_splits_are_disjoint():
    train, dev, test = toy_translation_splits(60, 10, 10, seed=3)
    seen = {(e.src, e.tgt) for e in train}
    assert len(train) == 60 and len(dev) == 10 and len(test) == 10
    assert not any((e.src, e.tgt) in seen for e in [*dev, *test])


def test_translator_tables_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    train, dev, test = toy_translation_splits(40, 4, 4, seed=0)
    small = dict(d_model=8, d_ff=16, n_head=2, dropout=0.0, epochs=1, batch_size=40, progress=False)
    translators = [train_translator(train, dev, n, **small) for n in ("softmax", "rela")]
    table, stats = translation_table(translators, test)
    assert set(table.index) == {"softmax", "rela"}
    assert 0 <= table.loc["rela", "sparsity"] <= 1
    assert table.loc["softmax", "null_rate"] == 0
    assert len(stats["rela"]["aer_best_head"]) == 2
    speed = speed_table(translators, train, test, train_steps=1, repeats=1)
    assert speed.loc["softmax", "train_speedup"] == pytest.approx(1.0)
    assert speed.loc["softmax", "decode_speedup"] == pytest.approx(1.0)
    assert (speed["decode_s"] > 0).all()


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
    row = interpretability_row(clf, data, n_probes=2)
    assert 0 <= row["accuracy"] <= 1 and 0 <= row["attention_sparsity"] <= 1
    assert 0 < row["coindexed_share"] <= 1
    assert 0 <= row["influence_entropy"] <= 1.0 + 1e-9
    assert -1 <= row["tau_gradient"] <= 1
