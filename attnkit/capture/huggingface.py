"""Hugging Face route: eager attention for the call, weights from `output_attentions=True`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.capture.layers import build_attentions, stack_layers, token_strings
from attnkit.capture.seq2seq import Seq2SeqAttentions

EAGER_FIX = (
    'load the model with AutoModel.from_pretrained(..., attn_implementation="eager") '
    '(or call model.set_attn_implementation("eager") before capture)'
)


def is_huggingface(model: nn.Module) -> bool:
    """True for a transformers `PreTrainedModel`, without importing transformers."""
    # No PreTrainedModel instance can exist before transformers.modeling_utils is imported.
    modeling_utils = sys.modules.get("transformers.modeling_utils")
    return modeling_utils is not None and isinstance(model, modeling_utils.PreTrainedModel)


def outermost_huggingface(model: nn.Module) -> list[nn.Module]:
    """The model if it is a Hugging Face model, else the HF models it wraps (not nested ones)."""
    if is_huggingface(model):
        return [model]
    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        nested = any(name.startswith(f"{outer}.") for outer in found)
        if is_huggingface(module) and not nested:
            found[name] = module
    return list(found.values())


def _model_configs(model: nn.Module) -> list[Any]:
    """Every config that picks an attention implementation: the model's, sub-configs, submodels'."""
    configs: dict[int, Any] = {}
    pending = [model.config] + [
        module.config for module in model.modules() if hasattr(module, "config")
    ]
    while pending:
        config = pending.pop()
        if id(config) in configs or not hasattr(config, "_attn_implementation"):
            continue
        configs[id(config)] = config
        for key in getattr(config, "sub_configs", {}):
            if getattr(config, key, None) is not None:
                pending.append(getattr(config, key))
    return list(configs.values())


def _not_eager(model: nn.Module) -> list[str]:
    """`ClassName: implementation` for the model and submodels whose attention is not eager."""
    found = []
    for module in model.modules():
        config = getattr(module, "config", None)
        implementation = getattr(config, "_attn_implementation", "eager")
        if is_huggingface(module) and implementation not in (None, "eager"):
            found.append(f"{type(module).__name__}: {implementation}")
    return sorted(set(found))


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run the block with eager attention, restoring each config's implementation afterwards.

    Raises `AttentionInputError` (saying how to load the model eagerly) when switching fails.
    """
    if not _not_eager(model):
        yield
        return
    # Snapshot the raw per-config values: the public setter recurses into sub-configs, so
    # writing the raw attribute back is the only way to restore mixed choices exactly.
    previous = [(config, config._attn_implementation_internal) for config in _model_configs(model)]

    def restore() -> None:
        for config, implementation in previous:
            config._attn_implementation_internal = implementation

    try:
        model.set_attn_implementation("eager")
    except (ValueError, ImportError, AttributeError, NotImplementedError) as error:
        restore()
        raise AttentionInputError(
            f"{type(model).__name__} uses {', '.join(_not_eager(model))} attention, which returns "
            f"no attention weights, and switching it to eager failed ({error}). Fix: {EAGER_FIX}."
        ) from error
    still = _not_eager(model)
    if still:
        restore()
        raise AttentionInputError(
            f"{type(model).__name__} could not be switched to eager attention (still "
            f"{', '.join(still)}); sdpa and flash attention return no weights. Fix: {EAGER_FIX}."
        )
    try:
        yield
    finally:
        restore()


def run_with_attentions(model: nn.Module, args: tuple, inputs: dict[str, Any]) -> Any:
    """Forward pass asking the model for every layer's attention weights."""
    return model(*args, **{**inputs, "output_attentions": True, "return_dict": True})


def _layers(outputs: Any, field: str, model: nn.Module) -> list[tuple[str, Tensor]]:
    """Named `(B, H, T, S)` layers of `outputs.<field>`; raises when the model returned none."""
    layers = getattr(outputs, field, None)
    if not layers or any(layer is None for layer in layers):
        raise AttentionInputError(
            f"{type(model).__name__} returned no attention weights in outputs.{field} even with "
            f"output_attentions=True. Its attention implementation may not produce weights: "
            f"{EAGER_FIX}; or capture through hooks with capture(model, modules=[...], **inputs)."
        )
    return [(f"{field}[{index}]", layer) for index, layer in enumerate(layers)]


def _decoder_input_ids(model: nn.Module, inputs: dict[str, Any]) -> Tensor | None:
    """The decoder's input ids: given, or shifted from `labels` the way the model does it."""
    if inputs.get("decoder_input_ids") is not None:
        return inputs["decoder_input_ids"]
    if inputs.get("labels") is not None and hasattr(model, "prepare_decoder_input_ids_from_labels"):
        return model.prepare_decoder_input_ids_from_labels(labels=inputs["labels"])
    return None


def attentions_from_outputs(
    model: nn.Module,
    outputs: Any,
    inputs: dict[str, Any],
    tokenizer: Any | None,
    padding_mask: Tensor | None,
) -> Attentions | Seq2SeqAttentions:
    """Build `Attentions` (or `Seq2SeqAttentions` for encoder–decoder models) from HF outputs."""
    mask = padding_mask if padding_mask is not None else inputs.get("attention_mask")
    tokens = token_strings(tokenizer, inputs.get("input_ids"))
    if getattr(outputs, "encoder_attentions", None) is not None:
        decoder_mask = inputs.get("decoder_attention_mask")
        decoder_tokens = token_strings(tokenizer, _decoder_input_ids(model, inputs))
        encoder_layers = _layers(outputs, "encoder_attentions", model)
        decoder_layers = _layers(outputs, "decoder_attentions", model)
        cross_layers = _layers(outputs, "cross_attentions", model)
        encoder = stack_layers(encoder_layers, "the encoder")  # (L, B, H, S, S)
        decoder = stack_layers(decoder_layers, "the decoder")  # (L, B, H, T, T)
        cross = stack_layers(cross_layers, "cross-attention")  # (L, B, H, T, S)
        return Seq2SeqAttentions(
            encoder=build_attentions(encoder, mask, tokens, kind="self", layers=encoder_layers),
            decoder=build_attentions(
                decoder, decoder_mask, decoder_tokens, kind="decoder_self", layers=decoder_layers
            ),
            cross=build_attentions(
                cross,
                decoder_mask,
                decoder_tokens,
                kind="cross",
                key_mask=mask,
                layers=cross_layers,
            ),
        )
    layers = _layers(outputs, "attentions", model)
    weights = stack_layers(layers, type(model).__name__)  # (L, B, H, T, T)
    extra = {}
    # A decoder with encoder_hidden_states (e.g. BERT as decoder) also returns cross-attention.
    if getattr(outputs, "cross_attentions", None):
        cross_layers = _layers(outputs, "cross_attentions", model)
        cross = stack_layers(cross_layers, "cross-attention")
        extra["cross"] = build_attentions(
            cross,
            mask,
            tokens,
            kind="cross",
            key_mask=inputs.get("encoder_attention_mask"),
            layers=cross_layers,
        )
    return build_attentions(weights, mask, tokens, kind="self", extra=extra, layers=layers)
