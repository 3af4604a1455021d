"""The transformer classifier with a swappable normaliser (Meister et al. 2021)."""

import pytest
import torch

from attnkit.models.additive import AdditiveConfig
from attnkit.models.sparse_encoder import TransformerTokenEncoder, transformer_classifier
from attnkit.normalizers import Sparsemax

torch.set_num_threads(1)


def _model(normalizer="softmax", **kw):
    torch.manual_seed(0)
    config = AdditiveConfig(vocab_size=20, embed_dim=8, hidden_size=8, normalizer=normalizer)
    return transformer_classifier(config, n_layer=2, n_head=2, max_len=16, **kw).eval()


@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax", "entmax15"])
def test_padding_invariance_and_zero_hidden_at_padding(normalizer):
    model = _model(normalizer)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = ids.ne(0)
    out = model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (2, 2)
    assert out.hidden[1, 2:].abs().max() == 0
    assert out.attention[1, 2:].abs().max() == 0
    alone = model(input_ids=ids[1:, :2])
    torch.testing.assert_close(out.logits[1], alone.logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2))


def test_normaliser_used_in_self_and_pooling_attention():
    model = _model("sparsemax")
    assert isinstance(model.attention.normalizer, Sparsemax)
    assert all(isinstance(b.self_attn.normalizer, Sparsemax) for b in model.encoder.blocks)
    mixed = _model("sparsemax", self_normalizer="softmax")
    assert not isinstance(mixed.encoder.blocks[0].self_attn.normalizer, Sparsemax)
    assert "transformer" in repr(model) and "sparsemax" in repr(model)


def test_contextual_hidden_states_depend_on_other_tokens():
    model = _model()
    ids = torch.tensor([[5, 6, 7]])
    a = model(input_ids=ids).hidden
    b = model(input_ids=torch.tensor([[5, 6, 9]])).hidden
    assert not torch.allclose(a[0, 0], b[0, 0])  # bidirectional: token 0 sees token 2


def test_gradients_reach_embeddings_and_errors():
    model = _model("entmax15").train()
    ids = torch.tensor([[5, 6, 7, 8]])
    embeds = model.embed(ids).detach().requires_grad_(True)
    model(inputs_embeds=embeds, attention_mask=ids.ne(0)).logits[0, 1].backward()
    assert torch.isfinite(embeds.grad).all() and embeds.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="max_len"):
        model(input_ids=torch.ones(1, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        TransformerTokenEncoder(8, 9, n_head=2)
