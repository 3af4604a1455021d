"""Blank-out importance (Abnar & Zuidema 2020, §4): replace one token with UNK, see what changes.

score[b, t] = y(x_b)[target_b] - y(x_b with token t replaced by UNK)[target_b]

with y the softmax probability by default. Abnar & Zuidema measure "the change in the
predicted probability of the correct class"; their CPU scale-down in CLAIMS.md takes |Δp|
(`absolute=True`). Leave-one-out (Jain & Wallace 2019) is the same idea with deletion
instead of replacement; UNK replacement keeps every position in place, so scores line up
with attention rows.

All blanked copies are scored in one batched pass (chunked): the copies for the selected
`(b, t)` pairs are stacked into one `(N, T)` tensor, N <= B*T, with no Python loop per token.

Two call forms:

    blank_out(model, inputs, target=None, *, tokenizer=None, ...)        the shared signature
    blank_out(forward_fn, input_ids, attention_mask, target, unk_id, ...)  the older form

The first takes the tokenizer's output (every entry reaches the model, `token_type_ids`
included), the UNK id and the special tokens from `tokenizer=` (see
`attnkit.importance.defaults`), and scores every real word. The second, kept for existing
callers, skips position 0 by default (`skip_first=True`, the CLS read-out slot of the papers'
models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Integral
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.importance._common import (
    ImportanceInputError,
    Output,
    Target,
    check_finite,
    check_ids_and_mask,
    check_output,
    check_positions,
    check_token_id,
    evaluation,
    forward_inputs,
    logits_of,
    resolve_target,
    scored_output,
    sequence_positions,
)
from attnkit.importance.defaults import OUTPUT, default_positions, token_id, warn_unscored_words
from attnkit.importance.images import is_image_input, patch_occlusion

ForwardFn = nn.Module | Callable[[Tensor, Tensor], Any]


def _call(
    forward_fn: ForwardFn,
    input_ids: Tensor,
    mask: Tensor,
    extra: Mapping[str, Tensor],
    read_at: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Logits `(N, C)` and the read-out positions of sequence logits (computed when `read_at`
    is None): modules get keywords (Hugging Face style), callables `(ids, mask)`."""
    if isinstance(forward_fn, nn.Module):
        kwargs = {"attention_mask": mask, **extra}
        raw = forward_fn(input_ids=input_ids, **kwargs)
        read_at = sequence_positions(kwargs, raw) if read_at is None else read_at
        return logits_of(raw, read_at), read_at
    if extra:
        raise ImportanceInputError(
            "extra_inputs need a model (nn.Module) called with keywords; a plain forward_fn "
            "is called as forward_fn(input_ids, attention_mask)."
        )
    return logits_of(forward_fn(input_ids, mask)), None


def blank_out(
    model: ForwardFn, inputs: Mapping[str, Any] | Tensor, *args: Any, **options: Any
) -> Tensor:
    """Change in the target's probability when each token is replaced by UNK, `(B, T)`.

    `blank_out(model, inputs, target=None, *, tokenizer=None, unk_id=None, positions=None,
    skip_first=False, absolute=False, output="prob", chunk_size=512)`: `inputs` the tokenizer's
    output (every entry goes to the model); UNK id and special tokens from `tokenizer` (or
    `inputs["special_tokens_mask"]`); every real, non-special token is scored.

    `blank_out(forward_fn, input_ids, attention_mask, target, unk_id, positions=None, ...)`:
    the older form, see `blank_out_ids`.
    """
    if isinstance(inputs, Tensor):
        return blank_out_ids(model, inputs, *args, **options)
    if is_image_input(inputs):  # an image: occlude one patch at a time
        absolute = options.pop("absolute", False)
        scores = patch_occlusion(model, inputs, *args, **options)
        return scores.abs() if absolute else scores
    return _blank_out_inputs(model, inputs, *args, **options)


def _blank_out_inputs(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    tokenizer: Any = None,
    unk_id: int | None = None,
    positions: Tensor | None = None,
    skip_first: bool = False,
    absolute: bool = False,
    output: Output = OUTPUT,
    chunk_size: int = 512,
) -> Tensor:
    """The shared-signature form of `blank_out` (see there)."""
    kwargs = forward_inputs(inputs)
    input_ids = kwargs.pop("input_ids")
    attention_mask = kwargs.pop("attention_mask", None)
    mask = check_ids_and_mask(input_ids, attention_mask)  # (B, T) bool
    unk_id = token_id(tokenizer, model, "unk") if unk_id is None else unk_id
    if unk_id is None:
        raise ImportanceInputError(
            f"no UNK id for {type(model).__name__}: pass tokenizer= (its unk_token_id is used) "
            "or unk_id=."
        )
    if positions is None:
        positions = check_positions(
            None, default_positions(inputs, input_ids, mask, tokenizer), skip_first
        )
        warn_unscored_words(positions, mask, inputs, input_ids, tokenizer)
    return blank_out_ids(
        model,
        input_ids,
        attention_mask,
        target,
        unk_id,
        positions,
        skip_first=skip_first,
        absolute=absolute,
        output=output,
        chunk_size=chunk_size,
        extra_inputs=kwargs,
    )


def _batched(value: Any, batch: int) -> bool:
    """Whether a model input has one row per example (and so is copied with its row)."""
    return isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch


@torch.no_grad()
def blank_out_ids(
    forward_fn: ForwardFn,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    target: Target,
    unk_id: int,
    positions: Tensor | None = None,
    *,
    skip_first: bool = True,
    absolute: bool = False,
    output: Output = OUTPUT,
    chunk_size: int = 512,
    extra_inputs: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """Blank-out on ids: the older call form of `blank_out`, `(B, T)`.

    Args:
        forward_fn: a model called as `forward_fn(input_ids=, attention_mask=, **extra_inputs)`,
            or any callable `forward_fn(input_ids, attention_mask) -> logits (N, C)`.
            Modules run in eval mode (dropout off) for the call.
        input_ids: `(B, T)` token ids. attention_mask: `(B, T)`, 1 = real token (or None).
        target: class to explain per example (`(B,)` or int); None = predicted class.
            Abnar & Zuidema use the correct class.
        unk_id: the replacement token id (`Vocab.unk_id`, `tokenizer.unk_token_id`).
        positions: `(B, T)` or `(T,)` bool, which tokens to blank. Default: every real token
            except position 0 when `skip_first` -- the CLS token is the model's read-out slot,
            not part of the sentence, so blanking it measures the model's plumbing, not the
            input. Unselected positions score 0. For Hugging Face inputs also leave out [SEP].
        absolute: return |p(orig) - p(blanked)|.
        output: `"prob"` (default), `"logit"` or `"log_prob"` of the target.
        chunk_size: blanked copies per forward pass (memory vs speed).
        extra_inputs: further `(B, ...)` model inputs (e.g. `token_type_ids`), repeated per copy.

    Returns:
        `(B, T)` scores: y(orig) - y(blanked) (positive = the token supported the target),
        0 at padding and unselected positions.
    """
    check_output(output)
    mask = check_ids_and_mask(input_ids, attention_mask)  # (B, T) bool
    attention_mask = mask.to(input_ids.dtype) if attention_mask is None else attention_mask
    check_token_id(forward_fn, unk_id, "unk_id")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise ImportanceInputError(
            f"chunk_size must be an int >= 1 (blanked copies per forward pass), got "
            f"{chunk_size!r}; the default 512 suits small models (lower it to save memory)."
        )
    extra = dict(extra_inputs or {})
    positions = check_positions(positions, mask, skip_first)  # (B, T) bool

    with evaluation(forward_fn):
        original, read_at = _call(forward_fn, input_ids, attention_mask, extra)  # (B, C)
        check_finite(original, "the model's logits")
        target = resolve_target(target, original)  # (B,)
        y_original = scored_output(original, output).gather(1, target[:, None])[:, 0]  # (B,)

        example, position = positions.nonzero(as_tuple=True)  # (N,), (N,) blanked (b, t) pairs
        y_blanked = torch.empty(len(example), dtype=y_original.dtype, device=y_original.device)
        for start in range(0, len(example), chunk_size):
            chunk = slice(start, start + chunk_size)
            rows, columns = example[chunk], position[chunk]  # (n,), (n,)
            ids = input_ids[rows].clone()  # (n, T): one copy per blanked token
            ids[torch.arange(len(rows), device=ids.device), columns] = unk_id
            extra_rows = {
                name: value[rows] if _batched(value, len(input_ids)) else value
                for name, value in extra.items()
            }
            at = None if read_at is None else read_at[rows]
            logits, _ = _call(forward_fn, ids, attention_mask[rows], extra_rows, at)  # (n, C)
            check_finite(logits, "the model's logits on blanked inputs")
            y_all = scored_output(logits, output)  # (n, C)
            y_blanked[chunk] = y_all.gather(1, target[rows, None])[:, 0]

    scores = torch.zeros(input_ids.shape, dtype=y_original.dtype, device=input_ids.device)
    scores[example, position] = y_original[example] - y_blanked  # (B, T)
    return scores.abs() if absolute else scores
