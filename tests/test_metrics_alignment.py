"""Alignment / translation metrics against hand-computed values."""

import math

import pytest
import torch

from attnkit.metrics_alignment import (
    aer,
    alignments_from_attention,
    corpus_bleu,
    cross_attention_aer,
    head_diversity,
    null_rate,
)

torch.set_num_threads(1)


def test_aer_hand_computed():
    # A = {(0,0), (1,1), (2,1)}, S = {(0,0), (1,1)}, P = S ∪ {(2,1)}:
    # |A∩S| = 2, |A∩P| = 3, |A| + |S| = 5 → AER = 1 − 5/5 = 0.
    assert aer([{(0, 0), (1, 1), (2, 1)}], [{(0, 0), (1, 1)}], [{(2, 1)}]) == 0.0
    # Without the possible link: 1 − (2 + 2) / 5 = 0.2.
    assert aer([{(0, 0), (1, 1), (2, 1)}], [{(0, 0), (1, 1)}]) == pytest.approx(0.2)
    # Pooled over sentences, not averaged: (1 + 1) / (1 + 2) hits vs sizes.
    value = aer([{(0, 0)}, {(5, 5)}], [{(0, 0)}, {(1, 1)}])
    assert value == pytest.approx(1 - (1 + 1) / (2 + 2))
    assert aer([set()], [{(0, 0)}]) == 1.0
    assert math.isnan(aer([set()], [set()]))
    with pytest.raises(ValueError, match="one link set per sentence"):
        aer([set()], [set(), set()])


def test_alignments_from_attention_argmax_and_null_rows():
    w = torch.tensor([[0.1, 0.9, 0.0], [0.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.9, 0.0, 0.1]])
    # row 1 attends to nothing → no link; row 3 is beyond tgt_len; column 2 beyond src_len.
    assert alignments_from_attention(w, src_len=2, tgt_len=3) == {(1, 0), (0, 2)}
    assert alignments_from_attention(w, src_len=2, tgt_len=3, threshold=0.7) == {(1, 0)}


def test_cross_attention_aer_best_and_mean():
    # 1 layer, 1 sentence, 2 heads; head 0 is the gold diagonal, head 1 the anti-diagonal.
    eye = torch.eye(2)
    weights = torch.stack([eye, eye.flip(0)])[None, None]  # (1, 1, 2, 2, 2)
    out = cross_attention_aer(weights, [2], [2], [{(0, 0), (1, 1)}])
    assert out["per_head"].tolist() == [[0.0, 1.0]]
    assert out["best_head"].tolist() == [0.0]
    assert out["head_mean"].tolist() == [0.5]


def test_null_rate_counts_real_queries_only():
    w = torch.zeros(1, 1, 2, 3, 2)  # (L, B, H, T, S)
    w[0, 0, 0, 0] = torch.tensor([1.0, 0.0])
    w[0, 0, 1, :2] = torch.tensor([0.5, 0.5])
    mask = torch.tensor([[True, True, False]])
    # real (query, head) pairs: 2 queries × 2 heads = 4; null: head 0 query 1 → 1/4.
    assert float(null_rate(w, mask)) == pytest.approx(0.25)
    assert float(null_rate(w)) == pytest.approx(3 / 6)
    per_head = null_rate(w, mask, dim=(1, 3))
    assert per_head.tolist() == [[0.5, 0.0]]


def test_head_diversity_identical_disjoint_and_renormalised():
    same = torch.tensor([0.5, 0.5])
    w = torch.stack([same, same])[None, None, :, None, :]  # (1, 1, 2, 1, 2)
    assert float(head_diversity(w)[0]) == pytest.approx(0.0)
    disjoint = torch.tensor([[1.0, 0.0], [0.0, 1.0]])[None, None, :, None, :]
    assert float(head_diversity(disjoint)[0]) == pytest.approx(math.log(2))
    # unnormalised rows (ReLA) are renormalised; an all-zero head row is left out.
    scaled = torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])[None, None, :, None, :]
    assert float(head_diversity(scaled)[0]) == pytest.approx(math.log(2))


def test_corpus_bleu_hand_computed():
    ref = "the cat sat on the mat".split()
    assert corpus_bleu([ref], [ref]) == pytest.approx(100.0)
    hyp = "the cat sat on a mat".split()
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3 ("the cat sat on"); c = r = 6 → BP = 1.
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** (1 / 4)
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)
    # "the cat ran on a mat": no 4-gram in common → 0 without smoothing.
    assert corpus_bleu(["the cat ran on a mat".split()], [ref]) == 0.0
    # with max_n = 2: p1 = 4/6, p2 = 1/5 ("the cat").
    expected = 100 * (4 / 6 * 1 / 5) ** (1 / 2)
    assert corpus_bleu(["the cat ran on a mat".split()], [ref], max_n=2) == pytest.approx(expected)
    # brevity penalty: hypothesis "the cat" (c = 2) vs r = 6, unigram/bigram exact.
    short = "the cat".split()
    assert corpus_bleu([short], [ref], max_n=2) == pytest.approx(100 * math.exp(1 - 6 / 2))
    # clipping: "the the the" vs "the cat" → p1 = 1/3.
    assert corpus_bleu([["the"] * 3], [["the", "cat"]], max_n=1) == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="hypotheses"):
        corpus_bleu([hyp], [])
