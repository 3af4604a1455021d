"""Tests for attnkit.models.vocab: reserved ids, deterministic order, encoding, bad input."""

from __future__ import annotations

import pytest
import torch

from attnkit.data import make_agreement_dataset, make_agreement_examples
from attnkit.models.vocab import (
    CLS_ID,
    PAD_ID,
    UNK_ID,
    ClassificationCollate,
    Vocab,
    labelled_examples,
)

SENTENCES = [["the", "key", "is"], ["the", "keys", "are"], ["the", "key", "to", "the", "doors"]]


def test_specials_are_reserved_and_order_is_count_then_alphabetical():
    vocab = Vocab.build(SENTENCES)
    assert vocab.itos[:3] == ["<pad>", "<unk>", "<cls>"]
    assert (PAD_ID, UNK_ID, CLS_ID) == (0, 1, 2) == (vocab.pad_id, vocab.unk_id, vocab.cls_id)
    # "the" x4, "key" x2, then the singletons alphabetically.
    assert vocab.itos[3:] == ["the", "key", "are", "doors", "is", "keys", "to"]


def test_build_is_independent_of_example_order():
    assert Vocab.build(SENTENCES) == Vocab.build(list(reversed(SENTENCES)))


def test_min_count_and_max_size():
    assert Vocab.build(SENTENCES, min_count=2).itos[3:] == ["the", "key"]
    vocab = Vocab.build(SENTENCES, max_size=3)
    assert len(vocab) == 6 and vocab.itos[3:] == ["the", "key", "are"]
    assert vocab.lookup("to") == UNK_ID
    with pytest.raises(ValueError, match="min_count"):
        Vocab.build(SENTENCES, min_count=0)


def test_round_trip_through_token_list():
    vocab = Vocab.build(SENTENCES)
    assert Vocab(vocab.to_list()) == vocab


def test_encode_pads_adds_cls_and_maps_unknown_tokens():
    vocab = Vocab.build(SENTENCES)
    ids, mask = vocab.encode([["the", "key"], ["the", "cabinets", "is", "the"]])
    assert ids.shape == mask.shape == (2, 5)
    assert ids[:, 0].tolist() == [CLS_ID, CLS_ID]
    assert ids[0].tolist() == [CLS_ID, vocab.lookup("the"), vocab.lookup("key"), PAD_ID, PAD_ID]
    assert ids[1, 2].item() == UNK_ID
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert vocab.decode(ids[0]) == ["<cls>", "the", "key"]
    ids, mask = vocab.encode([["the"]], add_cls=False)
    assert ids.tolist() == [[vocab.lookup("the")]]


def test_too_long_sentence_names_length_and_fix():
    vocab = Vocab.build(SENTENCES)
    with pytest.raises(ValueError, match=r"max_len=4.*#2 \(6\).*at least 6.*truncate=True"):
        vocab.encode(SENTENCES, max_len=4)
    with pytest.warns(UserWarning, match="Truncated"):
        ids, mask = vocab.encode(SENTENCES, max_len=4, truncate=True)
    assert ids.shape == (3, 4) and mask.all()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([["the"], []], "example 1 is an empty token list"),
        ([], "non-empty batch"),
        ("the key", "non-empty batch"),
        (["the key is"], "example 0 is a string"),
    ],
)
def test_bad_batches_get_clear_errors(batch, message):
    with pytest.raises(ValueError, match=message):
        Vocab.build(SENTENCES).encode(batch)


def test_collate_reads_agreement_examples_and_pairs():
    examples = make_agreement_examples(4, seed=0)
    vocab = Vocab.build(example.prefix for example in examples)
    collate = ClassificationCollate(vocab, max_len=32)
    batch = collate(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["labels"].tolist() == [example.label for example in examples]
    assert batch["attention_mask"].sum(1).tolist() == [len(e.prefix) + 1 for e in examples]
    pairs = labelled_examples(make_agreement_dataset(4, seed=0))
    assert torch.equal(collate(pairs)["input_ids"], batch["input_ids"])
    with pytest.raises(TypeError, match=r"\(tokens, label\) pairs"):
        collate([object()])
