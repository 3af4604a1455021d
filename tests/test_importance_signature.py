"""One attribution signature `f(model, inputs, target=None, **options) -> (B, T)` with
tokenizer-aware defaults; causal-LM, seq2seq and image targets. Oracles: loops that blank one
token at a time, autograd on `inputs_embeds` / pixels, completeness of integrated gradients."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    GPT2Config,
    GPT2LMHeadModel,
    ViTConfig,
    ViTForImageClassification,
)

from attnkit.importance import (
    DegenerateScoreWarning,
    ImportanceInputError,
    UnscoredWordWarning,
    blank_out,
    embedding_attribution,
    input_gradient,
    integrated_gradients,
    lime,
    patch_occlusion,
)

TEXTS = ["the keys to the cabinet are on the table", "a cat sat"]


@pytest.fixture(scope="module")
def bert(single_thread):
    from attnkit.models.pretrained import load_minilm

    torch.manual_seed(0)
    model, tokenizer = load_minilm(num_labels=2)
    return model.eval(), tokenizer


def _naive_blank_out(
    model, inputs: dict, unk: int, scored: Tensor, read=lambda out, b: out
) -> Tensor:
    """One forward per (example, token): p(target | x) - p(target | x with token -> unk)."""
    ids = inputs["input_ids"]
    scores = torch.zeros(ids.shape, dtype=torch.float64)
    with torch.no_grad():
        for b in range(len(ids)):
            row = {k: v[b : b + 1] for k, v in inputs.items()}
            probs = F.softmax(read(model(**row).logits, b), -1)[0]
            target = probs.argmax()
            for t in scored[b].nonzero().flatten().tolist():
                changed = dict(row, input_ids=row["input_ids"].clone())
                changed["input_ids"][0, t] = unk
                blanked = F.softmax(read(model(**changed).logits, b), -1)[0]
                scores[b, t] = float(probs[target] - blanked[target])
    return scores


# --- tokenizer-aware defaults ----------------------------------------------------------------------


def test_blank_out_bert_specials_unk_and_token_types_from_the_tokenizer(bert):
    model, tokenizer = bert
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")  # a BatchEncoding
    scores = blank_out(model, batch, tokenizer=tokenizer)  # (B, T)
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    words = batch["attention_mask"].bool() & ~special
    expected = _naive_blank_out(model, dict(batch), tokenizer.unk_token_id, words)
    torch.testing.assert_close(scores.double(), expected, atol=1e-5, rtol=1e-4)
    assert (scores[~words] == 0).all() and (scores[words] != 0).all()  # [CLS], [SEP], padding
    assert tokenizer.unk_token_id == 100  # not id 1, which is [unused0] in BERT's vocabulary
    # special_tokens_mask from the tokenizer gives the same, without tokenizer=
    marked = tokenizer(TEXTS, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    again = blank_out(model, inputs=marked, unk_id=tokenizer.unk_token_id)
    torch.testing.assert_close(again, scores)
    # token_type_ids reach the model
    other = dict(batch, token_type_ids=torch.ones_like(batch["token_type_ids"]))
    assert not torch.allclose(blank_out(model, other, tokenizer=tokenizer), scores)


def test_blank_out_without_an_unk_id_names_the_fix(bert):
    model, tokenizer = bert
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with pytest.raises(ImportanceInputError, match="pass tokenizer="):
        blank_out(model, batch)


def test_lime_features_are_words_and_removed_words_become_unk(bert):
    model, tokenizer = bert
    batch = tokenizer(TEXTS[1:], return_tensors="pt")
    seen: list[Tensor] = []

    class Recording(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, **inputs: Tensor):
            seen.append(inputs["input_ids"])
            return self.inner(**inputs)

    scores = lime(Recording(), batch, tokenizer=tokenizer, n_samples=64)
    ids = torch.cat(seen)
    original = batch["input_ids"][0]
    changed = ids != original
    assert changed.any() and (ids[changed] == tokenizer.unk_token_id).all()
    assert not changed[:, 0].any() and not changed[:, -1].any()  # [CLS] and [SEP] never removed
    assert scores[0, 0] == 0 and scores[0, -1] == 0 and (scores[0, 1:-1] != 0).all()


def test_a_real_word_left_unscored_is_warned_about():
    model = _gpt2()
    inputs = {"input_ids": torch.tensor([[5, 6, 7, 8]])}
    with pytest.warns(UnscoredWordWarning, match="real token"):
        integrated_gradients(model, inputs, baseline_id=0, skip_first=True, n_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnscoredWordWarning)
        scores = integrated_gradients(model, inputs, baseline_id=0, n_steps=4)
    assert (scores[0] != 0).all()  # GPT-2 has no CLS: the first word is scored


# --- causal LM: next-token target --------------------------------------------------------------------


def _gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=30, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()


def test_causal_lm_next_token_gradient_and_blank_out():
    model = _gpt2()
    inputs = {
        "input_ids": torch.tensor([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }
    last = torch.tensor([4, 2])  # the last real position predicts the next token
    read = lambda logits, b: logits[:, last[b]]  # noqa: E731
    per_dim = embedding_attribution(model, inputs)  # (B, T, D) d p(next token) / d e
    embeds = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_()
    logits = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits
    at_last = logits[torch.arange(2), last]  # (B, V)
    target = at_last.argmax(-1)
    prob = F.softmax(at_last, -1)[torch.arange(2), target].sum()
    (grad,) = torch.autograd.grad(prob, embeds)
    torch.testing.assert_close(per_dim, grad * inputs["attention_mask"][..., None])
    # GPT-2 reads embeddings through LayerNorm only: the paper's signed sum is 0, and says so.
    with pytest.warns(DegenerateScoreWarning, match="LayerNorm"):
        input_gradient(model, inputs, absolute=False)
    blanked = blank_out(model, inputs, unk_id=1)
    words = inputs["attention_mask"].bool()
    torch.testing.assert_close(
        blanked.double(), _naive_blank_out(model, inputs, 1, words, read), atol=1e-6, rtol=1e-4
    )


# --- encoder–decoder: decoder-token target -----------------------------------------------------------


def test_seq2seq_decoder_token_blank_out_and_integrated_gradients():
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=32, dropout=0.0,
    )  # fmt: skip
    model = BartForConditionalGeneration(config).eval()
    inputs = {
        "input_ids": torch.tensor([[0, 5, 6, 7, 2], [0, 9, 10, 2, 1]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]),
        "decoder_input_ids": torch.tensor([[2, 0, 5], [2, 0, 9]]),
    }
    read = lambda logits, b: logits[:, -1]  # noqa: E731  the token after the last decoder one
    blanked = blank_out(model, inputs, unk_id=3)
    words = inputs["attention_mask"].bool()
    expected = _naive_blank_out(model, inputs, 3, words, read)
    torch.testing.assert_close(blanked.double(), expected, atol=1e-6, rtol=1e-4)
    scores, delta = integrated_gradients(
        model, inputs, baseline_id=1, n_steps=32, return_convergence_delta=True
    )
    assert scores.shape == (2, 5) and (scores[~words] == 0).all()
    baseline = dict(inputs, input_ids=inputs["input_ids"].masked_fill(words, 1))
    with torch.no_grad():
        y = F.softmax(model(**inputs).logits[:, -1], -1)
        target = y.argmax(-1)
        y0 = F.softmax(model(**baseline).logits[:, -1], -1)
    rows = torch.arange(2)
    difference = y[rows, target] - y0[rows, target]
    torch.testing.assert_close(scores.sum(-1), difference, atol=2e-4, rtol=2e-2)  # completeness


# --- images: pixel_values -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, num_labels=3,
    )  # fmt: skip
    return ViTForImageClassification(config).eval()


def test_image_gradient_ig_and_patch_occlusion(vit):
    pixels = torch.randn(2, 3, 8, 8)
    inputs = {"pixel_values": pixels}
    x = pixels.clone().requires_grad_()
    probs = F.softmax(vit(pixel_values=x).logits, -1)
    target = probs.argmax(-1)
    (grad,) = torch.autograd.grad(probs[torch.arange(2), target].sum(), x)
    per_patch = grad.sum(1).reshape(2, 2, 4, 2, 4).sum((2, 4)).reshape(2, 4)  # (B, P) row-major
    torch.testing.assert_close(input_gradient(vit, inputs, absolute=False), per_patch)
    ig = integrated_gradients(vit, inputs, n_steps=64)
    with torch.no_grad():
        y0 = F.softmax(vit(pixel_values=torch.zeros_like(pixels)).logits, -1)
    difference = probs.detach()[torch.arange(2), target] - y0[torch.arange(2), target]
    torch.testing.assert_close(ig.sum(-1), difference, atol=1e-4, rtol=1e-2)
    occlusion = blank_out(vit, inputs)
    torch.testing.assert_close(occlusion, patch_occlusion(vit, inputs))
    with torch.no_grad():
        hidden = pixels.clone()
        hidden[:, :, 0:4, 4:8] = 0  # patch 1: first row, second column
        drop = (
            probs.detach()[torch.arange(2), target]
            - F.softmax(vit(pixel_values=hidden).logits, -1)[torch.arange(2), target]
        )
    torch.testing.assert_close(occlusion[:, 1], drop)


def test_image_of_the_wrong_size_names_the_expected_size(vit):
    with pytest.raises(ImportanceInputError, match=r"expects \(3, 8, 8\)"):
        input_gradient(vit, {"pixel_values": torch.randn(1, 3, 16, 16)})
