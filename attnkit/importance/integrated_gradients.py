"""Integrated gradients (Sundararajan, Taly & Yan 2017) on the token embeddings, via captum.

IG_{t,d} = (e_{t,d} - e'_{t,d}) * integral_0^1 dy/de_{t,d}(e' + a (e - e')) da,   score[b, t] = sum_d IG_{t,d}

The baseline e' is the embedding of the same sequence with the scored tokens replaced by a
baseline token, PAD by default (the model's pad id): in `GPT2Encoder` the PAD embedding is a
fixed zero vector, so this is the classic all-zero baseline on the token embeddings, with
position embeddings and the attention mask unchanged. Pass `baseline_id=unk_id` for an UNK
baseline, which matches blank-out's replacement token. Tokens that are not scored (CLS at
position 0 by default) stay as they are in the baseline and so get exactly 0.

Completeness: sum_t score[b, t] = y(x_b) - y(x'_b) up to the integration error, which
`return_convergence_delta=True` reports per example.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import torch
from captum.attr import LayerIntegratedGradients
from torch import Tensor, nn

from attnkit.importance._common import (
    POSITIONS,
    ImportanceInputError,
    Output,
    Target,
    check_ids_and_mask,
    check_output,
    check_positions,
    check_token_id,
    embedding_of,
    evaluation,
    first_pass,
    forward_inputs,
    keyword_forward,
    resolve_target,
)
from attnkit.importance.defaults import OUTPUT, default_positions, token_id, warn_unscored_words
from attnkit.importance.images import is_image_input, pixel_integrated_gradients


def _default_baseline_id(model: nn.Module, tokenizer: Any) -> int:
    """PAD id of the tokenizer, else the model's config (`pad_id` in attnkit models,
    `pad_token_id` in HF), else the tokenizer's UNK."""
    found = token_id(tokenizer, model, "pad")
    found = token_id(tokenizer, model, "unk") if found is None else found
    if found is None:
        raise ImportanceInputError(
            f"cannot find a PAD id on {type(model).__name__}.config or a tokenizer; pass "
            "baseline_id= (the PAD or UNK token id) or tokenizer=."
        )
    return found


def _takes_attention_mask(model: nn.Module) -> bool:
    """Whether `model(..., attention_mask=...)` is accepted (named or through **kwargs)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "attention_mask" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def integrated_gradients(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    embedding: nn.Module | None = None,
    tokenizer: Any = None,
    baseline_id: int | None = None,
    positions: Tensor | None = None,
    skip_first: bool = False,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
    output: Output = OUTPUT,
    absolute: bool = False,
    return_convergence_delta: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Integrated gradients per token, summed over embedding dimensions, `(B, T)`.

    Args:
        model, inputs, target, embedding, output: as in `attnkit.importance.input_gradient`.
            Inputs without an attention_mask count every token as real, and that all-ones
            mask is passed to the model (when its forward takes one), so a model that would
            derive its mask from PAD ids does not read the PAD baseline as padding.
        tokenizer: gives the PAD id and the special tokens (see `attnkit.importance.defaults`).
        baseline_id: token id whose embedding is the baseline; default the tokenizer's (or the
            model config's) PAD id.
        positions: `(B, T)` or `(T,)` bool, tokens replaced in the baseline (the scored ones).
            Default: real tokens that are not special (`special_tokens_mask` in the inputs, or
            the tokenizer's ids); `skip_first=True` also leaves out position 0 (older scripts).
        n_steps, method, internal_batch_size: captum's Riemann / Gauss-Legendre integration.
        absolute: |score|; the default keeps the sign, which completeness needs.
        return_convergence_delta: also return `(B,)` sum(score) - (y(x) - y(x')).

    Returns:
        `(B, T)` scores, 0 at padding and at unscored positions; with the delta, a pair.
    """
    check_output(output)
    if is_image_input(inputs):  # per patch, from an all-zero image (attnkit.importance.images)
        scores = pixel_integrated_gradients(model, inputs, target, n_steps=n_steps, output=output)
        return scores.abs() if absolute else scores
    kwargs = forward_inputs(inputs)
    input_ids = kwargs.pop("input_ids")
    mask = check_ids_and_mask(input_ids, kwargs.get("attention_mask"))  # (B, T) bool
    if "attention_mask" not in kwargs and _takes_attention_mask(model):
        # Without a mask every token is real (the package's convention); say so to the model.
        # A model that derives its mask from PAD ids would otherwise read the PAD baseline as
        # padding when captum evaluates y(baseline) for the convergence delta, so the delta
        # (and completeness) would not match the path the attributions integrate along.
        kwargs["attention_mask"] = mask.to(input_ids.dtype)
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 1:
        raise ImportanceInputError(
            f"n_steps must be an int >= 1 (integration points on the path), got {n_steps!r}; "
            "captum's default is 50."
        )
    layer = embedding_of(model, embedding)
    baseline_id = _default_baseline_id(model, tokenizer) if baseline_id is None else baseline_id
    check_token_id(model, baseline_id, "baseline_id")
    scored = default_positions(inputs, input_ids, mask, tokenizer)  # (B, T) bool
    if positions is None:
        positions = check_positions(None, scored, skip_first)
        warn_unscored_words(positions, mask, inputs, input_ids, tokenizer)
    else:
        positions = check_positions(positions, mask, skip_first)  # (B, T) bool
    baseline_ids = input_ids.masked_fill(positions, baseline_id)  # (B, T)
    with evaluation(model), torch.enable_grad():
        logits, read_at = first_pass(model, input_ids, kwargs)  # (B, C), (B,) or None
        target = resolve_target(target, logits)  # (B,)
        if read_at is not None:
            kwargs[POSITIONS] = read_at
        names = list(kwargs)
        explainer = LayerIntegratedGradients(keyword_forward(model, names, output), layer)
        result = explainer.attribute(
            input_ids,
            baselines=baseline_ids,
            target=target,
            additional_forward_args=tuple(kwargs[name] for name in names) or None,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta,
        )
    attributions, delta = result if return_convergence_delta else (result, None)
    scores = attributions.detach().sum(dim=-1) * mask  # (B, T)
    scores = scores.abs() if absolute else scores
    return (scores, delta.detach()) if return_convergence_delta else scores
