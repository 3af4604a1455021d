"""`capture(model, **inputs)`: one forward pass, every layer's attention weights."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.capture.hooks import (
    AttentionRecorder,
    ModuleSelector,
    check_recorded,
    mha_fastpath_disabled,
    recorded_padding_mask,
    select_modules,
)
from attnkit.capture.huggingface import (
    attentions_from_outputs,
    eager_attention,
    is_huggingface,
    outermost_huggingface,
    run_with_attentions,
)
from attnkit.capture.layers import build_attentions, stack_layers, token_strings
from attnkit.capture.sdpa import SdpaRecorder, check_sdpa_recorded
from attnkit.capture.seq2seq import Seq2SeqAttentions
from attnkit.capture.torch_seq2seq import capture_torch_seq2seq, torch_seq2seq_groups
from attnkit.capture.wrapped import WrappedRecorder, wrapped_attentions

Captured = Attentions | Seq2SeqAttentions


@contextmanager
def _evaluation(model: nn.Module, grad: bool) -> Iterator[None]:
    """Eval mode (no dropout on the weights) and grad on/off for the block; modes restored after."""
    training = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.set_grad_enabled(grad):
            yield
    finally:
        for module, was_training in training.items():
            module.training = was_training


def _hook_masks(
    weights: Tensor, padding_mask: Tensor | None, inputs: dict[str, Any], mha_mask: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    """Query and key masks for hooked weights `(L, B, H, T, S)`, matched to them by length.

    Hooked modules may be encoder, decoder or cross-attention, so each candidate mask
    (attention_mask, decoder_attention_mask, nn.MultiheadAttention's key_padding_mask) is
    used where its `(B, length)` fits; an explicit `padding_mask` always is the query mask.
    """
    batch, queries, keys = weights.shape[1], weights.shape[-2], weights.shape[-1]
    candidates = [
        inputs.get("attention_mask"),
        inputs.get("decoder_attention_mask"),
        inputs.get("encoder_attention_mask"),
        mha_mask,
    ]

    def fitting(length: int) -> Tensor | None:
        shape = (batch, length)
        return next((m for m in candidates if m is not None and tuple(m.shape) == shape), None)

    mask = padding_mask if padding_mask is not None else fitting(queries)
    return mask, (fitting(keys) if queries != keys else None)


def _with_hooks(
    model: nn.Module,
    args: tuple,
    inputs: dict[str, Any],
    modules: ModuleSelector | None,
    tokenizer: Any | None,
    padding_mask: Tensor | None,
) -> tuple[Attentions, Any]:
    """Hook route: hooks on the selected attention modules; with none found (and no `modules=`),
    the SDPA route: weights computed from every `F.scaled_dot_product_attention` call."""
    try:
        selected = select_modules(model, modules)
    except AttentionInputError as error:
        if modules is not None:
            raise
        with SdpaRecorder() as sdpa:
            outputs = model(*args, **inputs)
        check_sdpa_recorded(sdpa, type(model).__name__, str(error))
        layers, key_masks = sdpa.layers, []
    else:
        with mha_fastpath_disabled(), AttentionRecorder(selected) as recorder:
            outputs = model(*args, **inputs)
        check_recorded(recorder, model)
        layers, key_masks = recorder.layers, [recorded_padding_mask(recorder)]
    weights = stack_layers(layers, type(model).__name__)  # (L, B, H, T, S)
    mask, key_mask = _hook_masks(weights, padding_mask, inputs, next(iter(key_masks), None))
    attentions = build_attentions(
        weights,
        mask,
        token_strings(tokenizer, inputs.get("input_ids")),
        key_mask=key_mask,
        extra={"modules": [name for name, _ in layers]},
        layers=layers,
    )
    return attentions, outputs


def _keyword_inputs(args: tuple, inputs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """A tokenizer's output (dict or BatchEncoding) passed positionally becomes keywords."""
    if len(args) == 1 and isinstance(args[0], Mapping):
        overlap = set(args[0]) & set(inputs)
        if overlap:
            raise AttentionInputError(
                f"inputs {sorted(overlap)} were given both in the positional batch and as "
                "keywords; pass each once."
            )
        return (), {**args[0], **inputs}
    return args, inputs


def _run(
    model: nn.Module,
    args: tuple,
    inputs: dict[str, Any],
    modules: ModuleSelector | None,
    tokenizer: Any | None,
    padding_mask: Tensor | None,
) -> tuple[Captured, Any]:
    """Pick the route (see `capture`) and run the model once."""
    if modules is None and is_huggingface(model):
        outputs = run_with_attentions(model, args, inputs)
        return attentions_from_outputs(model, outputs, inputs, tokenizer, padding_mask), outputs
    if modules is None and (groups := torch_seq2seq_groups(model)) is not None:
        attentions, outputs = capture_torch_seq2seq(model, groups, args, inputs)
        return attentions, outputs
    wrapped = [
        (name, module)
        for name, module in model.named_modules()
        if module in outermost_huggingface(model)
    ]
    if modules is None and wrapped:
        with WrappedRecorder(wrapped) as recorder:
            outputs = model(*args, **inputs)
        return wrapped_attentions(recorder, model, tokenizer), outputs
    return _with_hooks(model, args, inputs, modules, tokenizer, padding_mask)


def _keep_in_graph(attentions: Captured) -> Captured:
    """With grad=True: check the weights carry a graph (the model may have detached them)."""
    parts = attentions.parts() if isinstance(attentions, Seq2SeqAttentions) else [attentions]
    if not all(part.weights.requires_grad for part in parts):
        warnings.warn(
            "capture(grad=True): the captured weights do not require grad (the model detached "
            "them, or no parameter or input requires grad), so gradients through them are zero.",
            stacklevel=3,
        )
    return attentions


def capture(
    model: nn.Module,
    *args: Any,
    modules: ModuleSelector | None = None,
    tokenizer: Any | None = None,
    padding_mask: Tensor | None = None,
    grad: bool = False,
    return_outputs: bool = False,
    **inputs: Any,
) -> Captured | tuple[Captured, Any]:
    """Run `model(*args, **inputs)` once and return every layer's attention weights.

    Hugging Face models (no `modules=`): weights from `output_attentions=True`. A model loaded
    with sdpa/flash attention is switched to eager for the call and switched back; if that
    fails, `AttentionInputError` says to load it with `attn_implementation="eager"`.
    Encoder–decoder models return `Seq2SeqAttentions(encoder, decoder, cross)`.

    Hugging Face models inside a user's module: found without `modules=`, read the same way.
    `nn.Transformer` (any model with `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`):
    `Seq2SeqAttentions` from the encoder, decoder and cross `nn.MultiheadAttention` layers.

    Other modules, or `modules=` given: forward hooks on attention submodules (see the module
    contract in `attnkit.capture`); `nn.MultiheadAttention` is made to return per-head weights.
    When no such module is found, every `F.scaled_dot_product_attention` call of the forward is
    one layer, its weights computed from q, k and the mask (`attnkit.capture.sdpa`).

    Args:
        model: the model; it runs in eval mode (training flags restored afterwards).
        *args, **inputs: forwarded to the model: `capture(model, **batch)`, or the tokenizer's
            output (dict or BatchEncoding) positionally, `capture(model, batch)`.
        modules: attention modules to hook: names from `model.named_modules()`, a module class,
            or a predicate `(name, module) -> bool`. None finds them automatically.
        tokenizer: turns `inputs["input_ids"]` into token strings (optional).
        padding_mask: `(B, T)` real-token mask; defaults to `inputs["attention_mask"]`. The
            hook route matches masks to the weights by length (attention_mask,
            decoder_attention_mask, `nn.MultiheadAttention`'s key_padding_mask) and treats
            non-square maps as cross-attention (`key_mask` = the mask fitting the keys).
        grad: keep the weights in the autograd graph: rollout of them is differentiable, and
            `attentions.gradient(output)` gives d output / d weights (the per-layer tensors the
            model used); flow detaches (max-flow has no gradient). Default runs under no_grad.
        return_outputs: also return the model's own output.

    Returns:
        `Attentions` with weights `(L, B, H, T, S)` (layers in call order), or
        `Seq2SeqAttentions`; with `return_outputs`, a tuple `(attentions, outputs)`.

    Raises:
        AttentionInputError: no weights could be captured (message names the fix), layers
            differ in shape, or weights contain NaN/inf.
    """
    if not isinstance(model, nn.Module):
        raise AttentionInputError(
            f"capture needs a torch.nn.Module, got {type(model).__name__}; pass the model "
            "first and its inputs as keyword arguments: capture(model, **tokenizer(...))."
        )
    args, inputs = _keyword_inputs(args, inputs)
    with ExitStack() as stack:
        stack.enter_context(_evaluation(model, grad))
        # Also HF models inside a wrapper: their attention modules return weights only if eager.
        for huggingface_model in outermost_huggingface(model):
            stack.enter_context(eager_attention(huggingface_model))
        attentions, outputs = _run(model, args, inputs, modules, tokenizer, padding_mask)
    if grad:
        _keep_in_graph(attentions)
    return (attentions, outputs) if return_outputs else attentions
