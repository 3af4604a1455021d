"""attnkit.models.word_vectors: each word's vector is the mean of MiniLM's rows of its pieces."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from attnkit.models import AdditiveClassifier, AdditiveConfig
from attnkit.models.pretrained import minilm_path
from attnkit.models.word_vectors import minilm_word_vectors, vocabulary_vectors


def test_word_vector_is_the_mean_of_its_wordpiece_rows():
    path = minilm_path()
    with safe_open(str(path / "model.safetensors"), "pt") as weights:
        table = weights.get_tensor("embeddings.word_embeddings.weight").float()
    tokenizer = AutoTokenizer.from_pretrained(path)
    words = ["film", "unwatchable", "Good"]
    vectors, found = minilm_word_vectors(words)
    assert found.all() and vectors.shape == (3, table.shape[1])
    for word, vector in zip(words, vectors, strict=True):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        torch.testing.assert_close(vector, table[ids].mean(0))
    assert len(tokenizer("unwatchable", add_special_tokens=False)["input_ids"]) > 1


def test_vocabulary_vectors_fit_the_model_and_keep_specials_zero():
    itos = ["<pad>", "<unk>", "<cls>", "good", "film"]
    table = vocabulary_vectors(itos)
    assert (table[:3] == 0).all() and (table[3:] != 0).any(dim=1).all()
    model = AdditiveClassifier(
        AdditiveConfig(vocab_size=5, embed_dim=table.shape[1], freeze_embeddings=True)
    )
    model.load_embeddings(table)
    assert not model.embedding.weight.requires_grad
    torch.testing.assert_close(model.embedding.weight.detach(), table)
    with pytest.raises(ValueError, match="embed_dim"):
        model.load_embeddings(table[:, :8])
    with pytest.raises(TypeError, match="list of words"):
        minilm_word_vectors("film")
