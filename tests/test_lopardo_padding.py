"""The authors' padding convention (`LopardoConfig(padding="unk")`): documents padded to max_len
with UNK that takes part in attention. Oracles: the paper's formula written out by hand on the
UNK-padded sequence, autograd, and LIME's definition of its features."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.importance import lime_approximation_terms, lime_text, lopardo_gradient
from attnkit.models.lopardo import (
    LopardoClassifier,
    LopardoConfig,
    lopardo_collate,
    pad_to_max_len,
    sinusoidal_positions,
)
from attnkit.models.vocab import CLS_ID, PAD_ID, UNK_ID, Vocab

pytestmark = pytest.mark.usefixtures("single_thread")

T = 12


def unk_model(seed: int = 0) -> LopardoClassifier:
    torch.manual_seed(seed)
    config = LopardoConfig(
        vocab_size=40,
        max_len=T,
        n_head=3,
        d_in=10,
        d_attn=6,
        d_out=5,
        init_range=0.5,
        padding="unk",
    )
    return LopardoClassifier(config).double().eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Documents of 12, 7 and 3 positions (CLS included), PAD-padded to max_len; (B, T)."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 40, (3, T), generator=generator)
    ids[:, 0] = CLS_ID
    for row, length in enumerate((12, 7, 3)):
        ids[row, length:] = PAD_ID
    return ids, (ids != PAD_ID).long()


def test_padding_is_attended_as_unk_by_the_papers_formula():
    model = unk_model()
    ids, mask = batch()
    out = model(ids, mask)
    heads = model.heads
    positions = sinusoidal_positions(T, 10).double()
    for b in range(3):
        words = torch.where(ids[b] == PAD_ID, UNK_ID, ids[b])  # the authors pad with UNK
        e = model.tok_emb.weight[words] + positions  # (T, d_in), every position
        for h in range(3):
            alpha = torch.softmax((e @ heads.W_k[h]) @ (e[0] @ heads.W_q[h]) / math.sqrt(6), 0)
            torch.testing.assert_close(out.attention[b, h], alpha)
            torch.testing.assert_close(
                out.head_logits[b, h], alpha @ (e @ heads.W_v[h]) @ heads.W_l[h]
            )
    assert (out.attention[2, :, 3:] > 0).all()  # padding takes attention


def test_unk_padding_needs_max_len_inputs_and_a_known_convention():
    model = unk_model()
    ids, mask = batch()
    with pytest.raises(ValueError, match="exactly that many positions"):
        model(ids[:, :7], mask[:, :7])
    with pytest.raises(ValueError, match="padding must be one of"):
        LopardoConfig(vocab_size=40, padding="zeros")
    with pytest.raises(ValueError, match="padding must be one of"):
        lopardo_collate(Vocab(["a"]), 8, padding="zeros")


def test_pad_to_max_len_and_the_collate():
    ids, mask = torch.tensor([[CLS_ID, 5, 6]]), torch.tensor([[1, 1, 1]])
    padded, padded_mask = pad_to_max_len(ids, mask, 6)
    assert padded.tolist() == [[CLS_ID, 5, 6, PAD_ID, PAD_ID, PAD_ID]]
    assert padded_mask.tolist() == [[1, 1, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="exceed max_len"):
        pad_to_max_len(ids, mask, 2)
    vocab = Vocab(["a", "b"])
    examples = [(("a", "b"), 1), (("b",), 0)]
    unk = lopardo_collate(vocab, 6, padding="unk")(examples)
    masked = lopardo_collate(vocab, 6)(examples)
    assert unk["input_ids"].shape == (2, 6) and masked["input_ids"].shape == (2, 3)
    assert torch.equal(unk["input_ids"][:, :3], masked["input_ids"])
    assert torch.equal(unk["attention_mask"].sum(1), masked["attention_mask"].sum(1))
    assert "PaddedToMaxLen" in repr(lopardo_collate(vocab, 6, padding="unk"))


def test_closed_form_gradient_matches_autograd_with_unk_padding():
    model = unk_model()
    ids, mask = batch()
    target = model(ids, mask).logits.argmax(-1)
    embeddings = model.tok_emb(torch.where(ids == PAD_ID, UNK_ID, ids)).detach().requires_grad_()
    logits = model(inputs_embeds=embeddings, attention_mask=mask).logits
    logits.gather(1, target[:, None]).sum().backward()
    closed = lopardo_gradient(model, ids, mask, target)
    torch.testing.assert_close(closed, embeddings.grad, rtol=0, atol=1e-12)
    assert closed[2, 3:].abs().amax() > 1e-4  # padding positions have a gradient too


def test_lime_features_are_the_words_not_the_padding():
    model = unk_model()
    ids, mask = batch()
    explanation = lime_text(model, ids[2], mask[2], n_samples=50)
    assert explanation.coefficients.shape == (1, len(set(ids[2, 1:3].tolist())))
    assert (explanation.feature_of_position[3:] == -1).all()


def test_lime_approximation_sums_over_the_padding_as_the_authors_do():
    """β̂ terms: α_t v_t − α̃_t ṽ_t with α̃ from the all-UNK document *including* its UNK
    padding (the authors' Σ_s g̃_s runs over MAX_LEN positions), factor 1."""
    model = unk_model()
    ids, mask = batch()
    terms = lime_approximation_terms(model, ids, mask, target=0, factor=1.0)  # (B, T)
    heads = model.heads
    positions = sinusoidal_positions(T, 10).double()
    for b in range(3):
        words = torch.where(ids[b] == PAD_ID, UNK_ID, ids[b])
        all_unk = torch.full_like(words, UNK_ID)
        all_unk[0] = CLS_ID
        e, e_unk = (
            model.tok_emb.weight[words] + positions,
            model.tok_emb.weight[all_unk] + positions,
        )
        expected = torch.zeros(T, dtype=torch.float64)
        for h in range(3):
            q = e[0] @ heads.W_q[h]
            alpha = torch.softmax((e @ heads.W_k[h]) @ q / math.sqrt(6), 0)
            g = torch.exp((e_unk @ heads.W_k[h]) @ q / math.sqrt(6))  # g̃_t over all T positions
            contribution = alpha[:, None] * (e @ heads.W_v[h]) - (g / g.sum())[:, None] * (
                e_unk @ heads.W_v[h]
            )
            expected += contribution @ heads.W_l[h][:, 0] / 3
        is_word = mask[b].bool().clone()
        is_word[0] = False
        torch.testing.assert_close(terms[b], expected * is_word, rtol=0, atol=1e-12)
