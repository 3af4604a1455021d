"""Top-k attention of the Explicit Sparse Transformer (Zhao et al. 2019).

Keep each query's k largest scores, set the rest to −inf, then softmax. From the authors'
`sparse_activated_multihead_attention.py` (lancopku/Explicit-Sparse-Transformer):

    t = k-th largest score of the row           (torch.topk)
    P = softmax(where(z < t, −inf, z))          ties at t are kept

k is fixed (their `div = −k`; k = 8 is the value the paper recommends), or k = ceil(n / div)
for n keys (their `div > 0`, with a lower bound). Here n counts the attendable keys of the row,
so padding does not inflate k.

On CPU a fused numba kernel (`_topk_kernel`) computes it in one pass per row and takes only
the k kept exponentials; elsewhere (GPU, half precision) `topk_reference` does it with torch
operations. The two agree to rounding (tested).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.normalizers._checks import attendable
from attnkit.normalizers._rows import map_rows
from attnkit.normalizers.softmax import masked_softmax

# The paper's recommended k (used for IWSLT14 De-En), the default when neither k nor div is given.
DEFAULT_K = 8


def _check_k_div(k: int | None, div: float | None, min_k: int) -> tuple[int | None, float | None]:
    """Validate the choice of k; returns (k, div) with exactly one of them set."""
    if k is not None and div is not None:
        raise ValueError(
            f"topk: pass either k (fixed, got {k}) or div (k = ceil(n / div), got {div}), not both."
        )
    if k is None and div is None:
        k = DEFAULT_K
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"topk: k must be an integer >= 1, got {k!r}.")
    if div is not None and (
        isinstance(div, bool)
        or not isinstance(div, int | float)
        or not math.isfinite(div)
        or div <= 0
    ):
        raise ValueError(
            f"topk: div must be a finite number > 0 (k = ceil(n / div)), got {div!r}. "
            "For a fixed k pass k= instead."
        )
    if isinstance(min_k, bool) or not isinstance(min_k, int) or min_k < 1:
        raise ValueError(f"topk: min_k must be an integer >= 1, got {min_k!r}.")
    return k, div


def topk(
    scores: Tensor,
    dim: int = -1,
    mask: Tensor | None = None,
    k: int | None = None,
    div: float | None = None,
    min_k: int = 1,
) -> Tensor:
    """Top-k softmax (Zhao et al. 2019): softmax over the k largest attendable scores of each row.

    P_i = exp(z_i) / Σ_{j: z_j ≥ t} exp(z_j) if z_i ≥ t else 0, where t is the k-th largest
    attendable score. Ties: every key scoring exactly t is kept, as in the authors' code, so a
    row with ties at t has more than k nonzeros; without ties it has exactly min(k, n).

    Args:
        scores: attention scores z, e.g. `(B, H, T, S)`.
        dim: the key dimension.
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.
        k: fixed number of keys to keep (capped at n). Default 8 when `div` is not given.
        div: keep k = max(ceil(n / div), min_k) keys, n = number of attendable keys of the row.
        min_k: lower bound on k in the `div` mode (the authors' `lb`).

    Returns:
        Probabilities shaped like `scores`; rows sum to 1, masked and dropped keys are exactly 0,
        rows with no attendable key are zeros. k ≥ n gives plain (masked) softmax.

    Raises:
        ValueError: k < 1, div ≤ 0, min_k < 1, or both k and div given.
    """
    k, div = _check_k_div(k, div, min_k)
    attend = attendable(scores, mask, dim, who="topk")  # like scores
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        return _FusedTopK.apply(scores, attend, dim, k, div, min_k)
    return topk_reference(scores, attend, dim, k, div, min_k)


def topk_reference(
    scores: Tensor, attend: Tensor, dim: int, k: int | None, div: float | None, min_k: int
) -> Tensor:
    """Top-k softmax from torch operations (GPU, half precision; the CPU kernel's oracle).

    `attend` is the validated boolean "may attend" tensor shaped like `scores`.
    """
    num_keys = attend.sum(dim, keepdim=True)  # n, (..., 1, ...)
    if div is None:
        keep_count = num_keys.clamp(max=k)
    else:
        keep_count = torch.ceil(num_keys / div).long().clamp(min=min_k)
        keep_count = torch.minimum(keep_count, num_keys)
    # The selection is piecewise constant in the scores: no gradient flows through the threshold.
    ranked = scores.detach().masked_fill(~attend, float("-inf"))
    # Only the largest k of any row is needed, so a partial top-k beats a full sort.
    largest_k = min(k, scores.shape[dim]) if div is None else max(int(keep_count.max()), 1)
    ranked = ranked.topk(largest_k, dim).values  # sorted, largest first
    # A row with no attendable key reads index 0 (−inf); `attend` is all False there anyway.
    threshold = ranked.gather(dim, (keep_count - 1).clamp(min=0))  # t, (..., 1, ...)
    keep = attend & (scores >= threshold)  # ≥: ties at t are kept
    return masked_softmax(scores, keep, dim)


class _FusedTopK(torch.autograd.Function):
    """Top-k softmax on CPU with the fused numba kernel; backward is softmax's over kept keys."""

    @staticmethod
    def forward(ctx, scores, attend, dim, k, div, min_k):
        from attnkit.normalizers._topk_kernel import topk_softmax_rows

        probs = map_rows(
            lambda rows, keys: topk_softmax_rows(rows, keys, k, div, min_k), scores, attend, dim
        )
        ctx.save_for_backward(probs)
        ctx.dim = dim
        return probs

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensors
        # ∂p/∂z restricted to the kept keys (p = 0 elsewhere): p ⊙ (g − ⟨p, g⟩), softmax's own.
        grad_scores = torch._softmax_backward_data(grad, probs, ctx.dim, probs.dtype)
        return grad_scores, None, None, None, None, None


class TopK(nn.Module):
    """Top-k softmax as a module: `TopK(k=8)` or `TopK(div=4)`, then `(scores, mask=None)`."""

    name = "topk"
    normalized = True

    def __init__(
        self, k: int | None = None, div: float | None = None, min_k: int = 1, dim: int = -1
    ) -> None:
        super().__init__()
        self.k, self.div = _check_k_div(k, div, min_k)
        self.min_k = min_k
        self.dim = dim

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return topk(scores, dim=self.dim, mask=mask, k=self.k, div=self.div, min_k=self.min_k)

    def extra_repr(self) -> str:
        if self.div is None:
            return f"k={self.k}, dim={self.dim}"
        return f"div={self.div}, min_k={self.min_k}, dim={self.dim}"
