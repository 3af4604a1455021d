"""One vocabulary for the encoder layers the relevance methods decompose, and one recorded pass.

Every supported family is read as a stack of layers, each with the same parts:

    post-LN (BERT, RoBERTa, DistilBERT):   h = LN1(x + Σ_h A^h (x W_V^h + b_V^h) W_O^h + b_O)
                                            y = LN2(h + FFN(h))
    pre-LN (GPT2Encoder, Hugging Face ViT): h = x + Σ_h A^h (LN1(x) W_V^h + b_V^h) W_O^h + b_O
                                            y = h + FFN(LN2(h))

`EncoderLayer` names the parts (value and output projections, the two LayerNorms, the FFN);
`record` runs the model once and returns every layer's input x (B, T, D), attention A
(B, H, T, T) (in the autograd graph when asked) and the logits. The methods then recompute what
they need from these, so nothing here edits a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.capture.huggingface import eager_attention, is_huggingface
from attnkit.importance._common import (
    ImportanceInputError,
    check_ids_and_mask,
    evaluation,
    logits_of,
    model_inputs,
)
from attnkit.importance.images import check_pixels, is_image_input

SUPPORTED = (
    "Hugging Face BERT, RoBERTa, DistilBERT (e.g. all-MiniLM-L6-v2) and ViT, with or without a "
    "classification head, and attnkit.models.GPT2Encoder"
)


class RelevanceInputError(ImportanceInputError):
    """A model or inputs a relevance method cannot work with; the message says how to fix it."""


@dataclass
class EncoderLayer:
    """The parts of one layer that the decompositions read (see the module docstring)."""

    module: nn.Module  # the whole layer: its first argument is x
    n_head: int
    value: nn.Linear  # W_V, b_V for all heads: (D, D)
    out: nn.Linear  # W_O, b_O
    ln1: nn.LayerNorm  # post-LN: after attention + residual; pre-LN: before attention
    ln2: nn.LayerNorm  # post-LN: after FFN + residual; pre-LN: before the FFN
    ffn: Callable[[Tensor], Tensor]  # FFN without residual or LayerNorm: (…, D) -> (…, D)
    pre_ln: bool

    def attention_input(self, x: Tensor) -> Tensor:
        """What the attention reads: x (post-LN) or LN1(x) (pre-LN). (B, T, D)"""
        return self.ln1(x) if self.pre_ln else x

    def values(self, x: Tensor) -> Tensor:
        """Per-head value vectors x W_V^h + b_V^h. (B, T, D) -> (B, H, T, D/H)"""
        v = self.value(self.attention_input(x))  # (B, T, D)
        B, T, D = v.shape
        return v.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)

    def head_outputs(self, x: Tensor) -> Tensor:
        """Kobayashi et al.'s f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h, no b_O. (B, H, T, D)"""
        v = self.values(x)  # (B, H, T, Dh)
        H, Dh = v.shape[1], v.shape[-1]
        w_o = self.out.weight.view(-1, H, Dh)  # (D_out, H, Dh): column block h is W_O^h
        return torch.einsum("bhtv,dhv->bhtd", v, w_o)

    def residual_sum(self, x: Tensor, mixed: Tensor) -> Tensor:
        """x + W_O(per-head mixes) + b_O, before any LayerNorm. mixed (…, H, T, Dh) -> (…, T, D)"""
        return x + self.out(mixed.transpose(-3, -2).flatten(-2))

    def attention_block(self, x: Tensor, attn: Tensor, values: Tensor) -> Tensor:
        """h from x (…, T, D), attention (…, H, T, T) and values (…, H, T, Dh), any leading dims."""
        return self.attention_output(self.residual_sum(x, attn @ values))

    def attention_output(self, residual_sum: Tensor) -> Tensor:
        """h: the residual sum through LN1 (post-LN), or as it is (pre-LN). (…, T, D)"""
        return residual_sum if self.pre_ln else self.ln1(residual_sum)

    def ffn_block(self, h: Tensor) -> Tensor:
        """The layer's output y from h (…, T, D)."""
        return h + self.ffn(self.ln2(h)) if self.pre_ln else self.ln2(h + self.ffn(h))


@dataclass
class Recorded:
    """One pass: per layer the input x and attention A; the logits (None for a bare encoder)."""

    inputs: list[Tensor]  # L x (B, T, D)
    attentions: list[Tensor]  # L x (B, H, T, T)
    logits: Tensor | None  # (B, C)
    mask: Tensor  # (B, T) bool


def _hf_layers(model: nn.Module) -> tuple[str, list[EncoderLayer]]:
    base = model.base_model
    family = getattr(model.config, "model_type", type(model).__name__)
    layers = []
    if family in ("bert", "roberta", "xlm-roberta", "electra"):
        for layer in base.encoder.layer:
            self_attention = layer.attention.self
            layers.append(
                EncoderLayer(
                    module=layer,
                    n_head=model.config.num_attention_heads,
                    value=self_attention.value,
                    out=layer.attention.output.dense,
                    ln1=layer.attention.output.LayerNorm,
                    ln2=layer.output.LayerNorm,
                    ffn=lambda h, layer=layer: layer.output.dense(layer.intermediate(h)),
                    pre_ln=False,
                )
            )
    elif family == "distilbert":
        for layer in base.transformer.layer:
            layers.append(
                EncoderLayer(
                    module=layer,
                    n_head=model.config.n_heads,
                    value=layer.attention.v_lin,
                    out=layer.attention.out_lin,
                    ln1=layer.sa_layer_norm,
                    ln2=layer.output_layer_norm,
                    ffn=lambda h, layer=layer: layer.ffn.lin2(
                        layer.ffn.activation(layer.ffn.lin1(h))
                    ),
                    pre_ln=False,
                )
            )
    elif family == "vit":
        for layer in base.layers:
            layers.append(
                EncoderLayer(
                    module=layer,
                    n_head=model.config.num_attention_heads,
                    value=layer.attention.v_proj,
                    out=layer.attention.o_proj,
                    ln1=layer.layernorm_before,
                    ln2=layer.layernorm_after,
                    ffn=layer.mlp,  # fc1 → activation → fc2; the layer adds the residual
                    pre_ln=True,
                )
            )
    else:
        raise RelevanceInputError(
            f"{type(model).__name__} (model_type {family!r}) is not supported by the relevance "
            f"methods; supported: {SUPPORTED}."
        )
    if getattr(model.config, "is_decoder", False):
        raise RelevanceInputError(
            f"{type(model).__name__} is configured as a decoder (causal attention); the relevance "
            "methods decompose bidirectional encoders: load it with is_decoder=False."
        )
    return family, layers


def encoder_layers(model: Any) -> tuple[str, list[EncoderLayer]]:
    """(family, layers) of a supported model, else `RelevanceInputError` naming the supported."""
    from attnkit.models.gpt2_encoder import GPT2Encoder

    if isinstance(model, GPT2Encoder):
        layers = [
            EncoderLayer(
                module=block,
                n_head=block.attn.n_head,
                value=_value_slice(block.attn.c_attn),
                out=block.attn.c_proj,
                ln1=block.ln_1,
                ln2=block.ln_2,
                ffn=lambda h, block=block: block.mlp.c_proj(F.gelu(block.mlp.c_fc(h))),
                pre_ln=True,
            )
            for block in model.blocks
        ]
        return "gpt2-encoder", layers
    if isinstance(model, nn.Module) and is_huggingface(model):
        return _hf_layers(model)
    raise RelevanceInputError(
        f"{type(model).__name__} is not supported by the relevance methods; supported: {SUPPORTED}."
    )


def _value_slice(c_attn: nn.Linear) -> nn.Linear:
    """GPT-2 computes q, k, v with one Linear(D, 3D): the value part as its own Linear."""
    D = c_attn.in_features
    value = nn.Linear(D, D).to(c_attn.weight.device, c_attn.weight.dtype)
    value.weight = nn.Parameter(c_attn.weight[2 * D :], requires_grad=False)
    value.bias = nn.Parameter(c_attn.bias[2 * D :], requires_grad=False)
    return value


def check_inputs(
    model: nn.Module, inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], Tensor | None]:
    """Keyword inputs for the model and the (B, T) bool mask; text inputs need their mask.

    Image inputs (`{"pixel_values": ...}`, a ViT) are checked as the image attributions check
    them (`attnkit.importance.images`); they have no padding: their mask is None here and all
    patches (and CLS) are real, once `record` has seen how many there are.
    """
    if is_image_input(inputs):
        try:
            pixels, rest, _ = check_pixels(model, inputs)
        except ImportanceInputError as error:
            raise RelevanceInputError(str(error)) from None
        return {"pixel_values": pixels, **rest}, None
    try:
        kwargs = model_inputs(inputs)
    except ImportanceInputError as error:
        raise RelevanceInputError(str(error)) from None
    if kwargs.get("attention_mask") is None:
        raise RelevanceInputError(
            "inputs have no 'attention_mask': the relevance methods leave padding out by it. Pass "
            "the tokenizer's whole output (tokenizer(texts, padding=True, return_tensors='pt')) "
            "or add {'attention_mask': (input_ids != pad_id).long()}."
        )
    try:
        mask = check_ids_and_mask(kwargs["input_ids"], kwargs["attention_mask"])
    except ImportanceInputError as error:
        raise RelevanceInputError(str(error)) from None
    return kwargs, mask


def record(model: nn.Module, inputs: Mapping[str, Any], *, grad: bool = False) -> Recorded:
    """Run the model once; return each layer's input x, its attention and the logits.

    With `grad`, the attentions stay in the autograd graph (gradient-weighted methods).
    """
    _, layers = encoder_layers(model)
    kwargs, mask = check_inputs(model, inputs)
    captured: list[Tensor] = []

    def grab(module: nn.Module, args: tuple, kw: dict) -> None:
        captured.append(args[0] if args else kw["hidden_states"])

    with ExitStack() as stack, evaluation(model), torch.set_grad_enabled(grad):
        if is_huggingface(model):
            stack.enter_context(eager_attention(model))
        for layer in layers:
            handle = layer.module.register_forward_pre_hook(grab, with_kwargs=True)
            stack.callback(handle.remove)
        outputs = model(**kwargs, output_attentions=True)
    if is_huggingface(model):
        attentions = list(outputs.attentions)
        logits = outputs.logits if hasattr(outputs, "logits") else None
    else:
        logits, attentions = outputs[0], list(outputs[1])
    if len(captured) != len(layers) or len(attentions) != len(layers):
        raise RelevanceInputError(
            f"recorded {len(captured)} layer inputs and {len(attentions)} attention maps for "
            f"{len(layers)} layers; run the model without gradient checkpointing or layer dropping."
        )
    if mask is None:  # an image: every position is real
        B, T, _ = captured[0].shape
        mask = torch.ones(B, T, dtype=torch.bool, device=captured[0].device)
    return Recorded(captured, attentions, logits, mask)


def explained_logit(recorded: Recorded, target: Any) -> tuple[Tensor, Tensor]:
    """(Σ_b logit[b, target_b], target (B,)) — the score the gradient methods differentiate."""
    from attnkit.importance._common import resolve_target

    if recorded.logits is None:
        raise RelevanceInputError(
            "the model returned no logits: the gradient-weighted methods explain a class score. "
            "Load it with a classification head (AutoModelForSequenceClassification)."
        )
    logits = logits_of(recorded.logits)
    try:
        target = resolve_target(target, logits.detach())  # (B,)
    except ImportanceInputError as error:
        raise RelevanceInputError(str(error)) from None
    return logits.gather(1, target[:, None]).sum(), target


def real_pairs(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, T, T) 1 where both query and key are real tokens."""
    return (mask[:, :, None] & mask[:, None, :]).to(dtype)


def normalize_rows(scores: Tensor) -> Tensor:
    """Rows divided by their sums; a zero row (padding) stays zero. (…, T, T)"""
    sums = scores.sum(-1, keepdim=True)
    return scores / torch.where(sums > 0, sums, torch.ones_like(sums))


def layer_norm_parts(ln: nn.LayerNorm, vectors: Tensor, total: Tensor) -> Tensor:
    """Kobayashi et al. 2021's linear split of a LayerNorm over a sum of vectors.

    LN(Σ_j v_j) = Σ_j γ ⊙ (v_j − mean(v_j)) / s + β with s = sqrt(Var(Σ_j v_j) + ε) of the actual
    input `total` (…, T, D); the parts exclude β. vectors (…, T, T, D) -> (…, T, T, D)
    """
    s = (total.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()  # (…, T, 1)
    centred = vectors - vectors.mean(-1, keepdim=True)
    return (
        centred / s[..., None, :] * ln.weight
        if ln.weight is not None
        else centred / s[..., None, :]
    )


def mixed_vectors(layer: EncoderLayer, x: Tensor, attn: Tensor) -> Tensor:
    """z_ij + δ_ij x_i: what token j adds to token i through attention and the residual.

    z_ij = Σ_h A^h_ij f^h(x_j) (no b_O). x (B, T, D), attn (B, H, T, T) -> (B, T, T, D)
    """
    f = layer.head_outputs(x)  # (B, H, T, D)
    z = torch.einsum("bhij,bhjd->bijd", attn, f)  # (B, T, T, D)
    z.diagonal(dim1=1, dim2=2).add_(x.transpose(1, 2))  # + x_i on the diagonal (residual)
    return z
