"""Tests for attnkit.models.gpt2_encoder: masking, padding invariance, capture, training."""

from __future__ import annotations

import pytest
import torch

from attnkit.attentions import AttentionInputError
from attnkit.data import make_agreement_examples
from attnkit.models.gpt2_encoder import GPT2Encoder, GPT2EncoderConfig, agreement_collate
from attnkit.models.vocab import Vocab
from attnkit.train import TrainConfig, accuracy, cross_entropy_loss, evaluate, fit, set_seed

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_model(vocab_size: int = 12, *, dropout: float = 0.0, seed: int = 0) -> GPT2Encoder:
    torch.manual_seed(seed)
    config = GPT2EncoderConfig(
        vocab_size=vocab_size, max_len=10, n_layer=2, n_head=2, d_model=16, dropout=dropout
    )
    return GPT2Encoder(config).double().eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[2, 5, 6, 7, 0, 0], [2, 4, 8, 9, 10, 11]])  # (B, T), CLS = 2, PAD = 0
    return ids, (ids != 0).long()


def test_shapes_and_attention_weights():
    model = tiny_model()
    ids, mask = padded_batch()
    logits, attentions = model(ids, mask, output_attentions=True)
    assert logits.shape == (2, 2)
    assert len(attentions) == 2 and all(a.shape == (2, 2, 6, 6) for a in attentions)
    for weights in attentions:
        assert torch.all(weights[0, :, :, 4:] == 0)  # padding keys: exactly zero
        assert torch.all(weights[0, :, 4:, :] == 0)  # padding query rows: zero
        assert torch.allclose(weights[0, :, :4].sum(-1), torch.ones(2, 4, dtype=torch.float64))
        assert torch.allclose(weights[1].sum(-1), torch.ones(2, 6, dtype=torch.float64))
        assert (weights[1] > 0).all()  # no causal mask: every token sees every token


def test_padded_equals_unpadded_and_mask_defaults_to_non_pad():
    model = tiny_model()
    ids, mask = padded_batch()
    batched = model(ids, mask)
    alone = model(ids[:1, :4])
    torch.testing.assert_close(batched[0], alone[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(model(ids), batched, rtol=0, atol=0)


def test_inputs_embeds_matches_input_ids():
    model = tiny_model()
    ids, mask = padded_batch()
    embeds = model.get_input_embeddings()(ids)  # (B, T, D)
    torch.testing.assert_close(model(inputs_embeds=embeds, attention_mask=mask), model(ids, mask))
    assert model.get_input_embeddings() is model.tok_emb
    assert torch.all(model.tok_emb.weight[0] == 0)  # PAD embedding fixed at zero


def test_capture_finds_the_attention_modules():
    capture = pytest.importorskip("attnkit.capture").capture
    model = tiny_model()
    ids, mask = padded_batch()
    _, attentions = model(ids, mask, output_attentions=True)
    captured = capture(model, input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(captured.weights, torch.stack(attentions).to(captured.weights))
    assert captured.mask.tolist() == mask.bool().tolist()


def test_bad_inputs_get_clear_errors():
    model = tiny_model()
    ids, mask = padded_batch()
    with pytest.raises(ValueError, match="exceeds the model's max_len=10"):
        model(torch.full((1, 11), 3))
    with pytest.raises(AttentionInputError, match="position 0"):
        model(ids, torch.zeros_like(mask))
    with pytest.raises(AttentionInputError, match=r"shape \(batch, tokens\)"):
        model(ids, mask[:, :3])
    with pytest.raises(ValueError, match="exactly one of"):
        model()
    with pytest.raises(ValueError, match="divisible"):
        GPT2EncoderConfig(vocab_size=5, d_model=10, n_head=3)


def test_dropout_is_active_only_in_training():
    model = tiny_model(dropout=0.5)
    ids, mask = padded_batch()
    torch.testing.assert_close(model(ids, mask), model(ids, mask), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model(ids, mask), model(ids, mask))


def test_trains_above_chance_on_synthetic_agreement():
    train = make_agreement_examples(500, seed=0, max_attractors=2, max_modifiers=2)
    dev = make_agreement_examples(200, seed=1, max_attractors=2, max_modifiers=2)
    vocab = Vocab.build(example.prefix for example in train)
    set_seed(0)
    config = GPT2EncoderConfig(
        vocab_size=len(vocab), max_len=24, n_layer=2, n_head=2, d_model=32, dropout=0.0
    )
    model = GPT2Encoder(config)
    collate = agreement_collate(vocab, config.max_len)
    fit(
        model,
        train,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=collate,
        config=TrainConfig(epochs=4, batch_size=32, lr=3e-3, seed=0),
        cache=False,
        progress=False,
    )
    _, dev_accuracy = evaluate(
        model, dev, loss_fn=cross_entropy_loss, metric_fn=accuracy, collate=collate
    )
    assert dev_accuracy >= 0.85
