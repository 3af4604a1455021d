"""attnkit.papers.zhao2019_explicit_sparse: the ceil(n/4) rule against the top-k normaliser."""

import pytest
import torch

from attnkit.normalizers import topk
from attnkit.papers._sparse_seq2seq import toy_translation_splits
from attnkit.papers.zhao2019_explicit_sparse import ceil_div_k, lengths_table, sizes, variants


def test_ceil_div_k_on_hand_cases():
    assert [ceil_div_k(n) for n in (1, 3, 4, 5, 16, 17, 36)] == [1, 1, 1, 2, 4, 5, 9]
    assert ceil_div_k(10, div=2) == 5 and ceil_div_k(2, min_k=3) == 2  # capped at n
    with pytest.raises(ValueError, match="n >= 1"):
        ceil_div_k(0)


def test_ceil_div_k_is_what_topk_div_4_keeps_per_padded_row():
    """Oracle: top-k with div=4 keeps exactly ceil(n/4) keys of each row (no ties), n counting
    only the attendable keys."""
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 40, generator=generator, dtype=torch.float64)
    lengths = [1, 5, 11, 17, 24, 40]
    mask = torch.arange(40)[None, :] < torch.tensor(lengths)[:, None]
    kept = (topk(scores, mask=mask, div=4) > 0).sum(-1).tolist()
    assert kept == [ceil_div_k(n) for n in lengths]


def test_variants_and_lengths_table():
    names = [name for name, _, _ in variants(sizes("quick"))]
    assert names == ["softmax", "sparsemax", "top-2", "top-8", "top-ceil(n/4)"]
    _, _, test = toy_translation_splits(20, 2, 20, seed=0, sentences=(2, 3))
    table = lengths_table(test)
    n = [len(e.src) for e in test]
    assert table.loc["mean", "n"] == pytest.approx(sum(n) / len(n))
    assert table.loc["max", "ceil(n/4)"] == ceil_div_k(max(n))
