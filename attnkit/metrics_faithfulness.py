"""Faithfulness of token scores: AOPC comprehensiveness / sufficiency and deletion / insertion.

ERASER (DeYoung et al. 2020, "ERASER: A Benchmark to Evaluate Rationalized NLP Models", ACL, §4.2):
with p(·) the softmax probability of the target class and r_k the k highest-scored tokens,

    comprehensiveness_k = p(x) − p(x \\ r_k)       (removing the top tokens should hurt)
    sufficiency_k       = p(x) − p(r_k)            (the top tokens alone should suffice: small)
    AOPC = mean over bins q of the above with k = max(1, round(q · n))

n counts the real tokens that are not special tokens; special tokens ([CLS], [SEP], the kit's
<cls>) are never removed. Tokens are **deleted** and the sequence re-packed (the kept tokens
closed up, in order; padding after them), as ERASER does, not masked in place. `round` is
half-up (⌊q·n + ½⌋). Ties in the scores go to the earlier token.

Deletion / insertion curves (Petsiuk et al. 2018's RISE metrics, applied to tokens): p after
deleting (inserting, from the special tokens alone) the top fraction f of tokens, for f on a
uniform grid, and the area under each curve by the trapezoid rule over f ∈ [0, 1]. A faithful
score gives a low deletion AUC and a high insertion AUC.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from attnkit.importance._common import (
    ImportanceInputError,
    check_ids_and_mask,
    evaluation,
    logits_of,
    model_inputs,
    resolve_target,
)

Mode = Literal["comprehensiveness", "sufficiency"]
BINS = (0.01, 0.05, 0.1, 0.2, 0.5)  # ERASER's bins


class FaithfulnessInputError(ImportanceInputError):
    """Inputs a faithfulness metric cannot work with; the message says how to fix it."""


@dataclass
class Curve:
    """A deletion or insertion curve: p at each fraction, and its area."""

    fractions: Tensor  # (S,)
    probs: Tensor  # (B, S)
    auc: Tensor  # (B,)


def aopc(
    model: nn.Module,
    inputs: Mapping[str, Any],
    scores: Tensor,
    target: Any = None,
    mode: Mode = "comprehensiveness",
    bins: Sequence[float] = BINS,
    *,
    special: Tensor | Sequence[int] | None = None,
    batch_size: int = 64,
) -> Tensor:
    """ERASER's AOPC comprehensiveness or sufficiency per example, (B,).

    Args:
        model: a classifier called as `model(**inputs)` returning logits (or `.logits`).
        inputs: the tokenizer's output (`input_ids`, `attention_mask`, any other (B, T) entries
            such as `token_type_ids`, which are re-packed with the ids).
        scores: (B, T) token scores; higher = more important.
        target: class index or (B,) tensor; None = the class predicted on the full input.
        mode: "comprehensiveness" (p(x) − p(x without the top k)) or "sufficiency"
            (p(x) − p(top k alone)).
        bins: fractions q in (0, 1] of the scored tokens.
        special: which tokens are never removed: a (B, T) bool mask or a list of token ids
            (e.g. `tokenizer.all_special_ids`); default `inputs["special_tokens_mask"]`
            (`tokenizer(..., return_special_tokens_mask=True)`).
        batch_size: sequences per forward pass.
    """
    if mode not in ("comprehensiveness", "sufficiency"):
        raise FaithfulnessInputError(
            f"mode must be 'comprehensiveness' or 'sufficiency' (ERASER), got {mode!r}"
        )
    bins = _check_bins(bins)
    kwargs, mask, candidates, order, n = _prepare(inputs, scores, special)
    ranks = _ranks(order)  # (B, T) rank of each token among the candidates
    ks = torch.stack([(q * n + 0.5).floor().clamp_min(1) for q in bins])  # (Q, B)
    top = candidates[None] & (ranks[None] < ks[:, :, None])  # (Q, B, T)
    keep = mask[None] & ~top if mode == "comprehensiveness" else top | (mask & ~candidates)[None]
    full, altered, _ = _probabilities(model, kwargs, keep, target, batch_size)  # (B,), (Q, B)
    return (full[None] - altered).mean(0)


def deletion_curve(
    model: nn.Module,
    inputs: Mapping[str, Any],
    scores: Tensor,
    target: Any = None,
    *,
    steps: int = 10,
    special: Tensor | Sequence[int] | None = None,
    batch_size: int = 64,
) -> Curve:
    """p of the target after deleting the top fraction f of tokens, f = 0, 1/steps, …, 1."""
    return _curve(model, inputs, scores, target, steps, special, batch_size, insert=False)


def insertion_curve(
    model: nn.Module,
    inputs: Mapping[str, Any],
    scores: Tensor,
    target: Any = None,
    *,
    steps: int = 10,
    special: Tensor | Sequence[int] | None = None,
    batch_size: int = 64,
) -> Curve:
    """p of the target with only the special tokens and the top fraction f inserted."""
    return _curve(model, inputs, scores, target, steps, special, batch_size, insert=True)


def _curve(model, inputs, scores, target, steps, special, batch_size, insert: bool) -> Curve:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise FaithfulnessInputError(f"steps must be a positive int, got {steps!r}")
    kwargs, mask, candidates, order, n = _prepare(inputs, scores, special)
    ranks = _ranks(order)
    fractions = torch.linspace(0, 1, steps + 1)
    ks = torch.stack([(f * n + 0.5).floor() for f in fractions.tolist()])  # (S, B)
    top = candidates[None] & (ranks[None] < ks[:, :, None])  # (S, B, T)
    keep = top | (mask & ~candidates)[None] if insert else mask[None] & ~top
    _, probs, _ = _probabilities(model, kwargs, keep, target, batch_size)  # (S, B)
    probs = probs.T  # (B, S)
    auc = torch.trapezoid(probs, fractions.to(probs.dtype), dim=-1)
    return Curve(fractions, probs, auc)


@contextmanager
def _as_faithfulness_error() -> Iterator[None]:
    """The shared input checks raise ImportanceInputError: re-raise it as this module's error."""
    try:
        yield
    except FaithfulnessInputError:
        raise
    except ImportanceInputError as error:
        raise FaithfulnessInputError(str(error)) from None


def _check_bins(bins: Sequence[float]) -> list[float]:
    bins = [float(q) for q in bins]
    if not bins or any(not 0 < q <= 1 for q in bins):
        raise FaithfulnessInputError(
            f"bins must be fractions in (0, 1], got {bins!r}; ERASER uses (0.01, 0.05, 0.1, 0.2, 0.5)."
        )
    return bins


def _prepare(inputs, scores, special):
    """Inputs, (B, T) mask, the scored candidates, their order by score, and n per example."""
    with _as_faithfulness_error():
        kwargs = model_inputs(inputs)
        mask = check_ids_and_mask(kwargs["input_ids"], kwargs.get("attention_mask"))
    ids = kwargs["input_ids"]
    if not isinstance(scores, Tensor) or scores.shape != ids.shape:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise FaithfulnessInputError(
            f"scores must be a (batch, tokens) = {tuple(ids.shape)} tensor lined up with "
            f"input_ids, got {shape}; for a method's (B, T, T) map take a row, e.g. [:, 0]."
        )
    is_special = _special_mask(special, kwargs, ids)
    kwargs.pop("special_tokens_mask", None)
    candidates = mask & ~is_special  # (B, T)
    n = candidates.sum(1).to(torch.float64)  # (B,)
    if (n == 0).any():
        empty = (n == 0).nonzero().flatten().tolist()
        raise FaithfulnessInputError(
            f"examples {empty[:10]} have no token besides special tokens: nothing to remove."
        )
    masked = scores.detach().to(torch.float64).masked_fill(~candidates, float("-inf"))
    order = masked.argsort(dim=1, descending=True, stable=True)  # (B, T) best first
    return kwargs, mask, candidates, order, n


def _special_mask(special, kwargs, ids) -> Tensor:
    if special is None:
        special = kwargs.get("special_tokens_mask")
        if special is None:
            raise FaithfulnessInputError(
                "which tokens are special (never removed) is unknown: tokenize with "
                "return_special_tokens_mask=True, or pass special=tokenizer.all_special_ids "
                "(special=[Vocab.cls_id] for the kit's models) or a (batch, tokens) bool mask."
            )
    if isinstance(special, Tensor) and special.shape == ids.shape:
        return special.bool().to(ids.device)
    if isinstance(special, Tensor):
        raise FaithfulnessInputError(
            f"special must be a (batch, tokens) = {tuple(ids.shape)} mask or a list of token "
            f"ids, got a tensor of shape {tuple(special.shape)}."
        )
    return torch.isin(ids, torch.as_tensor(list(special), device=ids.device))


def _ranks(order: Tensor) -> Tensor:
    """Rank of each position (0 = highest score) from the descending order. (B, T)"""
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _pad_id(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    for name in ("pad_token_id", "pad_id"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return 0


@torch.no_grad()
def _probabilities(model, kwargs, keep: Tensor, target, batch_size: int):
    """p(target) on the full inputs (B,) and on every kept subset (V, B), tokens re-packed."""
    ids = kwargs["input_ids"]
    B, T = ids.shape
    per_token = {k: v for k, v in kwargs.items() if isinstance(v, Tensor) and v.shape == (B, T)}
    other = {k: v for k, v in kwargs.items() if k not in per_token}
    if other:
        raise FaithfulnessInputError(
            f"inputs {sorted(other)} are not (batch, tokens) tensors; the metrics re-pack every "
            "input token by token, so pass only per-token inputs (the tokenizer's output)."
        )
    with evaluation(model):
        logits = logits_of(model(**kwargs))  # (B, C)
        with _as_faithfulness_error():
            target = resolve_target(target, logits)  # (B,)
        full = logits.softmax(-1).gather(1, target[:, None])[:, 0]
        V = keep.shape[0]
        flat_keep = keep.reshape(V * B, T)
        order = torch.argsort((~flat_keep).to(torch.int8), dim=1, stable=True)  # kept first
        length = max(int(flat_keep.sum(1).max()), 1)
        order = order[:, :length]
        new_mask = flat_keep.gather(1, order)  # (V*B, length)
        pad = _pad_id(model)
        packed = {}
        for name, value in per_token.items():
            moved = value.repeat(V, 1).gather(1, order)
            if name == "input_ids":
                moved = moved.masked_fill(~new_mask, pad)
            elif name == "attention_mask":
                moved = new_mask.to(value.dtype)
            else:
                moved = moved.masked_fill(~new_mask, 0)
            packed[name] = moved
        targets = target.repeat(V)
        probs = []
        for start in range(0, V * B, batch_size):
            part = {k: v[start : start + batch_size] for k, v in packed.items()}
            out = logits_of(model(**part)).softmax(-1)
            probs.append(out.gather(1, targets[start : start + batch_size, None])[:, 0])
    return full, torch.cat(probs).view(V, B), target
