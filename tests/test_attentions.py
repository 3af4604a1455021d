"""The `Attentions` container: a short repr, `extra` kept, bertviz export without padding."""

from __future__ import annotations

import torch

from attnkit.attentions import Attentions


def _padded() -> Attentions:
    torch.manual_seed(0)
    weights = torch.rand(2, 2, 3, 5, 5).softmax(-1)  # (L, B, H, T, T)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    tokens = [["[CLS]", "a", "b", "c", "[SEP]"], ["[CLS]", "d", "[SEP]", "[PAD]", "[PAD]"]]
    cross = Attentions(torch.rand(2, 2, 3, 5, 4).softmax(-1), mask=mask, kind="cross")
    return Attentions(weights, mask=mask, tokens=tokens, extra={"modules": ["x"], "cross": cross})


def test_repr_is_short_and_says_what_matters():
    text = repr(_padded())
    assert len(text) < 300, text
    for part in ("layers=2", "batch=2", "heads=3", "real tokens=[5, 3]", "[CLS] a b c [SEP]"):
        assert part in text
    assert "tensor(" not in text


def test_extra_kept_on_slicing_and_to():
    attn = _padded()
    one = attn[1]
    assert one.extra["modules"] == ["x"]
    assert torch.equal(one.extra["cross"].weights, attn.extra["cross"].weights[:, 1:2])
    moved = attn.to("cpu")
    assert moved.extra["modules"] == ["x"] and isinstance(moved.extra["cross"], Attentions)


def test_to_bertviz_example_trims_padding():
    attn = _padded()
    layers = attn.to_bertviz(example=1)
    assert len(layers) == 2 and layers[0].shape == (1, 3, 3, 3)  # (1, H, n, n), n real tokens
    assert torch.equal(layers[1][0], attn.weights[1, 1, :, :3, :3])
    assert len(attn.real_tokens(1)) == layers[0].shape[-1]
    assert attn.to_bertviz()[0].shape == (2, 3, 5, 5)  # the whole batch, as before
