"""The defaults every attribution method shares, stated once, and what comes from the tokenizer.

Every method has the captum-like signature `f(model, inputs, target=None, **options) -> (B, T)`:

* `inputs`: the tokenizer's output (dict or `BatchEncoding`); every entry but `labels` and the
  tokenizer's bookkeeping (`special_tokens_mask`, `offset_mapping`, ...) is passed to the model,
  so `token_type_ids` and other inputs reach it. Image models take `{"pixel_values": ...}`.
* `target`: a class id (int or `(B,)` tensor) for a classifier; for a causal LM the id of the
  *next token* after the last real position; for an encoder–decoder (inputs with
  `decoder_input_ids`) the id of the token after the last decoder position. None: the model's
  own prediction there.
* Explained output: `OUTPUT`, the target's softmax probability (Abnar & Zuidema 2020).
* Sign: kept (`ABSOLUTE = False`): positive = the token raised the explained output. The paper
  modules pass `absolute=True` where the paper ranks magnitudes: Abnar & Zuidema's blank-out
  |Δp|, Jain & Wallace's leave-one-out (a TVD), Meister et al.'s leave-one-out, and Ferrando et
  al.'s references in the attribution benchmark.
* Reduction over embedding dimensions: `REDUCE`, the signed sum (Abnar & Zuidema's code).
* Special tokens ([CLS], [SEP], <s>, padding) are not scored (0), found from the tokenizer:
  `inputs["special_tokens_mask"]` (`tokenizer(..., return_special_tokens_mask=True)`), else the
  ids of `tokenizer=` (never by position). Without either, every real token is scored.
* Replacement ids: blank-out and LIME put the tokenizer's UNK in place of a word, integrated
  gradients starts from its PAD; `unk_id=` / `baseline_id=` override.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

OUTPUT = "prob"
ABSOLUTE = False
REDUCE = "sum"

# Tokenizer outputs that describe the encoding rather than feed the model.
NOT_MODEL_INPUTS = (
    "labels",
    "special_tokens_mask",
    "offset_mapping",
    "length",
    "overflowing_tokens",
)


class UnscoredWordWarning(UserWarning):
    """A method was set to give a real (non-special) token the score 0."""


def special_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's structural tokens (CLS, SEP, BOS, EOS, PAD, MASK), not UNK.

    UNK stands for a real word the vocabulary lacks, so it is scored. A `Vocab` (attnkit's own
    models) has CLS and PAD.
    """
    if tokenizer is None:
        return set()
    if hasattr(tokenizer, "all_special_ids"):
        ids = set(tokenizer.all_special_ids)
        unk = getattr(tokenizer, "unk_token_id", None)
        structural = {
            getattr(tokenizer, f"{name}_token_id", None)
            for name in ("cls", "sep", "bos", "eos", "pad", "mask")
        }
        if unk is not None and unk not in structural:
            ids.discard(unk)
        return {int(i) for i in ids if i is not None}
    return {
        int(getattr(tokenizer, name)) for name in ("cls_id", "pad_id") if hasattr(tokenizer, name)
    }


def special_positions(
    inputs: Mapping[str, Any], input_ids: Tensor, tokenizer: Any
) -> Tensor | None:
    """`(B, T)` bool, True at special tokens; None when neither the inputs nor a tokenizer say."""
    given = inputs.get("special_tokens_mask")
    if given is not None:
        return torch.as_tensor(given, device=input_ids.device).bool()
    ids = special_ids(tokenizer)
    if not ids:
        return None
    return torch.isin(input_ids, torch.tensor(sorted(ids), device=input_ids.device))


def default_positions(
    inputs: Mapping[str, Any], input_ids: Tensor, mask: Tensor, tokenizer: Any
) -> Tensor:
    """The tokens scored by default: real and not special, `(B, T)` bool."""
    special = special_positions(inputs, input_ids, tokenizer)
    return mask if special is None else mask & ~special


def warn_unscored_words(
    scored: Tensor, mask: Tensor, inputs: Mapping[str, Any], input_ids: Tensor, tokenizer: Any
) -> None:
    """Warn when real, non-special tokens are left out of `scored` (they will read as 0)."""
    special = special_positions(inputs, input_ids, tokenizer)
    words = mask if special is None else mask & ~special
    left_out = (words & ~scored).nonzero().tolist()
    if left_out:
        warnings.warn(
            f"{len(left_out)} real token(s) are not scored and will read as 0 (first at (example, "
            f"position) = {tuple(left_out[0])}): skip_first / positions exclude them, but they are "
            "not special tokens. Pass tokenizer= (or return_special_tokens_mask=True) and leave "
            "positions alone to score every word.",
            UnscoredWordWarning,
            stacklevel=4,
        )


def token_id(tokenizer: Any, model: Any, kind: str) -> int | None:
    """The tokenizer's `kind` ("unk" or "pad") id, else the model config's, else None."""
    if tokenizer is not None:
        value = getattr(tokenizer, f"{kind}_token_id", getattr(tokenizer, f"{kind}_id", None))
        if value is not None:
            return int(value)
    config = getattr(model, "config", None)
    for name in (f"{kind}_id", f"{kind}_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
