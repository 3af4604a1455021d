"""Masked softmax: the dense baseline every sparse normaliser is compared with."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.normalizers._checks import masked_keys


def masked_softmax(scores: Tensor, attend: Tensor, dim: int) -> Tensor:
    """Softmax over the keys where the already validated boolean `attend` is True; zeros elsewhere.

    `attend` has the shape of `scores` or broadcasts to it (a small padding mask stays small).
    Rows with no attendable key give zeros, with finite gradients.
    """
    masked = ~attend
    has_key = attend.any(dim, keepdim=True)  # size 1 along `dim`
    # −inf at masked keys makes exp() exactly 0 there. A row with no key at all gets finite zeros
    # instead: an all −inf row would give (−inf) − (−inf) = NaN in softmax's forward and backward.
    filled = scores.masked_fill(masked, float("-inf")).masked_fill(~has_key, 0.0)
    probs = torch.softmax(filled, dim)
    return probs.masked_fill(masked, 0.0)


def softmax(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """softmax(z)_i = exp(z_i) / Σ_j exp(z_j), the sum running over attendable keys only.

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)` = q kᵀ / √d.
        dim: the key dimension to normalise over.
        mask: boolean, True = attend, broadcastable to `scores`. Keys with a −inf score count
            as masked too.

    Returns:
        Probabilities shaped like `scores`: each row sums to 1 over its attendable keys, masked
        keys get exactly 0, and a row with no attendable key is all zeros (never NaN).
    """
    masked = masked_keys(scores, mask, dim, who="softmax")
    if masked is None:  # nothing to mask: torch's softmax as it is
        return torch.softmax(scores, dim)
    return masked_softmax(scores, ~masked, dim)


class Softmax(nn.Module):
    """Masked softmax as a module: `Softmax(dim)(scores, mask=None)`; see `softmax`."""

    name = "softmax"
    normalized = True  # rows of attendable keys sum to 1

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return softmax(scores, dim=self.dim, mask=mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
