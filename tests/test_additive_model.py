"""Tests for attnkit.models.additive: masks, uniform / imposed attention, normalisers, training.

Oracles: the additive score vᵀ tanh(W h + b) and a softmax over the unpadded sub-vector written
out here, Σ α_t h_t and the head applied by hand, the same example without padding, 1/len,
`F.binary_cross_entropy_with_logits` for the sigmoid head, and a learnable synthetic task.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import train_signal_classifier

from attnkit.attentions import AttentionInputError
from attnkit.data import make_signal_task
from attnkit.importance import gradient_x_input
from attnkit.models.additive import (
    PROFILE_SIZES,
    AdditiveClassifier,
    AdditiveCollate,
    AdditiveConfig,
)
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.normalizers import NORMALIZERS
from attnkit.train import accuracy, cross_entropy_loss, evaluate

ENCODERS = ["lstm", "average"]
ROW_STOCHASTIC = ["softmax", "sparsemax", "entmax15", "topk"]


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_model(encoder: str = "lstm", seed: int = 0, **overrides) -> AdditiveClassifier:
    torch.manual_seed(seed)
    config = AdditiveConfig(vocab_size=12, embed_dim=6, hidden_size=5, encoder=encoder, **overrides)
    return AdditiveClassifier(config).double().eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[3, 5, 6, 7, 0, 0], [4, 4, 8, 9, 10, 11], [9, 0, 0, 0, 0, 0]])  # (B, T)
    return ids, (ids != 0).long()


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("normalizer", list(NORMALIZERS))
def test_padding_gets_zero_attention_and_padded_equals_unpadded(encoder, normalizer):
    model = tiny_model(encoder, normalizer=normalizer)
    ids, mask = padded_batch()
    out = model(ids, mask)
    assert out.logits.shape == (3, 2) and out.attention.shape == (3, 6)
    assert out.hidden.shape == (3, 6, model.hidden_size)
    assert torch.all(out.attention[mask == 0] == 0)
    assert torch.all(out.hidden[mask == 0] == 0)
    assert torch.isfinite(out.logits).all()
    for row in range(3):
        n = int(mask[row].sum())
        alone = model(ids[row : row + 1, :n])
        torch.testing.assert_close(out.logits[row], alone.logits[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out.attention[row, :n], alone.attention[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("normalizer", list(NORMALIZERS))
def test_each_normaliser_gives_valid_weights_and_finite_gradients(normalizer):
    model = tiny_model(normalizer=normalizer).train()
    ids, mask = padded_batch()
    out = model(ids, mask)
    assert (out.attention >= 0).all()
    if normalizer in ROW_STOCHASTIC:
        torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, dtype=torch.float64))
    out.logits.logsumexp(-1).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("encoder", ENCODERS)
def test_attention_is_softmax_of_additive_scores_over_real_tokens(encoder):
    model = tiny_model(encoder)
    ids, mask = padded_batch()
    out = model(ids, mask)
    W, b, v = model.attention.W.weight, model.attention.W.bias, model.attention.v.weight[0]
    for row in range(3):
        n = int(mask[row].sum())
        h = out.hidden[row, :n]  # (n, H)
        scores = torch.stack([v @ torch.tanh(W @ h[t] + b) for t in range(n)])
        expected = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()
        torch.testing.assert_close(out.attention[row, :n], expected)


def test_uniform_mode_gives_one_over_length():
    model = tiny_model(attention="uniform")
    ids, mask = padded_batch()
    out = model(ids, mask)
    lengths = mask.sum(-1, keepdim=True).double()
    torch.testing.assert_close(out.attention, mask.double() / lengths, rtol=0, atol=0)
    assert "attention=uniform" in repr(model)  # so attnkit.train's cache key tells the modes apart


@pytest.mark.parametrize("encoder", ENCODERS)
def test_imposed_attention_is_used_verbatim(encoder):
    model = tiny_model(encoder)
    ids, mask = padded_batch()
    generator = torch.Generator().manual_seed(1)
    imposed = torch.rand(3, 6, generator=generator, dtype=torch.float64) * mask
    imposed = imposed / imposed.sum(-1, keepdim=True)  # a distribution over the real tokens
    out = model(ids, mask, attention=imposed)
    assert torch.equal(out.attention, imposed)
    context = (imposed[..., None] * out.hidden).sum(1)  # (B, H)
    z = context @ model.output.weight[0] + model.output.bias[0]  # (B,)
    torch.testing.assert_close(out.logits, torch.stack([torch.zeros_like(z), z], dim=1))
    assert not torch.allclose(out.logits, model(ids, mask).logits)
    with pytest.raises(AttentionInputError, match="padding"):
        model(ids, mask, attention=torch.ones(3, 6, dtype=torch.float64))
    with pytest.raises(AttentionInputError, match="shape"):
        model(ids, mask, attention=imposed[:, :4])


def test_decode_takes_several_distributions_per_example():
    model = tiny_model()
    ids, mask = padded_batch()
    out = model(ids, mask)
    uniform = mask.double() / mask.sum(-1, keepdim=True)
    stacked = torch.stack([uniform, out.attention], dim=1)  # (B, 2, T)
    logits = model.decode(out.hidden, stacked)  # (B, 2, C)
    torch.testing.assert_close(logits[:, 0], model(ids, mask, attention=uniform).logits)
    torch.testing.assert_close(logits[:, 1], out.logits)


def test_sigmoid_head_is_jain_wallace_binary_output():
    model = tiny_model()
    ids, mask = padded_batch()
    out = model(ids, mask)
    z = out.logits[:, 1] - out.logits[:, 0]
    assert torch.all(out.logits[:, 0] == 0)
    torch.testing.assert_close(model.probabilities(out.logits)[:, 1], torch.sigmoid(z))
    labels = torch.tensor([1, 0, 1])
    torch.testing.assert_close(
        F.cross_entropy(out.logits, labels),
        F.binary_cross_entropy_with_logits(z, labels.double()),
    )
    softmax_head = tiny_model(head="softmax", n_classes=3)
    assert softmax_head(ids, mask).logits.shape == (3, 3)


def test_inputs_embeds_and_steps_match_forward():
    model = tiny_model()
    ids, mask = padded_batch()
    out = model(ids, mask)
    embeds = model.embed(ids).detach().requires_grad_(True)
    via_embeds = model(inputs_embeds=embeds, attention_mask=mask)
    torch.testing.assert_close(via_embeds.logits, out.logits, rtol=0, atol=0)
    via_embeds.logits[:, 1].sum().backward()
    assert embeds.grad is not None and torch.all(embeds.grad[mask == 0] == 0)
    hidden = model.encode(model.embed(ids), mask.bool())
    logits = model.decode(hidden, model.attend(hidden, mask.bool()))
    torch.testing.assert_close(logits, out.logits, rtol=0, atol=0)
    assert model.get_input_embeddings() is model.embedding
    assert model.attention.last_attention.shape == (3, 1, 6)  # one query, for attnkit.capture


def test_gradient_with_detached_attention_through_attnkit_importance():
    model = tiny_model()
    ids, mask = padded_batch()
    own = model(ids, mask).attention.detach()
    inputs = {"input_ids": ids, "attention_mask": mask, "attention": own}
    scores = gradient_x_input(model, inputs, target=1)
    embeds = model.embed(ids).detach().requires_grad_(True)
    out = model(inputs_embeds=embeds, attention_mask=mask, attention=own)
    torch.softmax(out.logits, -1)[:, 1].sum().backward()
    expected = (embeds.grad * embeds).sum(-1).abs()  # J&W's gradient x input, attention fixed
    torch.testing.assert_close(scores.double(), expected.detach())


def test_average_encoder_is_non_contextual():
    model = tiny_model("average")
    ids = torch.tensor([[3, 5, 6], [6, 3, 9]])
    hidden = model(ids).hidden
    torch.testing.assert_close(hidden[0, 0], hidden[1, 1], rtol=0, atol=0)  # token 3
    torch.testing.assert_close(hidden[0, 2], hidden[1, 0], rtol=0, atol=0)  # token 6


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    ids = torch.tensor([[0, 0, 5, 6]])
    with pytest.raises(ValueError, match="right-padded"):
        model(ids, (ids != 0).long())
    with pytest.raises(AttentionInputError, match="no real tokens"):
        model(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_classes=2"):
        AdditiveConfig(vocab_size=5, n_classes=3)
    with pytest.raises(ValueError, match="unknown normalizer"):
        AdditiveClassifier(AdditiveConfig(vocab_size=5, normalizer="nope"))


def test_profiles_set_sizes():
    full = AdditiveConfig.for_profile("full", 100)
    assert (full.embed_dim, full.hidden_size) == PROFILE_SIZES["full"] == (300, 128)
    assert AdditiveClassifier(full).hidden_size == 256  # BiLSTM: 2 × 128
    quick = AdditiveConfig.for_profile("quick", 100, encoder="average")
    assert quick.hidden_size < full.hidden_size and quick.encoder == "average"


def test_collate_without_cls_and_with_imposed_attention():
    vocab = Vocab(["good", "bad", "film"])
    collate = AdditiveCollate(vocab)
    batch = collate([(("good", "film"), 1), (("bad",), 0)])
    ids, mask = vocab.encode([["good", "film"], ["bad"]], add_cls=False)
    assert torch.equal(batch["input_ids"], ids) and torch.equal(batch["attention_mask"], mask)
    assert "attention" not in batch
    imposed = collate([(("good", "film"), 1, (0.25, 0.75)), (("bad",), 0, (1.0,))])
    assert torch.equal(imposed["attention"], torch.tensor([[0.25, 0.75], [1.0, 0.0]]))
    # attnkit.train calls model(**inputs): the batch's weights reach the model (W&P §3.3).
    inputs = {name: value for name, value in imposed.items() if name != "labels"}
    assert torch.equal(tiny_model()(**inputs).attention, imposed["attention"])
    with pytest.raises(ValueError, match="attention weights"):
        collate([(("good", "film"), 1, (1.0,))])


@pytest.mark.parametrize("encoder", ENCODERS)
def test_learns_signal_task_above_chance(encoder):
    model, _, collate = train_signal_classifier(epochs=4, encoder=encoder)
    test = make_signal_task(100, seed=1, length=(5, 12))
    _, test_accuracy = evaluate(
        model,
        labelled_examples(test),
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=collate,
    )
    assert test_accuracy > 0.8
