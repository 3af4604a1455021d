"""Jain & Wallace's (2019) permutation test (§4.1, `permute_attn`): shuffle the attention.

With the model frozen and its encoder states fixed, the attention weights of each instance are
randomly permuted among its real tokens (100 times) and the prediction recomputed. If the
prediction barely moves, the particular assignment of weights to tokens did not matter. J&W plot
the median |Δŷ| over the permutations against the instance's max attention (their Figs. 2–3).

|Δŷ| is the total variation distance ½ Σ_c |p̃_c − p_c| between class distributions, which for
J&W's binary sigmoid models is |σ(ŷ̃) − σ(ŷ)|. The median of an even number of values is the
mean of the two middle ones (NumPy's convention, which the authors used).

All permutations of a batch are one `(B, P, T)` gather and one decode. Permutations come from a
per-instance generator (`instance_ids`), so they do not depend on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attnkit import metrics
from attnkit.adversarial._common import (
    check_model,
    encode_once,
    instance_generator,
    over_dataset,
    resolve_instance_ids,
)
from attnkit.train import Collate


@dataclass(frozen=True)
class PermutationResult:
    """The permutation test for a batch of B instances (P permutations, T tokens, C classes).

    median_delta_y: `(B,)` float64, median over permutations of |Δŷ|.
    max_attention: `(B,)` the largest weight of the model's own attention (the figure's x).
    delta_y: `(B, P)` float64, |Δŷ| per permutation.
    attention: `(B, T)` the model's attention; probs `(B, C)` its prediction.
    permutations: `(B, P, T)` long, permuted attention = attention.gather(-1, permutations).
    mask: `(B, T)` bool real tokens.
    """

    median_delta_y: Tensor
    max_attention: Tensor
    delta_y: Tensor
    attention: Tensor
    probs: Tensor
    permutations: Tensor
    mask: Tensor


def random_permutations(
    mask: Tensor,
    n_permutations: int,
    *,
    seed: int = 0,
    instance_ids: Sequence[int] | Tensor | None = None,
) -> Tensor:
    """Index `(B, P, T)`: per instance, P random permutations of its real positions.

    Padding positions map to themselves, so `weights.gather(-1, index)` moves weight only
    among real tokens. Instance b's permutations depend only on (seed, instance_ids[b]) and
    its real positions.
    """
    if n_permutations < 1:
        raise ValueError(
            f"n_permutations must be >= 1, got {n_permutations}; J&W use 100 (the default)."
        )
    mask = mask.bool()
    B, T = mask.shape
    ids = resolve_instance_ids(instance_ids, B)
    index = torch.arange(T, device=mask.device).repeat(B, n_permutations, 1)  # (B, P, T)
    for row, instance_id in enumerate(ids):
        real = mask[row].nonzero().flatten()  # (n,)
        keys = torch.rand(
            n_permutations, len(real), generator=instance_generator(seed, instance_id)
        )
        order = keys.argsort(dim=-1).to(mask.device)  # (P, n): a uniform random permutation each
        index[row][:, real] = real[order]
    return index


def permutation_scores(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    n_permutations: int = 100,
    seed: int = 0,
    instance_ids: Sequence[int] | Tensor | None = None,
) -> PermutationResult:
    """J&W's permutation test on a batch: median |Δŷ| over `n_permutations` shuffles.

    Args:
        model: an `attnkit.models.AdditiveClassifier` (any module with its embed / encode /
            attend / decode steps), used in eval mode.
        input_ids, attention_mask: `(B, T)`, as for the model's forward.
        instance_ids: `(B,)` ints seeding each instance's permutations (default 0..B−1); pass
            dataset indices to make results independent of batching.
    """
    check_model(model, "permutation_scores")
    was_training = model.training
    model.eval()
    try:
        encoded = encode_once(model, input_ids, attention_mask)
        permutations = random_permutations(
            encoded.mask, n_permutations, seed=seed, instance_ids=instance_ids
        )  # (B, P, T)
        P = permutations.shape[1]
        own = encoded.attention[:, None, :].expand(-1, P, -1)  # (B, P, T)
        shuffled = own.gather(-1, permutations)  # (B, P, T)
        with torch.no_grad():
            probs = model.probabilities(model.decode(encoded.hidden, shuffled))  # (B, P, C)
    finally:
        model.train(was_training)
    delta_y = metrics.tvd(probs, encoded.probs[:, None, :].expand_as(probs))  # (B, P)
    return PermutationResult(
        median_delta_y=torch.quantile(delta_y, 0.5, dim=1),
        max_attention=encoded.attention.max(dim=1).values,
        delta_y=delta_y,
        attention=encoded.attention,
        probs=encoded.probs,
        permutations=permutations,
        mask=encoded.mask,
    )


def permutation_scores_over(
    model: nn.Module,
    data: Sequence[Any],
    collate: Collate,
    *,
    batch_size: int = 64,
    n_permutations: int = 100,
    seed: int = 0,
) -> PermutationResult:
    """`permutation_scores` over a dataset, batch by batch (`collate` builds the
    `{"input_ids", "attention_mask"}` batches, e.g. `AdditiveCollate(vocab)`); token dims are
    zero-padded to the longest batch. Instance ids are dataset indices."""
    return over_dataset(
        permutation_scores,
        model,
        data,
        collate,
        batch_size,
        n_permutations=n_permutations,
        seed=seed,
    )
