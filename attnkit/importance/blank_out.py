"""Blank-out importance (Abnar & Zuidema 2020, §4): replace one token with UNK, see what changes.

score[b, t] = y(x_b)[target_b] - y(x_b with token t replaced by UNK)[target_b]

with y the softmax probability by default. Abnar & Zuidema measure "the change in the
predicted probability of the correct class"; their CPU scale-down in CLAIMS.md takes |Δp|
(`absolute=True`). Leave-one-out (Jain & Wallace 2019) is the same idea with deletion
instead of replacement; UNK replacement keeps every position in place, so scores line up
with attention rows.

All blanked copies are scored in one batched pass (chunked): the copies for the selected
`(b, t)` pairs are stacked into one `(N, T)` tensor, N <= B*T, with no Python loop per token.
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
    logits_of,
    resolve_target,
    scored_output,
)

ForwardFn = nn.Module | Callable[[Tensor, Tensor], Any]


def _call(
    forward_fn: ForwardFn, input_ids: Tensor, mask: Tensor, extra: Mapping[str, Tensor]
) -> Tensor:
    """Logits `(N, C)`: modules get keywords (Hugging Face style), callables `(ids, mask)`."""
    if isinstance(forward_fn, nn.Module):
        return logits_of(forward_fn(input_ids=input_ids, attention_mask=mask, **extra))
    if extra:
        raise ImportanceInputError(
            "extra_inputs need a model (nn.Module) called with keywords; a plain forward_fn "
            "is called as forward_fn(input_ids, attention_mask)."
        )
    return logits_of(forward_fn(input_ids, mask))


@torch.no_grad()
def blank_out(
    forward_fn: ForwardFn,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    target: Target,
    unk_id: int,
    positions: Tensor | None = None,
    *,
    skip_first: bool = True,
    absolute: bool = False,
    output: Output = "prob",
    chunk_size: int = 512,
    extra_inputs: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """Change in the target's probability when each token is replaced by UNK, `(B, T)`.

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
        original = _call(forward_fn, input_ids, attention_mask, extra)  # (B, C)
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
            extra_rows = {name: value[rows] for name, value in extra.items()}
            logits = _call(forward_fn, ids, attention_mask[rows], extra_rows)  # (n, C)
            check_finite(logits, "the model's logits on blanked inputs")
            y_all = scored_output(logits, output)  # (n, C)
            y_blanked[chunk] = y_all.gather(1, target[rows, None])[:, 0]

    scores = torch.zeros(input_ids.shape, dtype=y_original.dtype, device=input_ids.device)
    scores[example, position] = y_original[example] - y_blanked  # (B, T)
    return scores.abs() if absolute else scores
