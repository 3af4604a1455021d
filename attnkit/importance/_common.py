"""What every post-hoc importance method shares: input checks, targets, the scored output.

Conventions of the package (the shared defaults and the tokenizer's part: `defaults`):

* A *model* is an `nn.Module` called with keyword inputs (`model(input_ids=..., attention_mask=...,
  **rest)`) that returns logits `(B, C)` (or `(B, T, V)` token logits, read at the last real
  position), a tuple whose first element is the logits, or an object with `.logits` (Hugging
  Face). A `"labels"` entry in the inputs is dropped: the class to explain is `target`.
* `target`: an int (same class for every example), a `(B,)` tensor of class ids (Abnar &
  Zuidema explain the *correct* class: pass the labels), or None for the predicted class.
* `output`: which function of the logits is explained: `"prob"` (softmax probability of the
  target, the papers' choice), `"logit"` or `"log_prob"`.
* Scores are `(B, T)`, one per input token, lined up with attention rows, 0 at padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from numbers import Integral
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError
from attnkit.importance.defaults import NOT_MODEL_INPUTS

Output = Literal["prob", "logit", "log_prob"]
OUTPUTS = ("prob", "logit", "log_prob")
Target = int | Tensor | None


class ImportanceInputError(AttentionInputError):
    """Inputs an importance method cannot work with; the message says how to fix it."""


class DegenerateScoreWarning(UserWarning):
    """Scores that are zero (or rounding noise) for every token for a structural reason."""


def logits_of(result: Any, positions: Tensor | None = None) -> Tensor:
    """Logits `(B, C)` from a model's return value (tensor, tuple, or object with `.logits`).

    Sequence logits `(B, T, V)` (a causal LM, a seq2seq decoder) are read at `positions` `(B,)`
    (see `sequence_positions`): the logits of the token that comes after each position.
    """
    if hasattr(result, "logits"):
        result = result.logits
    elif isinstance(result, tuple | list):
        result = result[0]
    if isinstance(result, Tensor) and result.dim() == 3 and positions is not None:
        rows = torch.arange(result.shape[0], device=result.device)
        return result[rows, positions.to(result.device)]  # (B, V)
    if not isinstance(result, Tensor) or result.dim() != 2:
        shape = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise ImportanceInputError(
            f"the model must return class logits (batch, classes) or token logits (batch, "
            f"tokens, vocabulary), got {shape}. A Hugging Face base model (e.g. BertModel) has "
            "no head: load it with num_labels=... (AutoModelForSequenceClassification) or as a "
            "language model, or wrap it in a module that returns logits."
        )
    return result


def sequence_positions(model_kwargs: Mapping[str, Any], raw: Any) -> Tensor | None:
    """`(B,)` position whose logits are explained when the model returns `(B, T, V)`, else None.

    The last real position: of the decoder (`decoder_attention_mask`, or the last decoder
    position) for an encoder–decoder, of `attention_mask` for a causal LM. Its logits predict
    the next token, which is the target.
    """
    logits = (
        raw.logits if hasattr(raw, "logits") else raw[0] if isinstance(raw, tuple | list) else raw
    )
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        return None
    batch, length = logits.shape[:2]
    is_seq2seq = model_kwargs.get("decoder_input_ids") is not None
    mask = model_kwargs.get("decoder_attention_mask" if is_seq2seq else "attention_mask")
    if mask is None or tuple(mask.shape) != (batch, length):
        return torch.full((batch,), length - 1, dtype=torch.long, device=logits.device)
    steps = torch.arange(length, device=logits.device)
    return (mask.bool().to(logits.device) * steps).argmax(dim=1)  # last real position


def model_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as a dict without `"labels"`; `input_ids` is required. A `BatchEncoding` is a
    Mapping. `special_tokens_mask` and other tokenizer bookkeeping stay (see `forward_inputs`)."""
    if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
        raise ImportanceInputError(
            "inputs must be a dict with at least 'input_ids' (batch, tokens), e.g. a tokenizer's "
            "output or {'input_ids': ids, 'attention_mask': mask}."
        )
    return {name: value for name, value in inputs.items() if name != "labels"}


def forward_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword inputs for the model: `model_inputs` without the tokenizer's bookkeeping
    (`special_tokens_mask`, `offset_mapping`, ...), which describes the encoding."""
    kwargs = model_inputs(inputs)
    return {name: value for name, value in kwargs.items() if name not in NOT_MODEL_INPUTS}


def check_ids_and_mask(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Validate `input_ids (B, T)` and the mask; return the boolean `(B, T)` real-token mask."""
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
        shape = tuple(input_ids.shape) if isinstance(input_ids, Tensor) else type(input_ids)
        raise ImportanceInputError(
            f"input_ids must be a (batch, tokens) tensor, got {shape}; use .unsqueeze(0) for "
            "a single sequence."
        )
    if input_ids.dtype.is_floating_point:
        raise ImportanceInputError(f"input_ids must be integer token ids, got {input_ids.dtype}")
    batch, length = input_ids.shape
    if batch == 0 or length == 0:
        raise ImportanceInputError(
            f"input_ids is empty (shape {(batch, length)}): every example needs at least one token."
        )
    if attention_mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=input_ids.device)
    if tuple(attention_mask.shape) != (batch, length):
        raise ImportanceInputError(
            f"attention_mask must have the shape of input_ids ({batch}, {length}), got "
            f"{tuple(attention_mask.shape)}; pass the mask produced with these ids."
        )
    mask = attention_mask.bool()
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ImportanceInputError(
            f"examples {empty[:10]} have no real tokens (empty sequences); drop them from the batch."
        )
    return mask.to(input_ids.device)


def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ImportanceInputError(f"output must be one of {OUTPUTS}, got {output!r}")


def scored_output(logits: Tensor, output: Output) -> Tensor:
    """The function of the logits being explained, `(B, C)`."""
    if output == "prob":
        return F.softmax(logits, dim=-1)
    if output == "log_prob":
        return F.log_softmax(logits, dim=-1)
    return logits


def resolve_target(target: Target, logits: Tensor) -> Tensor:
    """`(B,)` long tensor of classes (or next-token ids) to explain; None means the predicted
    one."""
    batch, n_classes = logits.shape
    if target is None:
        return logits.argmax(dim=-1)
    target = torch.as_tensor(target, device=logits.device)
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ImportanceInputError(f"target must hold integer class ids, got dtype {target.dtype}")
    if target.dim() == 0:
        target = target.expand(batch)
    if tuple(target.shape) != (batch,):
        raise ImportanceInputError(
            f"target must be an int or a (batch,) = ({batch},) tensor of class ids, got shape "
            f"{tuple(target.shape)}."
        )
    bad = ((target < 0) | (target >= n_classes)).nonzero().flatten().tolist()
    if bad:
        raise ImportanceInputError(
            f"target {target[bad[0]].item()} (example {bad[0]}) is out of range: the model has "
            f"{n_classes} classes (0..{n_classes - 1}); pass class ids in that range, or "
            "target=None to explain the predicted one (token ids for a language model)."
        )
    return target.long()


def check_positions(positions: Tensor | None, mask: Tensor, skip_first: bool) -> Tensor:
    """Boolean `(B, T)` positions to score: given (and within the mask), else the real tokens,
    without position 0 when `skip_first` (the CLS token)."""
    if positions is None:
        positions = mask.clone()
        if skip_first:
            positions[:, 0] = False
        return positions
    positions = torch.as_tensor(positions, device=mask.device)
    if positions.dim() == 1 and positions.shape[0] == mask.shape[1]:
        positions = positions.expand_as(mask)
    if positions.shape != mask.shape:
        raise ImportanceInputError(
            f"positions must be a (batch, tokens) = {tuple(mask.shape)} or (tokens,) = "
            f"({mask.shape[1]},) boolean mask, got shape {tuple(positions.shape)}; pass one "
            "flag per token of input_ids (True = score it)."
        )
    return positions.bool() & mask


def check_token_id(model: Any, token_id: Any, name: str) -> None:
    """Raise unless `token_id` is an int id inside the model's vocabulary (when it is known:
    an `nn.Embedding` from `get_input_embeddings()`), instead of an IndexError from the model."""
    if isinstance(token_id, bool) or not isinstance(token_id, Integral) or token_id < 0:
        raise ImportanceInputError(
            f"{name} must be a non-negative token id (an int), got {token_id!r}; pass the "
            "tokenizer's id, e.g. tokenizer.unk_token_id or Vocab.unk_id."
        )
    getter = getattr(model, "get_input_embeddings", None)
    try:
        embedding = getter() if callable(getter) else None
    except (NotImplementedError, AttributeError):  # a model without one: nothing to check
        embedding = None
    size = getattr(embedding, "num_embeddings", None) if isinstance(embedding, nn.Module) else None
    if isinstance(size, int) and token_id >= size:
        raise ImportanceInputError(
            f"{name}={token_id} is outside the model's vocabulary of {size} tokens (0..{size - 1}); "
            "pass an id from the tokenizer or Vocab the model was trained with."
        )


def check_finite(values: Tensor, what: str) -> None:
    if not torch.isfinite(values).all():
        raise ImportanceInputError(
            f"{what} contains NaN or inf; check the model and its inputs (a fully masked "
            "attention row under softmax gives NaN)."
        )


@contextmanager
def evaluation(model: Any) -> Iterator[None]:
    """Eval mode for the block (dropout off: scores must be a function of the input), restored
    after. A plain callable is left alone."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, was_training in modes.items():
            module.training = was_training


def embedding_of(model: nn.Module, embedding: nn.Module | None) -> nn.Module:
    """The token-embedding module: given, else `model.get_input_embeddings()`; for an
    encoder–decoder, the encoder's own embedding module when it has one (the shared one is
    called twice, once for the decoder)."""
    if embedding is not None:
        return embedding
    encoder = getattr(model, "get_encoder", None)
    if callable(encoder):
        own = getattr(encoder(), "embed_tokens", None)
        if isinstance(own, nn.Module) and own is not model.get_input_embeddings():
            return own
    getter: Callable[[], nn.Module] | None = getattr(model, "get_input_embeddings", None)
    if getter is None or getter() is None:
        raise ImportanceInputError(
            f"{type(model).__name__} has no get_input_embeddings(); pass the token embedding "
            "module as embedding=model.<your embedding layer>."
        )
    return getter()


POSITIONS = "__positions__"  # the (B,) read-out positions among captum's forward arguments


def keyword_forward(model: nn.Module, names: list[str], output: Output) -> Callable[..., Tensor]:
    """A positional `forward(input_ids, *rest) -> (B, C)` for captum from a keyword model.

    `rest` are the inputs named in `names`; an entry named `POSITIONS` is not passed to the
    model but picks the read-out position of sequence logits (captum expands it with the batch).
    """

    def forward(input_ids: Tensor, *rest: Any) -> Tensor:
        kwargs = dict(zip(names, rest, strict=True))
        positions = kwargs.pop(POSITIONS, None)
        logits = logits_of(model(input_ids=input_ids, **kwargs), positions)
        return scored_output(logits, output)

    return forward


def first_pass(
    model: nn.Module, input_ids: Tensor, kwargs: dict[str, Any]
) -> tuple[Tensor, Tensor | None]:
    """Logits `(B, C)` of the unchanged inputs and the read-out positions (`sequence_positions`)."""
    with torch.no_grad():
        raw = model(input_ids=input_ids, **kwargs)
    positions = sequence_positions(kwargs, raw)
    logits = logits_of(raw, positions)
    check_finite(logits, "the model's logits")
    return logits, positions


def gradient_layer(model: nn.Module, embedding: nn.Module | None) -> nn.Module:
    """Where gradient methods differentiate: given, else a Hugging Face model's whole
    embeddings block (`model.base_model.embeddings`, after its LayerNorm, as Abnar & Zuidema's
    BERT script does: the word embeddings alone reach BERT only through that LayerNorm, whose
    shift invariance makes `sum_d dy/de_d` vanish), else the token embedding module."""
    if embedding is not None:
        return embedding
    block = getattr(getattr(model, "base_model", None), "embeddings", None)
    if isinstance(block, nn.Module) and block is not model and hasattr(block, "LayerNorm"):
        return block
    return embedding_of(model, None)
