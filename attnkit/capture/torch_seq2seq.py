"""`nn.Transformer` (and any model built from `nn.TransformerDecoderLayer`): `Seq2SeqAttentions`.

Each `nn.TransformerEncoderLayer.self_attn` is an encoder layer, each
`nn.TransformerDecoderLayer.self_attn` a decoder layer and its `multihead_attn` the
decoder-to-encoder (cross) attention of that layer. All three groups are hooked in one forward
pass; padding masks come from the `key_padding_mask` each group's calls received
(`src_key_padding_mask`, `tgt_key_padding_mask`, `memory_key_padding_mask`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from attnkit.capture.hooks import AttentionRecorder, check_recorded, mha_fastpath_disabled
from attnkit.capture.layers import build_attentions, stack_layers
from attnkit.capture.seq2seq import Seq2SeqAttentions


def torch_seq2seq_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Module]]] | None:
    """Encoder, decoder and cross MHA modules of `nn.Transformer`-style layers, or None."""
    groups: dict[str, list[tuple[str, nn.Module]]] = {"encoder": [], "decoder": [], "cross": []}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.TransformerEncoderLayer):
            groups["encoder"].append((f"{prefix}self_attn", module.self_attn))
        elif isinstance(module, nn.TransformerDecoderLayer):
            groups["decoder"].append((f"{prefix}self_attn", module.self_attn))
            groups["cross"].append((f"{prefix}multihead_attn", module.multihead_attn))
    if not groups["decoder"] or not groups["encoder"]:
        return None
    return groups


def _group_mask(recorder: AttentionRecorder, batch: int, length: int) -> Tensor | None:
    """The first `(B, length)` real-token mask this group's calls received, if any."""
    fitting = (m for m in recorder.key_padding_masks if tuple(m.shape) == (batch, length))
    return next(fitting, None)


def capture_torch_seq2seq(
    model: nn.Module, groups: dict[str, list[tuple[str, nn.Module]]], args: tuple, inputs: dict
) -> tuple[Seq2SeqAttentions, Any]:
    """One forward pass with every group hooked; `(Seq2SeqAttentions, outputs)`."""
    recorders = {kind: AttentionRecorder(selected) for kind, selected in groups.items()}
    with mha_fastpath_disabled():
        with recorders["encoder"], recorders["decoder"], recorders["cross"]:
            outputs = model(*args, **inputs)
    for recorder in recorders.values():
        check_recorded(recorder, model)
    encoder = stack_layers(recorders["encoder"].layers, "the encoder")  # (L, B, H, S, S)
    decoder = stack_layers(recorders["decoder"].layers, "the decoder")  # (L, B, H, T, T)
    cross = stack_layers(recorders["cross"].layers, "cross-attention")  # (L, B, H, T, S)
    batch, source, target = encoder.shape[1], encoder.shape[-1], decoder.shape[-1]
    source_mask = _group_mask(recorders["encoder"], batch, source)
    source_mask = (
        source_mask if source_mask is not None else _group_mask(recorders["cross"], batch, source)
    )
    target_mask = _group_mask(recorders["decoder"], batch, target)
    names = {kind: [name for name, _ in recorder.layers] for kind, recorder in recorders.items()}
    attentions = Seq2SeqAttentions(
        encoder=build_attentions(
            encoder,
            source_mask,
            None,
            kind="self",
            extra={"modules": names["encoder"]},
            layers=recorders["encoder"].layers,
        ),
        decoder=build_attentions(
            decoder,
            target_mask,
            None,
            kind="decoder_self",
            extra={"modules": names["decoder"]},
            layers=recorders["decoder"].layers,
        ),
        cross=build_attentions(
            cross,
            target_mask,
            None,
            kind="cross",
            key_mask=source_mask,
            extra={"modules": names["cross"]},
            layers=recorders["cross"].layers,
        ),
    )
    return attentions, outputs
