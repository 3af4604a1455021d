"""Tests for attnkit.recipes.explanation against independent oracles (scipy, brute force)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from attnkit.data.types import TextDataset
from attnkit.models import AdditiveClassifier, AdditiveCollate, AdditiveConfig, Vocab
from attnkit.recipes import explanation as ex

torch.set_num_threads(1)

WORDS = "good bad fine awful great poor the a movie plot".split()


def uniform_attention(data) -> list[list[float]]:
    """1/n over each document's n tokens (W&P's uniform baseline, imposed)."""
    return [[1.0 / len(tokens)] * len(tokens) for tokens in data.texts]


def _model(encoder: str = "lstm", seed: int = 0) -> tuple[AdditiveClassifier, Vocab]:
    vocab = Vocab(WORDS)
    torch.manual_seed(seed)
    model = AdditiveClassifier(
        AdditiveConfig(vocab_size=len(vocab), embed_dim=8, hidden_size=6, encoder=encoder)
    ).eval()
    return model, vocab


def _docs(n: int = 6, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(WORDS, size=int(rng.integers(1, 9)))) for _ in range(n)]


def _dataset(texts, labels=None) -> TextDataset:
    labels = labels if labels is not None else [i % 2 for i in range(len(texts))]
    return TextDataset(texts=texts, labels=labels, label_names=("neg", "pos"), origin="test")


@pytest.mark.parametrize("encoder", ["lstm", "average"])
def test_leave_one_out_delete_matches_running_each_shortened_document(encoder):
    model, vocab = _model(encoder)
    docs = _docs()
    ids, mask = vocab.encode(docs, add_cls=False)
    scores = ex.leave_one_out(model, ids, mask, mode="delete", chunk_size=5)
    for b, doc in enumerate(docs):
        full_ids, _ = vocab.encode([doc], add_cls=False)
        with torch.no_grad():
            p = torch.softmax(model(full_ids).logits, -1)[0, 1].item()
        for t in range(len(doc)):
            if len(doc) == 1:
                assert scores[b, t] == 0
                continue
            short, _ = vocab.encode([doc[:t] + doc[t + 1 :]], add_cls=False)
            with torch.no_grad():
                q = torch.softmax(model(short).logits, -1)[0, 1].item()
            assert scores[b, t].item() == pytest.approx(abs(p - q), abs=1e-6)
    assert (scores[~mask.bool()] == 0).all()


def test_leave_one_out_unk_replaces_each_token_in_place():
    model, vocab = _model("lstm")
    ids, mask = vocab.encode(_docs(seed=1), add_cls=False)
    ours = ex.leave_one_out(model, ids, mask, mode="unk")
    # Oracle: replace each token by UNK by hand and take |Δ p(class 1)| (= TVD for 2 classes).
    with torch.no_grad():
        p = torch.softmax(model(ids, mask).logits, -1)[:, 1]
        for b in range(ids.shape[0]):
            for t in range(int(mask[b].sum())):
                blanked = ids[b : b + 1].clone()
                blanked[0, t] = vocab.unk_id
                q = torch.softmax(model(blanked, mask[b : b + 1]).logits, -1)[0, 1]
                assert ours[b, t].item() == pytest.approx(abs(p[b] - q).item(), abs=1e-6)
    with pytest.raises(ValueError, match="mode"):
        ex.leave_one_out(model, ids, mask, mode="drop")


def test_jw_gradient_treats_attention_as_a_constant():
    """Oracle: central finite differences along each token's own embedding direction, with the
    attention frozen at the model's own values: d p(e_t + h e_t)/dh = Σ_d ∂p/∂e_{t,d} e_{t,d}."""
    model, vocab = _model("lstm", seed=3)
    model = model.double()
    docs = _docs(3, seed=2)
    ids, mask = vocab.encode(docs, add_cls=False)
    scores = ex.jw_gradient(model, ids, mask)
    with torch.no_grad():
        out = model(ids, mask)
        embeds = model.embed(ids)
        own = out.attention
        predicted = out.logits.argmax(-1)
    h = 1e-6
    for b in range(len(docs)):
        for t in range(int(mask[b].sum())):
            shifted = []
            for sign in (1, -1):
                e = embeds.clone()
                e[b, t] = e[b, t] * (1 + sign * h)
                with torch.no_grad():
                    logits = model(inputs_embeds=e, attention_mask=mask, attention=own).logits
                shifted.append(torch.softmax(logits, -1)[b, predicted[b]].item())
            expected = abs(shifted[0] - shifted[1]) / (2 * h)
            assert scores[b, t].item() == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_kendall_scores_match_scipy():
    model, vocab = _model("average")
    docs = [d for d in _docs(8, seed=4) if len(d) >= 3]
    data = _dataset(docs)
    clf = ex.Classifier(model, vocab, AdditiveCollate(vocab), None, "x", "average", "learned")
    expl = ex.explain(clf, data, batch_size=3)
    results = ex.kendall_scores(expl)
    assert set(results) == {"attention–gradient", "attention–loo", "gradient–loo"}
    for b, doc in enumerate(docs):
        n = len(doc)
        a = expl.attention[b, :n].numpy()
        g = expl.gradient[b, :n].numpy()
        tau, p = stats.kendalltau(a, g)
        assert results["attention–gradient"].tau[b].item() == pytest.approx(tau, abs=1e-9)
        assert results["attention–gradient"].p_value[b].item() == pytest.approx(p, abs=1e-9)
    table = ex.kendall_table({("sst", "average"): expl})
    assert len(table) == 3
    row = table[table.pair == "attention–gradient"].iloc[0]
    assert row.tau_mean == pytest.approx(float(np.nanmean(results["attention–gradient"].tau)))
    assert row["repo_tau (sig)"] == "0.606 (0.85)"


def test_macro_f1_by_hand():
    # class 0: tp=1 fp=1 fn=1 -> 0.5; class 1: tp=2 fp=1 fn=1 -> 2/3
    assert ex.macro_f1([0, 0, 1, 1, 1], [0, 1, 0, 1, 1]) == pytest.approx((0.5 + 2 / 3) / 2)


def test_imposing_a_models_own_attention_changes_nothing():
    model, vocab = _model("lstm", seed=5)
    data = _dataset(_docs(7, seed=5))
    clf = ex.Classifier(model, vocab, AdditiveCollate(vocab), None, "x", "lstm", "learned")
    own = ex.attention_of(clf, data)
    assert [len(w) for w in own] == [len(t) for t in data.texts]
    assert all(sum(w) == pytest.approx(1.0, abs=1e-5) for w in own)
    torch.testing.assert_close(ex.predict_proba(clf, data, own), ex.predict_proba(clf, data))
    uniform = uniform_attention(data)
    assert uniform[0] == [1 / len(data.texts[0])] * len(data.texts[0])
    triples = ex.imposed(data, own)
    assert triples[0][2] == tuple(own[0])


def test_empty_document_gets_a_clear_error():
    model, vocab = _model("lstm")
    clf = ex.Classifier(model, vocab, AdditiveCollate(vocab), None, "x", "lstm", "learned")
    with pytest.raises(ValueError, match="empty"):
        ex.predict_proba(clf, [["good"], []])


def test_load_splits_filters_and_falls_back_to_synthetic(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = ex.load_splits(
            "agnews", n_train=50, n_dev=20, n_test=10, max_tokens=30, data_dir=str(tmp_path)
        )
    assert splits.synthetic
    assert any("synthetic" in str(w.message) for w in caught)
    assert splits.sizes() == {"train": 50, "dev": 20, "test": 10}
    for part in (splits.train, splits.dev, splits.test):
        assert all(2 <= len(t) <= 30 for t in part.texts)
    with pytest.raises(ValueError, match="unknown dataset"):
        ex.load_splits("sst5", n_train=1, n_dev=1, n_test=1)


def test_train_classifier_uniform_and_imposed(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = ex.load_splits(
            "sst", n_train=40, n_dev=10, n_test=10, max_tokens=20, data_dir=str(tmp_path)
        )
    uniform = ex.train_classifier(
        splits, attention="uniform", profile="smoke", epochs=1, progress=False
    )
    weights = ex.attention_of(uniform, splits.test)
    assert all(w == pytest.approx([1 / len(w)] * len(w)) for w in weights)
    diag = ex.train_classifier(
        splits,
        encoder="average",
        attention="imposed",
        imposed_train=uniform_attention(splits.train),
        imposed_dev=uniform_attention(splits.dev),
        profile="smoke",
        epochs=1,
        progress=False,
    )
    scores = ex.evaluate(diag, splits.test, uniform_attention(splits.test))
    assert 0 <= scores["f1"] <= 1 and 0 <= scores["accuracy"] <= 1
    with pytest.raises(ValueError, match="imposed"):
        ex.train_classifier(splits, attention="imposed", profile="smoke", epochs=1)
