"""Per-example rank correlations and distances between attention and importance scores.

Everything is batched: score tensors are `(B, T)` with a `(B, T)` real-token mask, and each
example gets its own value over its real tokens only (Abnar & Zuidema 2020 report the mean and
std over examples of a per-example Spearman; Jain & Wallace 2019 a per-example Kendall tau and
the share of examples with p <= 0.05). Results are float64 tensors.

NaN policy: a correlation is undefined when either score row is constant over the real tokens
(all ties) or has fewer than 2 real tokens; such examples get NaN (as scipy returns), and
`mean_std` / `fraction_significant` leave them out of the mean and report how many there were.
"""

from __future__ import annotations

import math
from functools import cache
from numbers import Integral
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from attnkit.attentions import Attentions
from attnkit.errors import AttnkitError

# Pairwise (B, T, T) comparisons are computed in batch chunks of about this many elements.
_PAIRWISE_CHUNK = 1 << 22
# scipy's kendalltau(method="auto") uses the exact null distribution up to this many tokens.
_KENDALL_EXACT_MAX_N = 33
LN2 = math.log(2.0)


class MetricInputError(AttnkitError):
    """Scores or distributions a metric cannot work with; the message says how to fix it."""


class KendallResult(NamedTuple):
    """Per-example Kendall tau-b and its two-sided p-value, each `(B,)`."""

    tau: Tensor
    p_value: Tensor


class Summary(NamedTuple):
    """Mean and std (ddof=0, like numpy) over the non-NaN values; `n` used, `n_nan` left out."""

    mean: float
    std: float
    n: int
    n_nan: int

    def __str__(self) -> str:
        left_out = f", {self.n_nan} NaN left out" if self.n_nan else ""
        return f"{self.mean:.2f}±{self.std:.2f} (n={self.n}{left_out})"


# --------------------------------------------------------------------------- inputs


def _as_float64(values: Any, name: str) -> Tensor:
    if isinstance(values, Tensor):
        return values.detach().to(torch.float64)
    try:
        return torch.as_tensor(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise MetricInputError(f"{name} must be numeric (a tensor or array): {error}") from None


def _paired_scores(a: Any, b: Any, mask: Any) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Checked `(B, T)` float64 scores, bool mask, and whether the input was a single row."""
    a = _as_float64(a, "a")
    b = _as_float64(b, "b").to(a.device)
    single = a.dim() == 1
    if single:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
        mask = None if mask is None else torch.as_tensor(mask).unsqueeze(0)
    if a.shape != b.shape or a.dim() != 2:
        raise MetricInputError(
            f"scores must both be (batch, tokens) (or (tokens,)), got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; align them to the same tokens first."
        )
    if mask is None:
        mask = torch.ones(a.shape, dtype=torch.bool, device=a.device)
    mask = torch.as_tensor(mask, device=a.device)
    if mask.shape != a.shape:
        raise MetricInputError(
            f"mask must have the scores' shape {tuple(a.shape)}, got {tuple(mask.shape)}; pass "
            "the (batch, tokens) real-token mask of these scores (e.g. the attention_mask)."
        )
    mask = mask.bool()
    for name, values in (("a", a), ("b", b)):
        bad = ~torch.isfinite(values) & mask
        if bad.any():
            where = bad.nonzero()[0].tolist()
            raise MetricInputError(
                f"{name} has NaN/inf at a real token (example, token) = {where}; fix the scores "
                "or mask that token out."
            )
    # Padding may hold anything (NaN included); give it a neutral value so it cannot leak.
    return a.masked_fill(~mask, 0.0), b.masked_fill(~mask, 0.0), mask, single


def _finish(values: Tensor, single: bool) -> Tensor:
    return values[0] if single else values


def _chunk_rows(batch: int, length: int) -> list[slice]:
    """Batch slices small enough for `(b, T, T)` pairwise comparisons."""
    step = max(1, _PAIRWISE_CHUNK // max(1, length * length))
    return [slice(start, start + step) for start in range(0, batch, step)]


# --------------------------------------------------------------------------- rank correlations


def _average_ranks(x: Tensor, mask: Tensor) -> Tensor:
    """1-based ranks among the real entries of each row, ties averaged (scipy's default)."""
    real_j = mask[:, None, :]  # (B, 1, T)
    less = ((x[:, None, :] < x[:, :, None]) & real_j).sum(-1)  # (B, T): #{j: x_j < x_i}
    equal = ((x[:, None, :] == x[:, :, None]) & real_j).sum(-1)  # (B, T): ties incl. i
    return less.to(torch.float64) + (equal.to(torch.float64) + 1) / 2


def _masked_pearson(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """Pearson r per row over real entries; NaN for constant rows or < 2 entries."""
    weight = mask.to(x.dtype)
    n = weight.sum(-1, keepdim=True)  # (B, 1)
    dx = (x - (x * weight).sum(-1, keepdim=True) / n) * weight  # (B, T)
    dy = (y - (y * weight).sum(-1, keepdim=True) / n) * weight
    var_x, var_y = (dx * dx).sum(-1), (dy * dy).sum(-1)  # (B,)
    r = (dx * dy).sum(-1) / torch.sqrt(var_x * var_y)
    undefined = (var_x == 0) | (var_y == 0) | (n[:, 0] < 2)
    return r.clamp(-1.0, 1.0).masked_fill(undefined, float("nan"))


def spearman(a: Any, b: Any, mask: Any = None) -> Tensor:
    """Per-example Spearman rho between score rows `a` and `b` `(B, T)` over real tokens.

    Equals `scipy.stats.spearmanr(a[i][mask[i]], b[i][mask[i]])` per example (average ranks
    for ties). Returns `(B,)` (a scalar for 1-D input); NaN where undefined (module docstring).
    """
    a, b, mask, single = _paired_scores(a, b, mask)
    batch, length = a.shape
    rho = torch.empty(batch, dtype=torch.float64, device=a.device)
    for rows in _chunk_rows(batch, length):
        m = mask[rows]
        rho[rows] = _masked_pearson(_average_ranks(a[rows], m), _average_ranks(b[rows], m), m)
    return _finish(rho, single)


@cache
def _exact_two_sided(n: int) -> Tensor:
    """`p[c]`, c = 0..tot//2: scipy's exact two-sided p-value min(1, 2 P(S <= c)) for n untied
    items, c = min(dis, tot - dis), from the Mahonian numbers (permutations of n items by
    inversion count) in exact integer arithmetic."""
    half = n * (n - 1) // 4
    counts = [1] + [0] * half  # permutations of 1 item by inversions, truncated at `half`
    for size in range(2, n + 1):
        # Inserting item `size` adds 0..size-1 inversions: new[k] = sum_{i<size} old[k-i].
        prefix = [0]
        for ways in counts:
            prefix.append(prefix[-1] + ways)
        counts = [prefix[k + 1] - prefix[max(0, k + 1 - size)] for k in range(half + 1)]
    total, running, p_values = math.factorial(n), 0, []
    for ways in counts:
        running += ways
        p_values.append(min(1.0, 2 * running / total))  # int / int: correctly rounded
    return torch.tensor(p_values, dtype=torch.float64)


def _exact_p(n: Tensor, c: Tensor) -> Tensor:
    """Exact two-sided p-values for untied rows with `n` items and `c` = min(dis, tot - dis)."""
    p_value = torch.full(n.shape, float("nan"), dtype=torch.float64, device=n.device)
    for size in n.unique().tolist():
        rows = n == size
        if size < 2:
            continue
        if size > _KENDALL_EXACT_MAX_N and bool((c[rows] <= 1).all()):
            # scipy's closed forms for the extreme tails: 2/n! (c = 0) and 2/(n-1)! (c = 1).
            log_p = math.log(2.0) - torch.lgamma(size + 1 - c[rows].to(torch.float64))
            p_value[rows] = torch.exp(log_p)
        else:
            table = _exact_two_sided(size).to(n.device)
            p_value[rows] = table[c[rows].clamp(max=len(table) - 1)]
    return p_value


def kendall(
    a: Any,
    b: Any,
    mask: Any = None,
    *,
    method: Literal["auto", "exact", "asymptotic"] = "auto",
) -> KendallResult:
    """Per-example Kendall tau-b and two-sided p-value over real tokens, each `(B,)`.

    Equals `scipy.stats.kendalltau(a[i][mask[i]], b[i][mask[i]], method=method)` per example:
    `"auto"` uses the exact null distribution when a row has no ties and at most 33 tokens (or
    at most 1 discordant / concordant pair), else the tie-corrected normal approximation.
    NaN where undefined (module docstring). Jain & Wallace 2019 report the share of examples
    with p <= 0.05: `fraction_significant(result.p_value)`.
    """
    if method not in ("auto", "exact", "asymptotic"):
        raise MetricInputError(f"method must be 'auto', 'exact' or 'asymptotic', got {method!r}")
    a, b, mask, single = _paired_scores(a, b, mask)
    batch, length = a.shape
    names = ("s", "discordant", "ties_a", "ties_b", "cubic_a", "cubic_b", "spread_a", "spread_b")
    stats = {name: torch.empty(batch, dtype=torch.float64, device=a.device) for name in names}
    upper = torch.ones(length, length, dtype=torch.bool, device=a.device).triu(1)  # pairs i < j
    for rows in _chunk_rows(batch, length):
        m = mask[rows]
        pairs = upper & m[:, :, None] & m[:, None, :]  # (b, T, T) real pairs i < j
        sign_a = torch.sign(a[rows][:, :, None] - a[rows][:, None, :])  # (b, T, T)
        sign_b = torch.sign(b[rows][:, :, None] - b[rows][:, None, :])
        product = sign_a * sign_b * pairs
        stats["s"][rows] = product.sum((1, 2))  # concordant - discordant pairs
        stats["discordant"][rows] = (product < 0).sum((1, 2))
        for side, sign, values in (("a", sign_a, a[rows]), ("b", sign_b, b[rows])):
            stats[f"ties_{side}"][rows] = ((sign == 0) & pairs).sum((1, 2))  # tied pairs
            # The variance needs sums over tie groups of t(t-1)(t-2) and t(t-1)(2t+5); they
            # equal sums over tokens of (t-1)(t-2) and (t-1)(2t+5), t = the token's group size.
            t = ((values[:, :, None] == values[:, None, :]) & m[:, None, :]).sum(-1)  # (b, T)
            t = t.to(torch.float64)
            stats[f"cubic_{side}"][rows] = ((t - 1) * (t - 2) * m).sum(-1)
            stats[f"spread_{side}"][rows] = ((t - 1) * (2 * t + 5) * m).sum(-1)

    n = mask.sum(-1)  # (B,)
    n_float = n.to(torch.float64)
    total = n_float * (n_float - 1) / 2
    s, ties_a, ties_b = stats["s"], stats["ties_a"], stats["ties_b"]
    undefined = (ties_a == total) | (ties_b == total)  # constant row, or fewer than 2 tokens
    tau = (s / torch.sqrt(total - ties_a) / torch.sqrt(total - ties_b)).clamp(-1.0, 1.0)

    # Tie-corrected normal approximation of s (scipy's formula).
    pairs_twice = n_float * (n_float - 1)
    variance = (pairs_twice * (2 * n_float + 5) - stats["spread_a"] - stats["spread_b"]) / 18
    variance = variance + 2 * ties_a * ties_b / pairs_twice
    cubic = stats["cubic_a"] * stats["cubic_b"]
    variance = variance + torch.where(cubic > 0, cubic / (9 * pairs_twice * (n_float - 2)), 0.0)
    p_value = torch.special.erfc((s / torch.sqrt(variance)).abs() / math.sqrt(2.0))  # 2 P(Z>|z|)

    no_ties = (ties_a == 0) & (ties_b == 0)
    if method == "exact" and not no_ties[~undefined].all():
        tied = (~no_ties & ~undefined).nonzero()[0].item()
        raise MetricInputError(
            f"example {tied} has tied scores; the exact Kendall p-value needs untied rows. "
            "Use method='auto' or 'asymptotic'."
        )
    c = torch.minimum(stats["discordant"], total - stats["discordant"]).round().long()
    if method == "auto":
        use_exact = no_ties & ((n <= _KENDALL_EXACT_MAX_N) | (c <= 1))
    else:
        use_exact = torch.full_like(no_ties, method == "exact")
    use_exact &= ~undefined
    p_value[use_exact] = _exact_p(n[use_exact], c[use_exact])
    p_value = p_value.clamp(0.0, 1.0)

    nan = torch.tensor(float("nan"), dtype=torch.float64, device=a.device)
    tau, p_value = torch.where(undefined, nan, tau), torch.where(undefined, nan, p_value)
    return KendallResult(_finish(tau, single), _finish(p_value, single))


# --------------------------------------------------------------------------- summaries


def mean_std(values: Any) -> Summary:
    """Mean and std (ddof=0) over the non-NaN entries of `values`, with the counts."""
    array = np.asarray(
        values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64
    ).ravel()
    kept = array[~np.isnan(array)]
    if kept.size == 0:
        return Summary(float("nan"), float("nan"), 0, int(array.size))
    return Summary(
        float(kept.mean()), float(kept.std()), int(kept.size), int(array.size - kept.size)
    )


def fraction_significant(p_values: Any, alpha: float = 0.05) -> float:
    """Share of examples with p <= alpha, among those with a defined (non-NaN) p-value."""
    array = np.asarray(
        p_values.detach().cpu() if isinstance(p_values, Tensor) else p_values, dtype=np.float64
    ).ravel()
    kept = array[~np.isnan(array)]
    return float((kept <= alpha).mean()) if kept.size else float("nan")


# --------------------------------------------------------------------------- distributions


def _distributions(
    p: Any, q: Any | None, mask: Any, dim: int, normalize: bool
) -> tuple[Tensor, Tensor | None]:
    """float64 distributions along `dim` with masked entries zeroed, checked (or normalised)."""
    tensors = [_as_float64(p, "p")] + ([] if q is None else [_as_float64(q, "q")])
    rank = tensors[0].dim()
    if isinstance(dim, bool) or not isinstance(dim, Integral) or not -rank <= dim < max(rank, 1):
        raise MetricInputError(
            f"dim={dim!r} is not a dimension of the distributions (shape "
            f"{tuple(tensors[0].shape)}); pass the axis the probabilities sum over, e.g. dim=-1."
        )
    if q is not None and tensors[0].shape != tensors[1].shape:
        raise MetricInputError(
            f"p and q must have the same shape, got {tuple(tensors[0].shape)} and "
            f"{tuple(tensors[1].shape)}; compare distributions over the same tokens (pad both "
            "to one length and pass mask=)."
        )
    if mask is not None:
        mask = torch.as_tensor(mask, device=tensors[0].device).bool()
        try:
            mask = torch.broadcast_to(mask, tensors[0].shape)
        except RuntimeError:
            raise MetricInputError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the distributions' "
                f"shape {tuple(tensors[0].shape)}; for (B, H, T, S) attention over keys use "
                "mask[:, None, None, :]."
            ) from None
        tensors = [t.masked_fill(~mask, 0.0) for t in tensors]
    checked = []
    for name, t in zip("pq", tensors, strict=False):
        if not torch.isfinite(t).all() or (t < 0).any():
            raise MetricInputError(
                f"{name} must be finite and non-negative (probabilities); pass attention weights "
                "or softmax outputs, not scores or logits, and mask out padding with mask=."
            )
        total = t.sum(dim, keepdim=True)
        if normalize:
            if (total == 0).any():
                raise MetricInputError(f"{name} has an all-zero row; it cannot be normalised.")
            t = t / total
        elif ((total - 1).abs() > 1e-3).any():
            worst = (total - 1).abs().max().item()
            raise MetricInputError(
                f"{name} rows must sum to 1 over the real entries (off by up to {worst:.3g}); "
                "pass probabilities, or normalize=True to rescale them."
            )
        checked.append(t)
    return checked[0], (checked[1] if q is not None else None)


def _plogp_ratio(p: Tensor, r: Tensor) -> Tensor:
    """p log(p / r) with 0 log 0 = 0 (r > 0 wherever p > 0)."""
    safe = p > 0
    return torch.where(
        safe, p * torch.log(torch.where(safe, p, 1.0) / torch.where(safe, r, 1.0)), 0.0
    )


def jsd(p: Any, q: Any, mask: Any = None, *, dim: int = -1, normalize: bool = False) -> Tensor:
    """Jensen-Shannon divergence along `dim`, natural log, in [0, ln 2].

    JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2. `mask` (broadcastable)
    zeroes padding entries. Note `scipy.spatial.distance.jensenshannon` returns sqrt(JSD).
    Jain & Wallace 2019 use it to compare attention distributions.
    """
    p, q = _distributions(p, q, mask, dim, normalize)
    middle = (p + q) / 2
    divergence = (_plogp_ratio(p, middle).sum(dim) + _plogp_ratio(q, middle).sum(dim)) / 2
    return divergence.clamp(0.0, LN2)


def tvd(p: Any, q: Any, mask: Any = None, *, dim: int = -1, normalize: bool = False) -> Tensor:
    """Total variation distance `sum |p - q| / 2` along `dim`, in [0, 1] (Wiegreffe & Pinter
    2019 compare prediction distributions with it)."""
    p, q = _distributions(p, q, mask, dim, normalize)
    return (p - q).abs().sum(dim) / 2


def entropy(p: Any, mask: Any = None, *, dim: int = -1, normalize: bool = False) -> Tensor:
    """Shannon entropy `-sum p log p` along `dim`, natural log (0 log 0 = 0)."""
    p, _ = _distributions(p, None, mask, dim, normalize)
    return -_plogp_ratio(p, torch.ones_like(p)).sum(dim)


def sparsity(values: Any, mask: Any = None, *, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Share of exact zeros among real entries (Zhang et al. 2021's sparsity rate).

    `values` is any tensor with a broadcastable `mask` (True = real entry), or an `Attentions`,
    whose real entries are the (real query, real key) pairs. `dim=None` gives one share over all
    real entries; otherwise the share per slice (reducing over `dim`). NaN where a slice has no
    real entry.
    """
    if isinstance(values, Attentions):
        if mask is not None:
            raise MetricInputError("an Attentions carries its own mask; do not pass mask=.")
        key_mask = values.key_mask if values.key_mask is not None else values.mask
        mask = values.mask[None, :, None, :, None] & key_mask[None, :, None, None, :]
        values = values.weights  # (L, B, H, T, S)
    values = torch.as_tensor(values)
    if mask is None:
        mask = torch.ones_like(values, dtype=torch.bool)
    mask = torch.as_tensor(mask, device=values.device).bool()
    try:
        mask = torch.broadcast_to(mask, values.shape)
    except RuntimeError:
        raise MetricInputError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the values' shape "
            f"{tuple(values.shape)}; align it from the right, e.g. a (B, S) key mask for "
            "(B, H, T, S) attention is mask[:, None, None, :]."
        ) from None
    zeros = ((values == 0) & mask).to(torch.float64)
    real = mask.to(torch.float64)
    if dim is None:
        return zeros.sum() / real.sum()
    return zeros.sum(dim) / real.sum(dim)


# --------------------------------------------------------------------------- classification


def macro_f1(predicted: Any, labels: Any) -> float:
    """Macro-averaged F1 `(N,), (N,) -> float` over the classes in `labels` or `predicted`.

    Per class c: F1 = 2·TP / (2·TP + FP + FN), 0 when the class is never predicted correctly;
    then the unweighted mean over classes (scikit-learn's `f1_score(average="macro")`, the
    score Jain & Wallace 2019 report in Table 1).
    """
    predicted = np.asarray(predicted.cpu() if isinstance(predicted, Tensor) else predicted)
    labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if predicted.shape != labels.shape or predicted.ndim != 1 or predicted.size == 0:
        raise MetricInputError(
            f"macro_f1 needs two non-empty 1-D arrays of the same length, got shapes "
            f"{predicted.shape} and {labels.shape}."
        )
    scores = []
    for c in np.union1d(predicted, labels):
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))
