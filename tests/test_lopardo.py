"""Tests for attnkit.models.lopardo and the closed-form gradient (attnkit.importance.closed_form)."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.capture import capture
from attnkit.importance.closed_form import lopardo_gradient
from attnkit.models.lopardo import (
    PROFILES,
    LopardoClassifier,
    LopardoConfig,
    lopardo_collate,
    sinusoidal_positions,
)
from attnkit.models.vocab import CLS_ID, PAD_ID, UNK_ID, Vocab
from attnkit.train import TrainConfig, accuracy, cross_entropy_loss, fit, set_seed

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_model(
    *, dtype: torch.dtype = torch.float64, seed: int = 0, init_range: float = 0.1, classes: int = 2
) -> LopardoClassifier:
    torch.manual_seed(seed)
    config = LopardoConfig(
        vocab_size=40,
        max_len=12,
        n_head=3,
        d_in=10,
        d_attn=6,
        d_out=5,
        n_classes=classes,
        init_range=init_range,
    )
    return LopardoClassifier(config).to(dtype).eval()


def padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four documents of lengths 12, 7, 3 and 10 (CLS included), right-padded; (B, T)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 40, (4, 12), generator=generator)
    ids[:, 0] = CLS_ID
    for row, length in enumerate((12, 7, 3, 10)):
        ids[row, length:] = PAD_ID
    return ids, (ids != PAD_ID).long()


# --------------------------------------------------------------------------- the model


def test_shapes_attention_and_mean_of_heads():
    model = tiny_model()
    ids, mask = padded_batch()
    out = model(ids, mask)
    assert out.logits.shape == (4, 2)
    assert out.attention.shape == (4, 3, 12)
    assert out.head_logits.shape == (4, 3, 2)
    assert out.attention_maps is None
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(4, 3, dtype=torch.float64))
    assert (out.attention[mask[:, None, :].expand_as(out.attention) == 0] == 0).all()
    torch.testing.assert_close(out.logits, out.head_logits.mean(dim=1))


def test_forward_matches_the_paper_formula_per_head():
    """f_h = softmax(q·k/√d) V W_ℓ with q from CLS, written out with plain matrix products."""
    model = tiny_model(init_range=0.5)
    ids, mask = padded_batch()
    out = model(ids, mask)
    heads = model.heads
    for b in range(ids.size(0)):
        length = int(mask[b].sum())
        e = model.tok_emb.weight[ids[b, :length]] + sinusoidal_positions(12, 10)[:length].double()
        for h in range(3):
            q = e[0] @ heads.W_q[h]
            k, v = e @ heads.W_k[h], e @ heads.W_v[h]
            alpha = torch.softmax(k @ q / math.sqrt(6), dim=0)
            torch.testing.assert_close(out.attention[b, h, :length], alpha)
            torch.testing.assert_close(out.head_logits[b, h], alpha @ v @ heads.W_l[h])


def test_padded_equals_unpadded_and_batched_equals_single():
    model = tiny_model()
    ids, mask = padded_batch()
    batched = model(ids, mask)
    for row in range(ids.size(0)):
        length = int(mask[row].sum())
        single = model(ids[row : row + 1, :length])
        torch.testing.assert_close(single.logits[0], batched.logits[row], rtol=0, atol=1e-12)
        torch.testing.assert_close(
            single.attention[0], batched.attention[row, :, :length], rtol=0, atol=1e-12
        )


def test_full_maps_and_capture():
    model = tiny_model()
    ids, mask = padded_batch()
    out = model(ids, mask, return_full_attention=True)
    assert out.attention_maps.shape == (4, 3, 12, 12)
    torch.testing.assert_close(out.attention_maps[:, :, 0], out.attention)
    torch.testing.assert_close(out.head_logits, model(ids, mask).head_logits)  # CLS-only path
    padding_rows = out.attention_maps.permute(0, 2, 1, 3)[mask == 0]  # (n_pad, H, T)
    assert (padding_rows == 0).all()
    captured = capture(model, input_ids=ids, attention_mask=mask)
    assert captured.weights.shape == (1, 4, 3, 12, 12)  # (L, B, H, T, T)
    torch.testing.assert_close(captured.weights[0], out.attention_maps)


def test_sinusoidal_positions():
    encoding = sinusoidal_positions(5, 7)  # odd width: one cosine fewer
    t = torch.arange(5.0)
    torch.testing.assert_close(encoding[:, 0], torch.sin(t))
    torch.testing.assert_close(encoding[:, 1], torch.cos(t))
    torch.testing.assert_close(encoding[:, 6], torch.sin(t / 10000 ** (6 / 7)))
    model = tiny_model(dtype=torch.float32)
    torch.testing.assert_close(
        model.embed(torch.tensor([[CLS_ID, 5]]))[0, 1],
        model.tok_emb.weight[5] + sinusoidal_positions(12, 10)[1],
    )


def test_profiles_and_config_checks():
    full = LopardoConfig.profile("full", vocab_size=100)
    assert (full.n_head, full.d_in, full.d_attn, full.d_out, full.max_len) == (6, 128, 64, 64, 256)
    assert full == LopardoConfig(vocab_size=100)  # the defaults are the paper's
    assert LopardoConfig.profile("smoke", vocab_size=100, n_head=4).n_head == 4
    assert set(PROFILES) == {"smoke", "quick", "full"}
    with pytest.raises(ValueError, match="unknown profile"):
        LopardoConfig.profile("huge", vocab_size=100)
    with pytest.raises(ValueError, match="n_head"):
        LopardoConfig(vocab_size=100, n_head=0)


# --------------------------------------------------------------------------- bad input


def test_too_long_raises_in_forward_and_truncates_with_a_warning_in_collate():
    model = tiny_model()
    ids = torch.full((1, 13), 5)
    ids[0, 0] = CLS_ID
    with pytest.raises(ValueError, match="exceeds the model's max_len=12"):
        model(ids)
    vocab = Vocab(["a", "b", "c"])
    collate = lopardo_collate(vocab, max_len=4)
    with pytest.warns(UserWarning, match="Truncated to the first 4"):
        batch = collate([(["a", "b", "c", "a", "b"], 1)])
    assert batch["input_ids"].tolist() == [[CLS_ID, vocab.lookup("a"), vocab.lookup("b"), 5]]


def test_empty_document_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="empty documents"):
        model(torch.tensor([[CLS_ID, 5, 6], [CLS_ID, PAD_ID, PAD_ID]]))
    with pytest.raises(ValueError, match="empty token list"):
        lopardo_collate(Vocab(["a"]), 8)([([], 0)])


def test_unknown_words_become_unk():
    vocab = Vocab(["good", "bad"])
    batch = lopardo_collate(vocab, 8)([(["good", "zzyzx"], 1)])
    assert batch["input_ids"].tolist() == [[CLS_ID, vocab.lookup("good"), UNK_ID]]


def test_ids_outside_vocabulary_missing_cls_and_bad_masks():
    model = tiny_model()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[CLS_ID, 40]]))
    with pytest.raises(ValueError, match="CLS token"):
        model(torch.tensor([[5, 6]]))
    with pytest.raises(ValueError, match="padding at position 0"):
        model(torch.tensor([[CLS_ID, 6]]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        model(torch.tensor([[CLS_ID, 6]]), torch.tensor([[1, 1, 1]]))


def test_trains_with_the_package_trainer():
    vocab = Vocab(["good", "bad", "film"])
    examples = [(("good", "film"), 1), (("bad", "film"), 0)] * 16
    set_seed(0)
    model = LopardoClassifier(LopardoConfig.profile("smoke", len(vocab), max_len=8))
    result = fit(
        model,
        examples,
        examples,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=lopardo_collate(vocab, 8),
        config=TrainConfig(epochs=3, batch_size=8, lr=1e-2),
        cache=False,
        progress=False,
    )
    assert result.history[-1].dev_metric == 1.0
    assert result.history[-1].train_loss < result.history[0].train_loss


# --------------------------------------------------------------------------- the gradient


def autograd_gradient(
    model: LopardoClassifier, ids: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """∇ of the target logit w.r.t. the token embeddings, by autograd (the oracle)."""
    token_embeddings = model.tok_emb(ids).detach().requires_grad_()
    logits = model(inputs_embeds=token_embeddings, attention_mask=mask).logits
    logits.gather(1, target[:, None]).sum().backward()
    return token_embeddings.grad


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_gradient_matches_autograd(dtype, tolerance, seed):
    # init_range 1 gives peaked attention and O(1) gradients, so the tolerance means something.
    model = tiny_model(dtype=dtype, seed=seed, init_range=1.0, classes=3)
    ids, mask = padded_batch(seed)
    target = torch.tensor([0, 1, 2, 1])
    closed_form = lopardo_gradient(model, ids, mask, target)  # (B, T, d_in)
    expected = autograd_gradient(model, ids, mask, target)
    assert closed_form.shape == (4, 12, 10) and closed_form.dtype == dtype
    assert expected.abs().max() > 0.1
    assert (closed_form - expected).abs().max() < tolerance
    assert (closed_form[mask == 0] == 0).all()


def test_gradient_per_head_target_default_and_the_cls_query_term():
    model = tiny_model(init_range=1.0)
    ids, mask = padded_batch()
    per_head = lopardo_gradient(model, ids, mask, 1, per_head=True)  # (B, H, T, d_in)
    assert per_head.shape == (4, 3, 12, 10)
    torch.testing.assert_close(per_head.mean(dim=1), lopardo_gradient(model, ids, mask, 1))
    predicted = model(ids, mask).logits.argmax(-1)
    torch.testing.assert_close(
        lopardo_gradient(model, ids, mask), lopardo_gradient(model, ids, mask, predicted)
    )
    # The CLS embedding also makes the query: without eq. (2)'s extra term its gradient differs.
    heads, e = model.heads, model.embed(ids)
    with torch.no_grad():
        alpha = model(ids, mask).attention  # (B, H, T)
        u = torch.einsum("btd,hdo,ho->bht", e, heads.W_v, heads.W_l[:, :, 1])
        q = torch.einsum("bd,hda->bha", e[:, 0], heads.W_q)
        key_direction = torch.einsum("bha,hda->bhd", q, heads.W_k) / math.sqrt(6)
        value_direction = torch.einsum("hdo,ho->hd", heads.W_v, heads.W_l[:, :, 1])
        f_h = (alpha * u).sum(-1, keepdim=True)
        eq1 = (alpha * (u - f_h))[..., None] * key_direction[:, :, None] + alpha[
            ..., None
        ] * value_direction[None, :, None]
    torch.testing.assert_close(eq1[:, :, 1:], per_head[:, :, 1:])
    assert (eq1[:, :, 0] - per_head[:, :, 0]).abs().max() > 1e-3


def test_gradient_rejects_other_models():
    with pytest.raises(ValueError, match="closed form for LopardoClassifier"):
        lopardo_gradient(torch.nn.Linear(2, 2), torch.tensor([[CLS_ID, 5]]))
