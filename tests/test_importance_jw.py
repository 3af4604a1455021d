"""attnkit.importance.leave_one_out / jw_gradient and attnkit.metrics.macro_f1 against oracles:
running each shortened document, finite differences, scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from attnkit.importance.jw_gradient import jw_gradient
from attnkit.importance.leave_one_out import leave_one_out
from attnkit.metrics import MetricInputError, macro_f1
from attnkit.models import AdditiveClassifier, AdditiveConfig, Vocab

torch.set_num_threads(1)
WORDS = "good bad fine awful great poor the a movie plot".split()


def _model(encoder="lstm"):
    torch.manual_seed(0)
    vocab = Vocab(WORDS)
    config = AdditiveConfig(vocab_size=len(vocab), embed_dim=8, hidden_size=6, encoder=encoder)
    return AdditiveClassifier(config).eval(), vocab


def _batch(vocab, n=5, seed=1):
    rng = np.random.default_rng(seed)
    docs = [list(rng.choice(WORDS, size=int(rng.integers(1, 8)))) for _ in range(n)]
    return docs, *vocab.encode(docs, add_cls=False)


@pytest.mark.parametrize("encoder", ["lstm", "average"])
def test_leave_one_out_deletes_each_token_like_running_the_shorter_document(encoder):
    model, vocab = _model(encoder)
    docs, ids, mask = _batch(vocab)
    scores = leave_one_out(model, ids, mask, chunk_size=3)
    assert scores.dtype == torch.float64 and scores.shape == ids.shape
    for b, doc in enumerate(docs):
        with torch.no_grad():
            p = torch.softmax(model(vocab.encode([doc], add_cls=False)[0]).logits, -1)[0, 1]
        for t in range(len(doc)):
            if len(doc) == 1:
                assert scores[b, t] == 0
                continue
            short = vocab.encode([doc[:t] + doc[t + 1 :]], add_cls=False)[0]
            with torch.no_grad():
                q = torch.softmax(model(short).logits, -1)[0, 1]
            assert scores[b, t].item() == pytest.approx(abs(float(p - q)), abs=1e-6)
    assert (scores[~mask.bool()] == 0).all()


def test_leave_one_out_unk_mode_and_bad_mode():
    model, vocab = _model()
    docs, ids, mask = _batch(vocab, n=3)
    scores = leave_one_out(model, ids, mask, mode="unk", unk_id=vocab.unk_id)
    b, t = 0, 0
    replaced = ids.clone()
    replaced[b, t] = vocab.unk_id
    with torch.no_grad():
        p = torch.softmax(model(ids, mask).logits, -1)[b, 1]
        q = torch.softmax(model(replaced, mask).logits, -1)[b, 1]
    assert scores[b, t].item() == pytest.approx(abs(float(p - q)), abs=1e-6)
    with pytest.raises(ValueError, match="delete"):
        leave_one_out(model, ids, mask, mode="drop")


def test_jw_gradient_matches_finite_differences_with_attention_held_fixed():
    model, vocab = _model()
    docs, ids, mask = _batch(vocab, n=3)
    model = model.double()
    ours = jw_gradient(model, ids, mask)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        own, predicted = out.attention, out.logits.argmax(-1)
        embeds = model.embed(ids)

    def prob(e):
        logits = model(inputs_embeds=e, attention_mask=mask, attention=own).logits
        return torch.softmax(logits, -1)[torch.arange(len(ids)), predicted]

    h = 1e-6
    for b in range(len(docs)):
        for t in range(len(docs[b])):
            # d/dh ŷ(e + h·e_t at token t) at h = 0 is Σ_d ∂ŷ/∂e_{t,d} · e_{t,d}
            step = torch.zeros_like(embeds)
            step[b, t] = embeds[b, t] * h
            with torch.no_grad():
                slope = (prob(embeds + step)[b] - prob(embeds - step)[b]) / (2 * h)
            assert ours[b, t].item() == pytest.approx(abs(float(slope)), rel=1e-4, abs=1e-9)
    assert (ours[~mask.bool()] == 0).all()


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels, predicted = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
        expected = f1_score(
            labels, predicted, average="macro", labels=np.union1d(labels, predicted)
        )
        assert macro_f1(predicted, labels) == pytest.approx(expected)
    assert macro_f1(torch.tensor([1, 1]), torch.tensor([1, 1])) == 1.0
    with pytest.raises(MetricInputError, match="same length"):
        macro_f1([0, 1], [0])
