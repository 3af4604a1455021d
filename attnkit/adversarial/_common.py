"""What the adversarial-attention and permutation analyses share.

* `encode_once`: the frozen model's encoder states, attention and prediction, computed once;
  every analysis then varies only the attention and calls `model.decode`.
* `instance_generator`: one random stream per (seed, instance id), so results for an instance
  do not depend on which other instances share its batch, or on the batch's padding.
* `soft_jsd`, `soft_tvd`: differentiable divergences for the optimisation losses.
  `attnkit.metrics.jsd` / `tvd` (float64, detached, checked) are what results report; these
  two exist only because a loss needs gradients, and the tests check them against metrics.
* `over_dataset`: run a batched analysis over a whole dataset, instance ids = dataset indices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from attnkit.train import Collate

# Inside logs: keeps p log p finite (and its gradient) where a distribution has exact zeros.
LOG_EPS = 1e-10

Result = TypeVar("Result")


class Encoded(NamedTuple):
    """A batch through the frozen model: mask `(B, T)` bool, hidden `(B, T, H)`, the model's
    attention `(B, T)` and class probabilities `(B, C)`; all detached."""

    mask: Tensor
    hidden: Tensor
    attention: Tensor
    probs: Tensor


def check_model(model: nn.Module, who: str) -> None:
    """Raise unless `model` exposes the steps of `attnkit.models.AdditiveClassifier`."""
    missing = [
        name
        for name in ("embed", "encode", "attend", "decode", "probabilities", "real_token_mask")
        if not callable(getattr(model, name, None))
    ]
    if missing:
        raise TypeError(
            f"{who} needs a model with separate embed/encode/attend/decode steps, like "
            f"attnkit.models.AdditiveClassifier; {type(model).__name__} lacks {missing}."
        )


@torch.no_grad()
def encode_once(model: nn.Module, input_ids: Tensor, attention_mask: Tensor | None) -> Encoded:
    """Run the encoder and the model's own attention once, in whatever mode the model is in."""
    embeds = model.embed(input_ids)  # (B, T, E)
    mask = model.real_token_mask(input_ids, attention_mask, embeds.shape).to(embeds.device)
    hidden = model.encode(embeds, mask)  # (B, T, H)
    attention = model.attend(hidden, mask)  # (B, T)
    probs = model.probabilities(model.decode(hidden, attention))  # (B, C)
    return Encoded(mask, hidden, attention, probs)


def instance_generator(
    seed: int, instance_id: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A torch generator for one instance, a function of (seed, instance_id) only."""
    if seed < 0 or instance_id < 0:
        raise ValueError(
            f"seed and instance ids must be >= 0, got {seed} and {instance_id}; use dataset "
            "indices as instance ids."
        )
    # SeedSequence mixes the pair well: (0, 1) and (1, 0) get unrelated streams.
    state = np.random.SeedSequence([seed, instance_id]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


def resolve_instance_ids(instance_ids: Sequence[int] | Tensor | None, batch: int) -> list[int]:
    """`instance_ids` as a list of `batch` ints; `range(batch)` when None."""
    if instance_ids is None:
        return list(range(batch))
    ids = [
        int(i)
        for i in (instance_ids.tolist() if isinstance(instance_ids, Tensor) else instance_ids)
    ]
    if len(ids) != batch:
        raise ValueError(
            f"instance_ids has {len(ids)} entries for a batch of {batch} examples; pass one id "
            "per example (e.g. their dataset indices), or None for 0..B-1."
        )
    return ids


def soft_jsd(p: Tensor, q: Tensor) -> Tensor:
    """Differentiable Jensen-Shannon divergence along the last dim, natural log: `(...)`.

    JSD = KL(p ‖ m)/2 + KL(q ‖ m)/2, m = (p + q)/2; zeros (padding) contribute 0.
    """
    m = (p + q) / 2
    log_m = torch.log(m + LOG_EPS)
    kl_pm = (p * (torch.log(p + LOG_EPS) - log_m)).sum(-1)
    kl_qm = (q * (torch.log(q + LOG_EPS) - log_m)).sum(-1)
    return (kl_pm + kl_qm) / 2


def soft_tvd(p: Tensor, q: Tensor) -> Tensor:
    """Total variation distance ½ Σ |p − q| along the last dim, `(...)`.

    For two classes it is |p₁ − q₁|: J&W's |σ(ŷ̃) − σ(ŷ)|.
    """
    return (p - q).abs().sum(-1) / 2


def over_dataset(
    analyse: Callable[..., Result],
    model: nn.Module,
    data: Sequence[Any],
    collate: Collate,
    batch_size: int,
    **kwargs: Any,
) -> Result:
    """`analyse(model, input_ids, attention_mask, instance_ids=..., **kwargs)` per batch of
    `data`, joined into one result: tensors concatenated along dim 0, token dims zero-padded to
    the longest batch. Instance ids are dataset indices, so results do not depend on
    `batch_size`."""
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(data), batch_size):
        batch = collate([data[i] for i in range(start, min(start + batch_size, len(data)))])
        ids = range(start, start + batch["input_ids"].shape[0])
        parts.append(
            analyse(
                model,
                batch["input_ids"].to(device),
                batch["attention_mask"].to(device),
                instance_ids=list(ids),
                **kwargs,
            )
        )
    if not parts:
        raise ValueError("cannot analyse an empty dataset")
    joined = {
        f.name: _cat_padded([getattr(part, f.name) for part in parts])
        for f in dataclasses.fields(parts[0])
    }
    return type(parts[0])(**joined)


def _cat_padded(tensors: list[Tensor]) -> Tensor:
    """Concatenate along dim 0, zero-padding the last dim (tokens) where batches differ."""
    if tensors[0].dim() < 2 or len({t.shape[-1] for t in tensors}) == 1:
        return torch.cat(tensors, dim=0)
    longest = max(t.shape[-1] for t in tensors)
    padded = []
    for t in tensors:
        out = t.new_zeros(*t.shape[:-1], longest)  # works for bool masks too (F.pad does not)
        out[..., : t.shape[-1]] = t
        padded.append(out)
    return torch.cat(padded, dim=0)
