"""Jain & Wallace's (2019) per-instance adversarial attention search (§4.2, `AdversaryMulti`).

For each instance, with the model frozen and its encoder states h fixed, find K attention
distributions α̃_1..α̃_K that differ as much as possible from the model's own α while leaving
the prediction ŷ almost unchanged. Each α̃_k = masked_softmax(free logits), optimised with Adam
(lr 0.01, amsgrad) for 500 steps on

    L = Σ_k [ −JSD(α̃_k, α) + 500 · ReLU(|Δŷ_k| − 0.01) ] − mean_{k,l} JSD(α̃_k, α̃_l)

(the last term keeps the K candidates apart; the mean runs over all K × K ordered pairs,
k = l included, as the authors' `cross_jsd.sum(0).mean()`). The free logits start at
log(uniform) + 3·N(0, 1). The reported adversary is the candidate with the largest JSD among
those with |Δŷ| ≤ 0.05; an instance with no such candidate is "not found".

|Δŷ| is the total variation distance between the class distributions, ½ Σ_c |p̃_c − p_c|,
which for J&W's binary sigmoid models is exactly |σ(ŷ̃) − σ(ŷ)|.

Batched: the whole batch's candidates are one `(B, K, T)` tensor under one optimiser. The loss
is a sum of per-instance terms and Adam is elementwise, so each instance's candidates evolve
exactly as in a run on that instance alone; initial noise comes from a per-instance generator
(`instance_ids`), so batch results equal single-instance results with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from attnkit import metrics
from attnkit.adversarial._common import (
    Encoded,
    check_model,
    encode_once,
    instance_generator,
    over_dataset,
    resolve_instance_ids,
    soft_jsd,
    soft_tvd,
)
from attnkit.normalizers import softmax
from attnkit.train import Collate


@dataclass(frozen=True)
class AdversaryConfig:
    """The search's settings; defaults are J&W's (`AdversaryMulti`, CLAIMS.md §2).

    `margin` is the ε inside the loss's ReLU(|Δŷ| − ε), `penalty` its weight; `max_delta_y`
    is the selection threshold. Use fewer `steps` in smoke runs.
    """

    k: int = 5
    steps: int = 500
    lr: float = 0.01
    amsgrad: bool = True
    init_noise: float = 3.0
    margin: float = 0.01
    penalty: float = 500.0
    max_delta_y: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1 or self.steps < 0:
            raise ValueError(
                f"AdversaryConfig needs k >= 1 candidates and steps >= 0, got k={self.k}, "
                f"steps={self.steps}; use J&W's k=5, steps=500 (fewer steps for smoke runs)."
            )


class AdversaryLoss(NamedTuple):
    """The search's loss and its parts: `total` (scalar, summed over the batch), `jsd` and
    `delta_y` `(B, K)` per candidate, `penalty` `(B, K)` = penalty·ReLU(|Δŷ| − margin), and
    `diversity` `(B,)` = mean pairwise JSD among an instance's K candidates."""

    total: Tensor
    jsd: Tensor
    delta_y: Tensor
    penalty: Tensor
    diversity: Tensor


@dataclass(frozen=True)
class AdversarialAttention:
    """Result of the search for a batch of B instances (K candidates, T tokens, C classes).

    attention: `(B, T)` the selected adversary: the max-JSD candidate with |Δŷ| ≤ max_delta_y
        where `found`, else the candidate with the smallest |Δŷ|.
    found: `(B,)` bool, whether some candidate met |Δŷ| ≤ max_delta_y.
    jsd, delta_y: `(B,)` float64, JSD(attention, original_attention) and the TVD of its
        prediction from the original one (`attnkit.metrics`).
    probs: `(B, C)` the prediction under `attention`.
    original_attention `(B, T)`, original_probs `(B, C)`: the model's own.
    candidates `(B, K, T)`, candidate_jsd and candidate_delta_y `(B, K)`: all K found.
    mask: `(B, T)` bool real tokens.
    """

    attention: Tensor
    found: Tensor
    jsd: Tensor
    delta_y: Tensor
    probs: Tensor
    original_attention: Tensor
    original_probs: Tensor
    candidates: Tensor
    candidate_jsd: Tensor
    candidate_delta_y: Tensor
    mask: Tensor


def adversary_loss(
    candidates: Tensor,
    original_attention: Tensor,
    candidate_probs: Tensor,
    original_probs: Tensor,
    *,
    margin: float = 0.01,
    penalty: float = 500.0,
) -> AdversaryLoss:
    """J&W's loss for candidates `(B, K, T)` against the original `(B, T)`, with the class
    probabilities under each candidate `(B, K, C)` and the original ones `(B, C)`."""
    jsd = soft_jsd(candidates, original_attention[:, None, :])  # (B, K)
    delta_y = soft_tvd(candidate_probs, original_probs[:, None, :])  # (B, K)
    hinge = penalty * torch.relu(delta_y - margin)  # (B, K)
    pairwise = soft_jsd(candidates[:, :, None, :], candidates[:, None, :, :])  # (B, K, K)
    diversity = pairwise.mean(dim=(1, 2))  # (B,)
    # A sum over instances, never a mean: each instance's gradient must not depend on B.
    total = (hinge - jsd).sum() - diversity.sum()
    return AdversaryLoss(total, jsd, delta_y, hinge, diversity)


def initial_logits(
    mask: Tensor, k: int, *, noise: float, seed: int, instance_ids: Sequence[int]
) -> Tensor:
    """Free logits `(B, K, T)`: log(1/n) + noise·N(0, 1) on each instance's real tokens, 0 at
    padding; instance b's noise depends only on (seed, instance_ids[b]) and its length."""
    B, T = mask.shape
    lengths = mask.sum(dim=1).tolist()  # (B,)
    logits = torch.zeros(B, k, T, device=mask.device)
    for row, instance_id in enumerate(instance_ids):
        n = int(lengths[row])
        draws = torch.randn(k, n, generator=instance_generator(seed, instance_id))  # (K, n)
        # log(1/n) shifts every logit equally, so softmax ignores it; kept to match J&W's init.
        logits[row][:, mask[row]] = (noise * draws - math.log(n)).to(mask.device)
    return logits


def adversarial_attention(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    config: AdversaryConfig | None = None,
    instance_ids: Sequence[int] | Tensor | None = None,
) -> AdversarialAttention:
    """Search K adversarial attention distributions for each instance of a batch (J&W 2019).

    Args:
        model: an `attnkit.models.AdditiveClassifier` (any module with its embed / encode /
            attend / decode steps). It is used in eval mode and not changed.
        input_ids, attention_mask: `(B, T)`, as for the model's forward.
        config: the search's settings (default `AdversaryConfig()`, J&W's).
        instance_ids: `(B,)` ints seeding each instance's initial noise (default 0..B−1);
            pass dataset indices to make results independent of batching.
    """
    check_model(model, "adversarial_attention")
    config = config or AdversaryConfig()
    ids = resolve_instance_ids(instance_ids, input_ids.shape[0])
    was_training = model.training
    model.eval()
    try:
        encoded = encode_once(model, input_ids, attention_mask)
        mask = encoded.mask  # (B, T)
        candidate_mask = mask[:, None, :].expand(-1, config.k, -1)  # (B, K, T)
        logits = initial_logits(
            mask, config.k, noise=config.init_noise, seed=config.seed, instance_ids=ids
        ).to(encoded.hidden.dtype)
        logits.requires_grad_(True)
        optimizer = torch.optim.Adam([logits], lr=config.lr, amsgrad=config.amsgrad)
        with torch.enable_grad():
            for _ in range(config.steps):
                candidates = softmax(logits, mask=candidate_mask)  # (B, K, T)
                probs = model.probabilities(model.decode(encoded.hidden, candidates))  # (B, K, C)
                loss = adversary_loss(
                    candidates,
                    encoded.attention,
                    probs,
                    encoded.probs,
                    margin=config.margin,
                    penalty=config.penalty,
                )
                # Gradients for the logits only: the model's parameters stay untouched.
                (logits.grad,) = torch.autograd.grad(loss.total, [logits])
                optimizer.step()
        with torch.no_grad():
            candidates = softmax(logits, mask=candidate_mask)  # (B, K, T)
            probs = model.probabilities(model.decode(encoded.hidden, candidates))  # (B, K, C)
    finally:
        model.train(was_training)
    return _select(candidates.detach(), probs.detach(), encoded, config.max_delta_y)


def _select(
    candidates: Tensor, probs: Tensor, encoded: Encoded, max_delta_y: float
) -> AdversarialAttention:
    """Pick each instance's reported adversary among its K candidates."""
    mask = encoded.mask
    candidate_jsd = metrics.jsd(
        candidates, encoded.attention[:, None, :].expand_as(candidates), mask[:, None, :]
    )  # (B, K)
    candidate_delta_y = metrics.tvd(probs, encoded.probs[:, None, :].expand_as(probs))  # (B, K)
    feasible = candidate_delta_y <= max_delta_y  # (B, K)
    found = feasible.any(dim=1)  # (B,)
    best_feasible = candidate_jsd.masked_fill(~feasible, -1.0).argmax(dim=1)  # (B,)
    closest = candidate_delta_y.argmin(dim=1)  # (B,)
    best = torch.where(found, best_feasible, closest)  # (B,)
    rows = torch.arange(candidates.shape[0], device=candidates.device)  # (B,)
    return AdversarialAttention(
        attention=candidates[rows, best],
        found=found,
        jsd=candidate_jsd[rows, best],
        delta_y=candidate_delta_y[rows, best],
        probs=probs[rows, best],
        original_attention=encoded.attention,
        original_probs=encoded.probs,
        candidates=candidates,
        candidate_jsd=candidate_jsd,
        candidate_delta_y=candidate_delta_y,
        mask=mask,
    )


def adversarial_attention_over(
    model: nn.Module,
    data: Sequence[Any],
    collate: Collate,
    *,
    batch_size: int = 64,
    config: AdversaryConfig | None = None,
) -> AdversarialAttention:
    """`adversarial_attention` over a dataset, batch by batch (`collate` builds the
    `{"input_ids", "attention_mask"}` batches, e.g. `AdditiveCollate(vocab)`); token dims are
    zero-padded to the longest batch. Instance ids are dataset indices."""
    return over_dataset(adversarial_attention, model, data, collate, batch_size, config=config)
