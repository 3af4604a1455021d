"""Input-gradient importance (Abnar & Zuidema 2020) and gradient x input, via captum.

With e_{t,d} the output of the embedding module at token t and y the target's probability:

    input_gradient[b, t]   = | sum_d dy/de_{t,d} |                  (Abnar & Zuidema's score)
    gradient_x_input[b, t] = | sum_d dy/de_{t,d} * e_{t,d} |        (their run_bert_sv.py)

The sum over embedding dimensions comes before the absolute value: this is the authors' code
(`samiraabnar/attention_flow`), not the L2 norm of the gradient that other papers use
(`reduce="l2"` gives that one). captum's `LayerGradientXActivation` on the embedding module gives
dy/de (and dy/de * e), so the same call works for the package's models and Hugging Face models.

Caveat: a LayerNorm ignores shifts along (1, ..., 1). When every path from e to the output
starts with a LayerNorm -- pre-LN blocks (GPT-2, `GPT2Encoder`, the authors' own agreement
model) or BERT's embedding LayerNorm after the word embeddings (`get_input_embeddings()`) --
y(e_t + c 1) = y(e_t), so sum_d dy/de_{t,d} = 0 exactly and the paper's score is rounding noise.
`input_gradient` warns (`DegenerateScoreWarning`) when that happens. The authors' DistilBERT
script differentiates the output of the whole embeddings block (after its LayerNorm):
`embedding=model.distilbert.embeddings` (or `model.bert.embeddings`) does the same here; for
pre-LN models use `reduce="l2"` or `gradient_x_input`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import torch
from captum.attr import LayerGradientXActivation
from torch import Tensor, nn

from attnkit.importance._common import (
    POSITIONS,
    DegenerateScoreWarning,
    ImportanceInputError,
    Output,
    Target,
    check_ids_and_mask,
    check_output,
    evaluation,
    first_pass,
    forward_inputs,
    gradient_layer,
    keyword_forward,
    resolve_target,
)
from attnkit.importance.defaults import OUTPUT, REDUCE
from attnkit.importance.images import is_image_input, pixel_gradient

Reduce = Literal["sum", "l2", "l1"]
# |sum_d g_d| below this share of sum_d |g_d| on every token is cancellation, not signal:
# float32 rounding leaves ~1e-7 relative, real gradients are rarely within 1e-4 of orthogonal to 1.
_DEGENERATE_RATIO = 1e-4


def embedding_attribution(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    embedding: nn.Module | None = None,
    output: Output = OUTPUT,
    multiply_by_inputs: bool = False,
) -> Tensor:
    """Per-dimension `dy/de` (or `dy/de * e`) at the embedding module's output, `(B, T, D)`.

    0 at padding. The building block of `input_gradient` and `gradient_x_input`; see those for
    the arguments.
    """
    check_output(output)
    kwargs = forward_inputs(inputs)
    input_ids = kwargs.pop("input_ids")
    mask = check_ids_and_mask(input_ids, kwargs.get("attention_mask"))  # (B, T) bool
    layer = gradient_layer(model, embedding)
    with evaluation(model), torch.enable_grad():
        logits, positions = first_pass(model, input_ids, kwargs)  # (B, C), (B,) or None
        target = resolve_target(target, logits)  # (B,)
        if positions is not None:
            kwargs[POSITIONS] = positions
        names = list(kwargs)
        method = LayerGradientXActivation(
            keyword_forward(model, names, output), layer, multiply_by_inputs=multiply_by_inputs
        )
        attributions = method.attribute(
            input_ids,
            target=target,
            additional_forward_args=tuple(kwargs[name] for name in names) or None,
        )  # (B, T, D)
    if attributions.shape[:2] != input_ids.shape:
        raise ImportanceInputError(
            f"the embedding module's output has shape {tuple(attributions.shape)}, not "
            f"(batch, tokens, dim) with (batch, tokens) = {tuple(input_ids.shape)}; pass the "
            "token embedding module as embedding=."
        )
    return attributions.detach() * mask[..., None]


def _check_reduce(reduce: str) -> None:
    if reduce not in ("sum", "l2", "l1"):
        raise ImportanceInputError(f"reduce must be 'sum', 'l2' or 'l1', got {reduce!r}")


def _reduce(per_dim: Tensor, reduce: Reduce, absolute: bool) -> Tensor:
    """`(B, T, D)` -> `(B, T)`: signed sum (then |.| if `absolute`), L2 or L1 norm over D."""
    if reduce == "sum":
        scores = per_dim.sum(dim=-1)
        return scores.abs() if absolute else scores
    if reduce == "l2":
        return per_dim.norm(dim=-1)
    return per_dim.abs().sum(dim=-1)  # "l1"


def _warn_if_cancelled(gradient: Tensor) -> None:
    """Warn when sum_d dy/de_{t,d} cancels on every token (see the module docstring)."""
    magnitude = gradient.abs().sum(dim=-1)  # (B, T)
    if not (magnitude > 0).any():
        return
    ratio = gradient.sum(dim=-1).abs() / magnitude.clamp_min(torch.finfo(gradient.dtype).tiny)
    if (ratio[magnitude > 0] < _DEGENERATE_RATIO).all():
        warnings.warn(
            "sum_d dy/de_{t,d} is ~0 for every token (largest |sum| / sum|.| = "
            f"{ratio.max().item():.1e}): the model reads these embeddings only through "
            "LayerNorm, which ignores shifts along (1, ..., 1), so Abnar & Zuidema's score is "
            "rounding noise here. Use reduce='l2', gradient_x_input, or embedding= a module "
            "after the LayerNorm (e.g. model.bert.embeddings for BERT).",
            DegenerateScoreWarning,
            stacklevel=3,
        )


def input_gradient(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    embedding: nn.Module | None = None,
    output: Output = OUTPUT,
    reduce: Reduce = REDUCE,
    absolute: bool = True,
) -> Tensor:
    """Abnar & Zuidema's input-gradient score `|sum_d dy/de_{t,d}|`, `(B, T)`, 0 at padding.

    Args:
        model: an `nn.Module` called as `model(input_ids=..., **inputs)` returning logits
            (or `.logits`); run in eval mode for the call.
        inputs: `{"input_ids": (B, T), "attention_mask": (B, T), ...}` (a tokenizer's output or
            a collate batch; `"labels"` is ignored).
        target: class to explain, `(B,)` or int; None = predicted. The paper uses the correct one.
        embedding: module whose output is e; default a Hugging Face model's embeddings block
            (after its LayerNorm, so the score is not zero on BERT), else
            `model.get_input_embeddings()`.
        output: y is the target's `"prob"` (paper), `"logit"` or `"log_prob"`.
        reduce: over embedding dims: `"sum"` (paper), `"l2"` or `"l1"` norm of the gradient.
        absolute: with `reduce="sum"`, take |sum| (paper); False keeps the sign.
    """
    _check_reduce(reduce)
    if is_image_input(inputs):  # one score per patch, signed sum (see attnkit.importance.images)
        scores = pixel_gradient(model, inputs, target, output=output)
        return scores.abs() if absolute else scores
    gradient = embedding_attribution(
        model, inputs, target, embedding=embedding, output=output, multiply_by_inputs=False
    )  # (B, T, D)
    if reduce == "sum":
        _warn_if_cancelled(gradient)
    return _reduce(gradient, reduce, absolute)


def gradient_x_input(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    embedding: nn.Module | None = None,
    output: Output = OUTPUT,
    reduce: Reduce = REDUCE,
    absolute: bool = True,
) -> Tensor:
    """Gradient x input `|sum_d dy/de_{t,d} * e_{t,d}|`, `(B, T)`, 0 at padding.

    Abnar & Zuidema's `run_bert_sv.py` variant of the input gradient (the first-order estimate
    of what removing e_t would change); arguments as in `input_gradient`.
    """
    _check_reduce(reduce)
    if is_image_input(inputs):
        scores = pixel_gradient(model, inputs, target, output=output, multiply_by_inputs=True)
        return scores.abs() if absolute else scores
    product = embedding_attribution(
        model, inputs, target, embedding=embedding, output=output, multiply_by_inputs=True
    )  # (B, T, D)
    return _reduce(product, reduce, absolute)
