"""Class-specific gradient rollout (jacobgil/vit-explain, `vit_grad_rollout.py`; the gradient
weighting follows Chefer et al. 2021).

Per layer the head-fused attention weighted by its gradient, negatives set to 0, then rollout:

    F_l = fuse_h(A_l ⊙ ∇A_l)⁺                 fuse = mean (default) / max / min, then max(·, 0)
    F_l ← discard the lowest `discard_ratio` entries, sparing the CLS column (as `rollout`)
    Â_l = rownorm((F_l + I) / 2)
    R = Â_L ⋯ Â_1                                                          # (B, T, T)

∇A is the gradient of the target class's logit (vit-explain's `one_hot * output`).

Where vit-explain's code differs: it renormalises with `a / a.sum(dim=-1)` without keepdim, which
broadcasts the row sums along the last axis — it divides column j by the sum of row j instead of
row i by its own sum. We divide each row by its own sum (what the code intends), and like
`attnkit.rollout` process every example of the batch (vit-explain edits only element 0) and spare
the whole CLS column when discarding. Padding: as `attnkit.rollout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.importance._common import Target
from attnkit.propagate.rollout import check_options, fuse_heads
from attnkit.relevance._encoder import real_pairs
from attnkit.relevance.aggregate import contribution_rollout
from attnkit.relevance.gae import attention_gradients


def grad_rollout(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    discard_ratio: float = 0.9,
    head_fusion: str = "mean",
) -> Tensor:
    """vit-explain's gradient rollout R (B, T, T) for the target's logit.

    Args:
        model: a supported classifier (see `attnkit.relevance`), run in eval mode.
        inputs: the tokenizer's output, with `attention_mask`.
        target: class index, or (B,) tensor of class ids; None = the predicted class.
        discard_ratio: fraction of the lowest fused entries zeroed per layer (vit-explain's 0.9).
        head_fusion: "mean" (vit-explain's gradient rollout), "max" or "min".
    """
    check_options(0.5, head_fusion, discard_ratio)
    attentions, gradients, mask = attention_gradients(model, inputs, target)
    pairs = real_pairs(mask, attentions[0].dtype)  # (B, T, T)
    fused = [
        fuse_heads((a * g)[None], head_fusion)[0].clamp_min(0) * pairs
        for a, g in zip(attentions, gradients, strict=True)
    ]  # L x (B, T, T)
    rolled = contribution_rollout(
        torch.stack(fused), mask, residual=0.5, discard_ratio=discard_ratio
    )  # (L, B, T, T)
    return rolled[-1]
