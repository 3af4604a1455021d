"""Models: the shipped pretrained MiniLM loader and the papers' small reference models."""

from attnkit.models.pretrained import load_minilm, sentence_embeddings

__all__ = ["load_minilm", "sentence_embeddings"]
