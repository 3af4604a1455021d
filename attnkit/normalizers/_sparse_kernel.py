"""Fused CPU kernels for masked sparsemax and 1.5-entmax: threshold and output in one pass per row.

Both maps are p_i = f(z_i − τ) with a threshold τ that depends only on the largest scores of
the row (the support). The entmax package finds τ by sorting the row (or its top k) in torch
and needs extra passes to shift, mask and clip; here each row keeps its largest attendable
scores in a small sorted buffer while it is read once, finds τ from them, and writes the
output: padding and −inf scores are skipped as they are read.

sparsemax (Martins & Astudillo 2016, Alg. 1), z sorted descending:
    k(z) = max{ρ : 1 + ρ z_(ρ) > Σ_{j≤ρ} z_(j)},  τ = (Σ_{j≤k} z_(j) − 1) / k,  p = [z − τ]₊
1.5-entmax (Peters, Niculae & Martins 2019, the sort-based algorithm the package uses), on
x = z / 2 sorted descending, for each ρ:
    μ_ρ = mean(x_(1..ρ)),  s_ρ = Σ_{j≤ρ} (x_(j) − μ_ρ)²,  τ_ρ = μ_ρ − √max((1 − s_ρ) / ρ, 0)
    support = #{ρ : τ_ρ ≤ x_(ρ)},  τ = τ_support,  p = [x − τ]₊²

When the support fills the whole buffer (more than BUFFER keys), the row is sorted in full
instead. Sums run in float64 whatever the input's precision. Backward passes are torch
operations in attnkit.normalizers.sparsemax.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from attnkit.normalizers._rows import wants_parallel

BUFFER = 32  # largest scores kept per row; attention supports are mostly far smaller
PARALLEL_MIN_SCORES = 1 << 16  # fewer scores than this: run rows serially
CHUNK_ROWS = 64  # rows per parallel task
SPARSEMAX, ENTMAX15 = 0, 1


@njit(cache=True, inline="always")
def _largest(row, attend, buffer) -> tuple[int, int]:
    """Fill buffer with the largest attendable values, descending; (kept, attendable count)."""
    size = buffer.shape[0]
    filled = 0
    count = 0
    for j in range(row.shape[0]):
        if not attend[j]:
            continue
        count += 1
        value = row[j]
        if filled == size and value <= buffer[size - 1]:
            continue
        position = filled if filled < size else size - 1
        while position > 0 and buffer[position - 1] < value:
            buffer[position] = buffer[position - 1]
            position -= 1
        buffer[position] = value
        if filled < size:
            filled += 1
    return filled, count


@njit(cache=True, inline="always")
def _sparsemax_tau(values, count: int) -> tuple[float, int]:
    """τ and support size from values[:count] sorted descending (support is a prefix)."""
    total = 0.0
    support, support_total = 0, 0.0
    for rank in range(count):
        total += values[rank]
        if 1.0 + (rank + 1) * values[rank] > total:
            support, support_total = rank + 1, total
        else:
            break
    return (support_total - 1.0) / support, support


@njit(cache=True, inline="always")
def _entmax15_tau(values, count: int) -> tuple[float, int]:
    """τ (on z/2) and support size from values[:count] (scores z) sorted descending."""
    total, total_sq = 0.0, 0.0
    support = 0
    for rank in range(count):
        x = 0.5 * values[rank]
        total += x
        total_sq += x * x
        rho = rank + 1
        mean = total / rho
        spread = rho * (total_sq / rho - mean * mean)
        delta = (1.0 - spread) / rho
        tau = mean - math.sqrt(max(delta, 0.0))
        if tau <= x:
            support = rho
    # τ at the support size, recomputed from the prefix sums of the support.
    total, total_sq = 0.0, 0.0
    for rank in range(support):
        x = 0.5 * values[rank]
        total += x
        total_sq += x * x
    mean = total / support
    delta = (1.0 - support * (total_sq / support - mean * mean)) / support
    return mean - math.sqrt(max(delta, 0.0)), support


@njit(cache=True, inline="always")
def _row(row, attend, out, which: int, buffer, scratch) -> None:
    filled, count = _largest(row, attend, buffer)
    if count == 0:  # nothing to attend to: a row of zeros
        out[:] = 0.0
        return
    if which == SPARSEMAX:
        tau, support = _sparsemax_tau(buffer, filled)
    else:
        tau, support = _entmax15_tau(buffer, filled)
    if support == filled and filled < count:  # the support may run past the buffer: sort all
        kept = 0
        for j in range(row.shape[0]):
            if attend[j]:
                scratch[kept] = row[j]
                kept += 1
        ascending = np.sort(scratch[:count])
        for i in range(count):
            scratch[i] = ascending[count - 1 - i]
        if which == SPARSEMAX:
            tau, support = _sparsemax_tau(scratch, count)
        else:
            tau, support = _entmax15_tau(scratch, count)
    for j in range(row.shape[0]):
        if not attend[j]:
            out[j] = 0.0
        elif which == SPARSEMAX:
            out[j] = max(row[j] - tau, 0.0)
        else:
            shifted = max(0.5 * row[j] - tau, 0.0)
            out[j] = shifted * shifted


@njit(cache=True, parallel=True)
def _rows_parallel(scores, attend, out, which):
    rows, n = scores.shape
    chunks = (rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    for c in prange(chunks):
        buffer = np.empty(min(BUFFER, n), dtype=np.float64)
        scratch = np.empty(n, dtype=np.float64)
        for r in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            _row(scores[r], attend[r], out[r], which, buffer, scratch)


@njit(cache=True)
def _rows_serial(scores, attend, out, which):
    n = scores.shape[1]
    buffer = np.empty(min(BUFFER, n), dtype=np.float64)
    scratch = np.empty(n, dtype=np.float64)
    for r in range(scores.shape[0]):
        _row(scores[r], attend[r], out[r], which, buffer, scratch)


def sparse_map_rows(scores: np.ndarray, attend: np.ndarray, which: int) -> np.ndarray:
    """sparsemax (which=SPARSEMAX) or 1.5-entmax (ENTMAX15) of each row of `scores` (R, n) over
    the keys where `attend` (R, n) is True; zeros elsewhere. Returns a new array of its dtype."""
    out = np.empty_like(scores)
    kernel = _rows_parallel if wants_parallel(scores.size, PARALLEL_MIN_SCORES) else _rows_serial
    kernel(scores, attend, out, which)
    return out
