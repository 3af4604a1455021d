"""Wiegreffe & Pinter's (2019) model-consistent adversarial training (§4).

Instead of searching attention per instance, train a whole fresh model (same architecture) to
reproduce the base model's predictions while its attention is pushed away from the base's:

    L = TVD(ŷ_adv, ŷ_base) − λ · KL(α_adv ‖ α_base)

averaged over the batch (the authors sum; the ratio of the two terms, all that matters with
Adam, is the same). Direction of the KL: their code calls
`nn.KLDivLoss(reduction="sum")(α_base.log(), α_adv)`, which by PyTorch's convention is
Σ α_adv (log α_adv − log α_base) = KL(α_adv ‖ α_base). Sweeping λ traces their TVD-vs-JSD curve:
for each λ, the mean TVD of the adversary's predictions from the base's and the mean JSD of
its attention from the base's on held-out data.

TVD here is between class distributions, ½ Σ_c |p_c − q_c| (`attnkit.metrics.tvd`). For a
binary sigmoid model that is |Δσ|, twice the authors' `batch_tvd` (½|Δσ| on the single sigmoid
output), so our loss at λ is twice theirs at λ/2: our λ = 2 × their λ. Their `pos_weight`
factor (1 by default) is left out. Both logs get +1e-10, so a sparse base attention
(sparsemax) gives a large but finite KL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attnkit import metrics
from attnkit.adversarial._common import LOG_EPS, check_model, soft_tvd
from attnkit.train import Collate, TrainConfig, TrainResult, fit, predict, set_seed
from attnkit.train.cache import weights_fingerprint

# Bump when the loss changes: the trainer's cache key cannot see code.
_LOSS_VERSION = 1


@dataclass(frozen=True)
class ConsistentAdversary:
    """One point of the λ sweep.

    lam: λ. model: the trained adversary. mean_tvd, mean_jsd: means of `tvd` and `jsd`,
    `(N,)` float64 per evaluation example: TVD of predictions and JSD of attention from the
    base model. train: the `attnkit.train.fit` result.
    """

    lam: float
    model: nn.Module
    mean_tvd: float
    mean_jsd: float
    tvd: Tensor
    jsd: Tensor
    train: TrainResult


def kl_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Differentiable KL(p ‖ q) = Σ p (log p − log q) along the last dim; zeros of p add 0."""
    return (p * (torch.log(p + LOG_EPS) - torch.log(q + LOG_EPS))).sum(-1)


def consistent_adversary_loss(
    adv_probs: Tensor,
    base_probs: Tensor,
    adv_attention: Tensor,
    base_attention: Tensor,
    lam: float,
) -> Tensor:
    """mean_b [ TVD(ŷ_adv, ŷ_base) − λ · KL(α_adv ‖ α_base) ] for probabilities `(B, C)` and
    attention `(B, T)` (0 at padding)."""
    tvd = soft_tvd(adv_probs, base_probs)  # (B,)
    kl = kl_divergence(adv_attention, base_attention)  # (B,)
    return (tvd - lam * kl).mean()


class ConsistentAdversaryLoss:
    """`loss_fn(model, batch)` for `attnkit.train.fit`: the loss above against a frozen base.

    The base model runs on each batch without gradients, in eval mode; it must live on the
    trainer's device. Batches are `{"input_ids", "attention_mask", ...}` dicts.
    """

    def __init__(self, base_model: nn.Module, lam: float) -> None:
        self.base_model, self.lam = base_model, float(lam)

    def __call__(self, model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch.get("attention_mask")}
        with torch.no_grad():
            base = self.base_model(**inputs)
        adv = model(**inputs)
        return consistent_adversary_loss(
            torch.softmax(adv.logits, dim=-1),
            torch.softmax(base.logits, dim=-1),
            adv.attention,
            base.attention,
            self.lam,
        )


def compare_to_base(
    model: nn.Module,
    base_model: nn.Module,
    data: Sequence[Any],
    collate: Collate,
    *,
    batch_size: int = 64,
) -> tuple[Tensor, Tensor]:
    """Per example of `data`: TVD of `model`'s predictions from `base_model`'s and JSD of its
    attention from the base's, each `(N,)` float64 (`attnkit.metrics`). Wiegreffe & Pinter
    compare seed runs and adversaries with the base model this way."""

    def forward(candidate: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch.get("attention_mask")}
        adv, base = candidate(**inputs), base_model(**inputs)
        mask = inputs["input_ids"].new_ones(adv.attention.shape, dtype=torch.bool)
        if inputs["attention_mask"] is not None:
            mask = inputs["attention_mask"].bool()
        tvd = metrics.tvd(torch.softmax(adv.logits, -1), torch.softmax(base.logits, -1))
        jsd = metrics.jsd(adv.attention, base.attention, mask)
        return torch.stack([tvd, jsd], dim=1)  # (B, 2)

    was_training = base_model.training
    base_model.eval()
    try:
        values = predict(model, data, collate=collate, batch_size=batch_size, forward=forward)
    finally:
        base_model.train(was_training)
    return values[:, 0], values[:, 1]


def train_consistent_adversary(
    base_model: nn.Module,
    data: Sequence[Any],
    lam: float | Sequence[float],
    *,
    collate: Collate,
    config: TrainConfig | None = None,
    eval_data: Sequence[Any] | None = None,
    model_config: Any = None,
    model_factory: Callable[[], nn.Module] | None = None,
    batch_size: int = 64,
    cache: bool = True,
    cache_dir: str | None = None,
    progress: bool = False,
) -> list[ConsistentAdversary]:
    """Train one model-consistent adversary per λ (Wiegreffe & Pinter 2019, §4).

    Args:
        base_model: the trained `attnkit.models.AdditiveClassifier` to imitate (frozen, on
            `config.device`).
        data: training examples for `collate` (e.g. `(tokens, label)` pairs; labels unused).
        lam: λ, or a grid of them; a float is a one-point grid.
        collate: builds `{"input_ids", "attention_mask"}` batches, e.g. `AdditiveCollate(vocab)`.
        config: the trainer's settings (default `TrainConfig()`); every adversary starts from
            the same fresh weights, drawn after `set_seed(config.seed)`.
        eval_data: where TVD / JSD are measured (default: `data`).
        model_config: the adversary's config (default: the base model's).
        model_factory: builds the adversary instead (called after `set_seed(config.seed)`),
            e.g. to load the base model's pretrained embeddings; excludes `model_config`.
        batch_size: evaluation batch size.
        cache, cache_dir, progress: passed to `attnkit.train.fit`.

    Returns:
        One `ConsistentAdversary` per λ, in grid order.
    """
    check_model(base_model, "train_consistent_adversary")
    config = config or TrainConfig()
    grid = [float(lam)] if isinstance(lam, int | float) else [float(value) for value in lam]
    if not grid:
        raise ValueError("lam must be a number or a non-empty sequence of numbers")
    negative = [value for value in grid if not value >= 0]  # NaN fails too
    if negative:
        raise ValueError(
            f"lam must be >= 0 (λ weighs the attention divergence the adversary maximises; "
            f"λ < 0 would pull its attention towards the base's), got {negative}"
        )
    if model_factory is not None and model_config is not None:
        raise ValueError("pass model_config or model_factory, not both")
    _check_several_classes(data)
    base_state = weights_fingerprint(base_model.state_dict())
    was_training = base_model.training
    base_model.eval()
    results = []
    try:
        for value in grid:
            set_seed(config.seed)
            if model_factory is not None:
                adversary = model_factory()
            else:
                adversary = type(base_model)(model_config or base_model.config)
            trained = fit(
                adversary,
                data,
                loss_fn=ConsistentAdversaryLoss(base_model, value),
                config=config,
                collate=collate,
                cache=cache,
                cache_dir=cache_dir,
                # The key sees the loss class's name only; λ and the base model go in here.
                cache_key_extra={"lam": value, "base": base_state, "loss": _LOSS_VERSION},
                progress=progress,
            )
            tvd, jsd = compare_to_base(
                adversary,
                base_model,
                eval_data if eval_data is not None else data,
                collate,
                batch_size=batch_size,
            )
            results.append(
                ConsistentAdversary(
                    lam=value,
                    model=adversary,
                    mean_tvd=float(tvd.mean()),
                    mean_jsd=float(jsd.mean()),
                    tvd=tvd,
                    jsd=jsd,
                    train=trained,
                )
            )
    finally:
        base_model.train(was_training)
    return results


def _check_several_classes(data: Sequence[Any]) -> None:
    """Raise if every example of `data` carries a label and all labels are the same.

    The loss does not read labels, but W&P train the adversary on the base model's training
    set; one class only means the data were filtered or built wrongly, and the adversary would
    only learn to imitate a constant prediction. Examples without a readable label (not a
    `(tokens, label, ...)` sequence or a mapping with "label") skip the check.
    """
    labels = set()
    for example in data:
        if isinstance(example, Mapping) and "label" in example:
            label = example["label"]
        elif isinstance(example, tuple | list) and len(example) >= 2:
            label = example[1]
        else:
            return
        labels.add(label.item() if isinstance(label, Tensor) else label)
        if len(labels) > 1:
            return
    if len(labels) == 1:
        raise ValueError(
            f"train_consistent_adversary got a dataset with a single class ({labels.pop()!r}) "
            "in all its examples; the adversary must imitate the base model on data with "
            "several classes (pass its training set)."
        )
