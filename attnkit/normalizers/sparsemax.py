"""Sparsemax and 1.5-entmax with masks: thin wrappers around the `entmax` package.

The package computes both maps exactly (sort-based thresholds, Martins & Astudillo 2016;
Peters, Niculae & Martins 2019). It has no mask argument and returns NaN for a row that is all
−inf, so the wrappers shift each row by its largest attendable score and put masked keys at a
finite value far enough below the threshold that they can never enter the support: the result
on the attendable keys is then the map of the attendable sub-vector, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import entmax
from torch import Tensor, nn

from attnkit.normalizers._checks import attendable

# After shifting a row so its largest attendable score is 0, the sparsemax threshold is τ ≥ −1
# (p_max = 0 − τ ≤ 1) and the 1.5-entmax one, on z/2, is τ ≥ −1 as well, so any score below −2
# maps to exactly 0 and leaves τ unchanged. −4 leaves a margin; a finite value (not −inf) keeps
# the package's cumulative sums free of inf − inf.
_BELOW_SUPPORT = -4.0


def _masked_sparse_map(
    project: Callable[..., Tensor], scores: Tensor, dim: int, mask: Tensor | None, who: str
) -> Tensor:
    attend = attendable(scores, mask, dim, who=who)  # like scores
    has_key = attend.any(dim, keepdim=True)  # (..., 1, ...)
    # Both maps are shift invariant, so the detached shift changes neither values nor gradients.
    row_max = scores.detach().masked_fill(~attend, float("-inf")).amax(dim, keepdim=True)
    row_max = row_max.masked_fill(~has_key, 0.0)  # rows with no key: any finite shift
    shifted = (scores - row_max).masked_fill(~attend, _BELOW_SUPPORT)
    probs = project(shifted, dim=dim)
    # Masked keys are exactly 0 already; this also zeroes rows that had no attendable key.
    return probs.masked_fill(~attend, 0.0)


def sparsemax(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """sparsemax(z) = argmin_{p ∈ Δ} ‖p − z‖² (Martins & Astudillo 2016), over attendable keys.

    The Euclidean projection onto the simplex Δ = {p ≥ 0, Σ p = 1}: p_i = [z_i − τ]₊ with τ such
    that Σ p_i = 1, so keys scoring below τ get exactly 0. Computed by `entmax.sparsemax`.

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)`.
        dim: the key dimension to normalise over.
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.

    Returns:
        Probabilities shaped like `scores`; masked keys exactly 0, rows with no attendable key
        all zeros (finite gradients).
    """
    return _masked_sparse_map(entmax.sparsemax, scores, dim, mask, "sparsemax")


def entmax15(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """1.5-entmax(z) = argmax_{p ∈ Δ} ⟨p, z⟩ + H^T_α(p), α = 1.5 (Peters et al. 2019).

    H^T_α is the Tsallis α-entropy; α = 1 gives softmax, α = 2 sparsemax. The solution is
    p_i = [z_i / 2 − τ]₊², sparse but smoother than sparsemax. Computed by `entmax.entmax15`
    (exact, sort-based).

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)`.
        dim: the key dimension to normalise over.
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.

    Returns:
        Probabilities shaped like `scores`; masked keys exactly 0, rows with no attendable key
        all zeros (finite gradients).
    """
    return _masked_sparse_map(entmax.entmax15, scores, dim, mask, "entmax15")


class Sparsemax(nn.Module):
    """Masked sparsemax as a module: `Sparsemax(dim)(scores, mask=None)`; see `sparsemax`."""

    name = "sparsemax"
    normalized = True

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return sparsemax(scores, dim=self.dim, mask=mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Entmax15(nn.Module):
    """Masked 1.5-entmax as a module: `Entmax15(dim)(scores, mask=None)`; see `entmax15`."""

    name = "entmax15"
    normalized = True

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return entmax15(scores, dim=self.dim, mask=mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, alpha=1.5"
