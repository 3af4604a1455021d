"""Bad inputs to the classifier and the adversarial analyses fail early with a clear error."""

from __future__ import annotations

import pytest
import torch

from attnkit.adversarial import AdversaryConfig, adversarial_attention, train_consistent_adversary
from attnkit.attentions import AttentionInputError
from attnkit.models.additive import AdditiveClassifier, AdditiveCollate, AdditiveConfig
from attnkit.models.vocab import PAD_ID, Vocab
from attnkit.train import TrainConfig

SMOKE = AdversaryConfig(k=2, steps=2)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AdditiveClassifier(AdditiveConfig(vocab_size=20, embed_dim=8, hidden_size=8)).eval()


def padded_batch():
    """Two documents of lengths 4 and 2, right-padded to T = 4."""
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, PAD_ID, PAD_ID]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    return ids, mask


def empty_document():
    """A batch holding one document with no tokens at all: (1, 0)."""
    return torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long)


def all_padding_document():
    """A real document next to one made only of padding."""
    ids, mask = padded_batch()
    ids[1], mask[1] = PAD_ID, 0
    return ids, mask


@pytest.mark.parametrize("make", [empty_document, all_padding_document])
@pytest.mark.parametrize("with_mask", [True, False])
def test_classifier_rejects_documents_without_tokens(model, make, with_mask):
    ids, mask = make()
    with pytest.raises(AttentionInputError, match="no real tokens"):
        model(ids, mask if with_mask else None)


@pytest.mark.parametrize("make", [empty_document, all_padding_document])
def test_adversarial_attention_rejects_documents_without_tokens(model, make):
    ids, mask = make()
    with pytest.raises(AttentionInputError, match="no real tokens"):
        adversarial_attention(model, ids, mask, config=SMOKE)


def test_all_padding_error_names_the_empty_example(model):
    ids, mask = all_padding_document()
    with pytest.raises(AttentionInputError, match=r"examples \[1\]"):
        model(ids, mask)


@pytest.fixture(scope="module")
def tiny_task(model):
    vocab = Vocab.build([["a", "b", "c"], ["d", "e"]])
    base = AdditiveClassifier(AdditiveConfig(vocab_size=len(vocab), embed_dim=8, hidden_size=8))
    data = [(("a", "b", "c"), 1), (("d", "e"), 0), (("a", "e"), 1), (("c",), 0)]
    return base.eval(), data, AdditiveCollate(vocab)


def test_consistent_adversary_rejects_a_single_class_dataset(tiny_task, tmp_path):
    base, data, collate = tiny_task
    single = [(tokens, 1) for tokens, _ in data]
    with pytest.raises(ValueError, match="single class"):
        train_consistent_adversary(
            base, single, 0.5, collate=collate, config=TrainConfig(epochs=1), cache_dir=tmp_path
        )
    as_mappings = [{"tokens": tokens, "label": 0} for tokens, _ in data]
    with pytest.raises(ValueError, match="single class"):
        train_consistent_adversary(
            base,
            as_mappings,
            0.5,
            collate=collate,
            config=TrainConfig(epochs=1),
            cache_dir=tmp_path,
        )


@pytest.mark.parametrize("lam", [-0.1, [0.0, 1.0, -1.0], float("nan")])
def test_consistent_adversary_rejects_negative_lambda(tiny_task, tmp_path, lam):
    base, data, collate = tiny_task
    with pytest.raises(ValueError, match="lam must be >= 0"):
        train_consistent_adversary(
            base, data, lam, collate=collate, config=TrainConfig(epochs=1), cache_dir=tmp_path
        )


def test_consistent_adversary_still_trains_on_good_input(tiny_task, tmp_path):
    base, data, collate = tiny_task
    (result,) = train_consistent_adversary(
        base, data, 0.0, collate=collate, config=TrainConfig(epochs=1), cache=False
    )
    assert result.lam == 0.0 and result.tvd.shape == (len(data),)


@pytest.mark.parametrize("length", [3, 5])
def test_classifier_rejects_imposed_attention_of_the_wrong_length(model, length):
    ids, mask = padded_batch()  # T = 4
    imposed = torch.full((2, length), 1.0 / length)
    with pytest.raises(AttentionInputError, match=r"\(batch, tokens\) = \(2, 4\)"):
        model(ids, mask, attention=imposed)


def test_imposed_attention_not_summing_to_one(model):
    """The diagnostic imposes distributions; other totals would rescale the context silently."""
    ids, mask = padded_batch()
    imposed = 0.3 * mask.double()  # rows sum to 1.2 and 0.6
    with pytest.raises(AttentionInputError, match="must sum to 1.*example 0 sums to 1.2000"):
        model(ids, mask, attention=imposed)
    normalised = imposed / imposed.sum(-1, keepdim=True)
    assert torch.equal(model(ids, mask, attention=normalised).attention, normalised)
    with pytest.raises(AttentionInputError, match="padding"):
        model(ids, mask, attention=torch.full((2, 4), 0.25))
    with_nan = normalised.clone()
    with_nan[0, 0] = float("nan")
    with pytest.raises(AttentionInputError, match="NaN"):
        model(ids, mask, attention=with_nan)
