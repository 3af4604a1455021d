"""Models: the shipped pretrained MiniLM loader and the papers' small reference models."""

from attnkit.models.additive import (
    AdditiveClassifier,
    AdditiveCollate,
    AdditiveConfig,
    AdditiveOutput,
)
from attnkit.models.gpt2_encoder import GPT2Encoder, GPT2EncoderConfig, agreement_collate
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig, LopardoOutput, lopardo_collate
from attnkit.models.pretrained import load_minilm, sentence_embeddings
from attnkit.models.vocab import (
    CLS_ID,
    PAD_ID,
    UNK_ID,
    ClassificationCollate,
    Vocab,
    labelled_examples,
)

__all__ = [
    "AdditiveClassifier",
    "AdditiveCollate",
    "AdditiveConfig",
    "AdditiveOutput",
    "CLS_ID",
    "PAD_ID",
    "UNK_ID",
    "ClassificationCollate",
    "GPT2Encoder",
    "GPT2EncoderConfig",
    "LopardoClassifier",
    "LopardoConfig",
    "LopardoOutput",
    "lopardo_collate",
    "Vocab",
    "agreement_collate",
    "labelled_examples",
    "load_minilm",
    "sentence_embeddings",
]
