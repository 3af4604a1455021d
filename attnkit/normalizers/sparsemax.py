"""Sparsemax and 1.5-entmax with masks, computed by the `entmax` package or a fused CPU kernel.

The package computes both maps exactly (sort-based thresholds, Martins & Astudillo 2016;
Peters, Niculae & Martins 2019). It has no mask argument and returns NaN for a row that is all
−inf, so `package_sparse_map` puts masked keys at a finite value far enough below every
threshold that they never enter the support, and uses the package's partial sort (its `k`)
with a k suited to the key length. That is the path on GPU and in half precision.

On CPU in float32/float64 a numba kernel (`_sparse_kernel`) does the same maps with masking,
threshold and output fused in one pass per row: 1.5–5× faster than the package on the
benchmark's shapes (benchmarks/bench_normalizers.py). Tests hold it to the package, to a
sort-based closed form and to a bisection, values and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import entmax
import torch
from torch import Tensor, nn

from attnkit.normalizers._checks import masked_keys
from attnkit.normalizers._rows import map_rows

# Masked keys are given a finite score far enough below every row's support that they never
# enter it: the sparsemax threshold is τ ≥ max − 1 and the 1.5-entmax one (on z/2) τ ≥ max/2 − 1,
# so any score below max − 2 maps to exactly 0 and leaves τ unchanged. The smallest finite score
# of the whole tensor minus 4 is below every row's max − 2, costs one reduction (not a per-row
# max and a subtraction), and stays finite, which keeps the package's cumsums free of inf − inf.
_MARGIN = 4.0


def _partial_sort_k(n: int, sparse_map: str) -> int | None:
    """How many top scores the package sorts first (its `k`); None for a full sort.

    The package sorts only the top k and redoes a row with 2k when its support fills all k, so
    k should be a little above typical support sizes: about 3–10 keys for sparsemax and 8–35 for
    1.5-entmax on unit-variance scores of 32–512 keys (measured). Partial sorting is 2–9× faster
    than a full sort at those sizes (benchmarks/bench_normalizers.py).
    """
    if sparse_map == "sparsemax":
        k = 16
    else:
        k = 16 if n <= 64 else 32
    return k if k < n else None


def _masked_sparse_map(
    project: Callable[..., Tensor],
    scores: Tensor,
    dim: int,
    mask: Tensor | None,
    who: str,
    k: int | None,
) -> Tensor:
    masked = masked_keys(scores, mask, dim, who=who)  # broadcasts to scores, or None
    if k is None:
        k = _partial_sort_k(scores.shape[dim], who)
    elif isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(
            f"{who}: k (how many top scores to sort first) must be an integer >= 1 or None, "
            f"got {k!r}; it changes speed, never the result."
        )
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        return _FusedSparseMap.apply(scores, masked, dim, who)
    return package_sparse_map(project, scores, masked, dim, k)


def package_sparse_map(
    project: Callable[..., Tensor], scores: Tensor, masked: Tensor | None, dim: int, k: int | None
) -> Tensor:
    """`project` (entmax.sparsemax or entmax.entmax15) on the attendable keys, zeros elsewhere.

    The path off CPU (and for half precision); on CPU it is the fused kernel's oracle in tests.
    `masked` broadcasts to `scores` (True = not attendable) or is None.
    """
    if masked is None:  # nothing masked: the package as it is
        return project(scores, dim=dim, k=k)
    floor = float(scores.detach().min())
    if math.isinf(floor):  # −inf scores (masked): the smallest attendable score instead
        floor = float(scores.detach().masked_fill(masked, float("inf")).min())
        if math.isinf(floor):  # nothing attendable anywhere: any finite value
            floor = 0.0
    probs = project(scores.masked_fill(masked, floor - _MARGIN), dim=dim, k=k)
    # Masked keys are exactly 0 already; this also zeroes rows that had no attendable key.
    return probs.masked_fill(masked, 0.0)


class _FusedSparseMap(torch.autograd.Function):
    """Masked sparsemax / 1.5-entmax on CPU with the fused numba kernel (`_sparse_kernel`).

    Backward (Martins & Astudillo 2016; Peters et al. 2019), per row over the support S:
        sparsemax   ∂L/∂z = 1_S ⊙ (g − mean_S(g))
        1.5-entmax  ∂L/∂z = √p ⊙ g − (⟨√p, g⟩ / Σ √p) √p
    Masked keys have p = 0, so they get no gradient.
    """

    @staticmethod
    def forward(ctx, scores, masked, dim, who):
        from attnkit.normalizers._sparse_kernel import ENTMAX15, SPARSEMAX, sparse_map_rows

        which = SPARSEMAX if who == "sparsemax" else ENTMAX15
        attend = None if masked is None else ~masked
        probs = map_rows(lambda rows, keys: sparse_map_rows(rows, keys, which), scores, attend, dim)
        ctx.save_for_backward(probs)
        ctx.dim, ctx.sparsemax = dim, which == SPARSEMAX
        return probs

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensors
        dim = ctx.dim
        if ctx.sparsemax:
            support = (probs > 0).to(grad.dtype)
            size = support.sum(dim, keepdim=True).clamp(min=1.0)
            mean = (grad * support).sum(dim, keepdim=True) / size
            return support * (grad - mean), None, None, None
        root = probs.sqrt()
        weighted = grad * root
        scale = weighted.sum(dim, keepdim=True) / root.sum(dim, keepdim=True).clamp(min=1e-30)
        return weighted - scale * root, None, None, None


def sparsemax(
    scores: Tensor, dim: int = -1, mask: Tensor | None = None, k: int | None = None
) -> Tensor:
    """sparsemax(z) = argmin_{p ∈ Δ} ‖p − z‖² (Martins & Astudillo 2016), over attendable keys.

    The Euclidean projection onto the simplex Δ = {p ≥ 0, Σ p = 1}: p_i = [z_i − τ]₊ with τ such
    that Σ p_i = 1, so keys scoring below τ get exactly 0. Computed by the fused kernel on CPU
    (float32/64), else by `entmax.sparsemax`.

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)`.
        dim: the key dimension to normalise over.
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.
        k: off CPU, sort only the top k scores first (the package's partial sort; rows whose
            support fills k are redone with 2k). Speed only; None picks a k for the key length.

    Returns:
        Probabilities shaped like `scores`; masked keys exactly 0, rows with no attendable key
        all zeros (finite gradients).
    """
    return _masked_sparse_map(entmax.sparsemax, scores, dim, mask, "sparsemax", k)


def entmax15(
    scores: Tensor, dim: int = -1, mask: Tensor | None = None, k: int | None = None
) -> Tensor:
    """1.5-entmax(z) = argmax_{p ∈ Δ} ⟨p, z⟩ + H^T_α(p), α = 1.5 (Peters et al. 2019).

    H^T_α is the Tsallis α-entropy; α = 1 gives softmax, α = 2 sparsemax. The solution is
    p_i = [z_i / 2 − τ]₊², sparse but smoother than sparsemax. Computed by the fused kernel on CPU
    (float32/64), else by `entmax.entmax15` (both exact, sort-based).

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)`.
        dim: the key dimension to normalise over.
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.
        k: off CPU, sort only the top k scores first (the package's partial sort; rows whose
            support fills k are redone with 2k). Speed only; None picks a k for the key length.

    Returns:
        Probabilities shaped like `scores`; masked keys exactly 0, rows with no attendable key
        all zeros (finite gradients).
    """
    return _masked_sparse_map(entmax.entmax15, scores, dim, mask, "entmax15", k)


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
