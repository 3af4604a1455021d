"""A fused CPU kernel for top-k softmax: threshold, exponentials and normalisation in one pass.

The torch formulation (topk → threshold → mask → softmax) reads and writes the whole score
tensor five or six times and takes n exponentials per row. Per row this kernel finds the k-th
largest attendable score, then exponentiates only the keys at or above it (k of n) and writes
the row once: fewer passes and far fewer exponentials than softmax itself.

Selection of the threshold t (the k-th largest attendable score):
    k ≤ SMALL_K   a sorted buffer of the k largest seen so far (one pass, k compares at most)
    larger k      the values bucketed by size in one pass, then the one bucket that holds the
                  k-th largest quickselected (two passes over the row, O(n))

Rows are independent; big inputs run them in parallel (numba prange), small ones (a decoding
step) serially, where thread start-up would cost more than the work. The backward pass is
softmax's, p ⊙ (g − ⟨p, g⟩), done by torch (see attnkit.normalizers.topk).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from attnkit.normalizers._rows import wants_parallel

SMALL_K = 16  # up to here a sorted insertion buffer beats copying the row and selecting
PARALLEL_MIN_SCORES = 1 << 16  # fewer scores than this: run rows serially
CHUNK_ROWS = 64  # rows per parallel task
BUCKETS = 64  # value buckets for selecting a large k


@njit(cache=True, inline="always")
def _insert(buffer, filled: int, size: int, value) -> int:
    """Insert `value` into the descending `buffer[:filled]` capped at `size`; new fill count."""
    if filled == size and value <= buffer[size - 1]:
        return filled
    position = filled if filled < size else size - 1
    while position > 0 and buffer[position - 1] < value:
        buffer[position] = buffer[position - 1]
        position -= 1
    buffer[position] = value
    return filled + 1 if filled < size else filled


@njit(cache=True)
def _select_largest(values, count: int, keep: int):
    """The keep-th largest of values[:count], by in-place quickselect (values are reordered).

    Hoare partitioning around a median-of-three pivot, descending, narrowing to the side that
    holds position keep − 1: expected O(count), and no allocation (np.partition copies).
    """
    target = keep - 1
    low, high = 0, count - 1
    while low < high:
        middle = (low + high) // 2
        a, b, c = values[low], values[middle], values[high]
        pivot = max(min(a, b), min(max(a, b), c))  # median of three
        i, j = low, high
        while i <= j:
            while values[i] > pivot:
                i += 1
            while values[j] < pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        # Now values[low..j] ≥ pivot ≥ values[i..high], and values[j+1..i-1] == pivot.
        if target <= j:
            high = j
        elif target >= i:
            low = i
        else:
            return values[target]
    return values[target]


@njit(cache=True, inline="always")
def _bucket_of(value, low: float, scale: float, buckets: int) -> int:
    return min(int((value - low) * scale), buckets - 1)


@njit(cache=True)
def _bucket_select(row, attend, keep: int, low: float, high: float, scratch, counts):
    """The keep-th largest attendable value of `row` in two passes, without sorting the row.

    Pass 1 spreads the values over BUCKETS equal-width buckets between `low` and `high` and
    counts them; the bucket holding the keep-th largest follows from the counts, top down.
    Pass 2 copies that bucket's values (about 1 / BUCKETS of the row) into `scratch`, where a
    quickselect finishes the job.
    """
    if high == low:  # every attendable value is the same
        return high
    buckets = counts.shape[0]
    scale = buckets / (high - low)
    counts[:] = 0
    for j in range(row.shape[0]):
        if attend[j]:
            counts[_bucket_of(row[j], low, scale, buckets)] += 1
    above = 0  # values in buckets above the current one
    bucket = buckets - 1
    while above + counts[bucket] < keep:
        above += counts[bucket]
        bucket -= 1
    kept = 0
    for j in range(row.shape[0]):
        if attend[j] and _bucket_of(row[j], low, scale, buckets) == bucket:
            scratch[kept] = row[j]
            kept += 1
    return _select_largest(scratch, kept, keep - above)


@njit(cache=True, inline="always")
def _row(row, attend, out, k: int, div: float, min_k: int, buffer, scratch, counts) -> None:
    n = row.shape[0]
    if div > 0.0:  # k = ceil(n_keys / div): count the attendable keys first
        n_keys = 0
        for j in range(n):
            if attend[j]:
                n_keys += 1
        keep = min(max(int(math.ceil(n_keys / div)), min_k), n_keys)
    else:
        keep = k
    if keep <= SMALL_K:
        # One pass: buffer[:filled] holds the largest `keep` attendable scores, descending.
        filled = 0
        for j in range(n):
            if attend[j]:
                filled = _insert(buffer, filled, keep, row[j])
        if filled == 0:  # nothing to attend to: a row of zeros
            out[:] = 0.0
            return
        peak, threshold = buffer[0], buffer[filled - 1]
    else:
        # Bucket the attendable scores by value, then select within one bucket: O(n).
        count = 0
        peak, low = -np.inf, np.inf
        for j in range(n):
            if attend[j]:
                count += 1
                peak = max(peak, row[j])
                low = min(low, row[j])
        if count == 0:
            out[:] = 0.0
            return
        keep = min(keep, count)  # a fixed k above the row's number of keys keeps them all
        threshold = _bucket_select(row, attend, keep, low, peak, scratch, counts)
    total = 0.0
    for j in range(n):
        value = row[j]
        if attend[j] and value >= threshold:  # ≥: ties at t are kept, as in the authors' code
            weight = math.exp(value - peak)
            out[j] = weight
            total += weight
        else:
            out[j] = 0.0
    scale = 1.0 / total
    for j in range(n):
        out[j] *= scale


@njit(cache=True, parallel=True)
def _rows_parallel(scores, attend, out, k, div, min_k):
    # Rows in chunks, so each chunk allocates its buffers once.
    rows, n = scores.shape
    chunks = (rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    for c in prange(chunks):
        buffer = np.empty(SMALL_K, dtype=scores.dtype)
        scratch = np.empty(n, dtype=scores.dtype)
        counts = np.empty(BUCKETS, dtype=np.int64)
        for r in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            _row(scores[r], attend[r], out[r], k, div, min_k, buffer, scratch, counts)


@njit(cache=True)
def _rows_serial(scores, attend, out, k, div, min_k):
    buffer = np.empty(SMALL_K, dtype=scores.dtype)
    scratch = np.empty(scores.shape[1], dtype=scores.dtype)
    counts = np.empty(BUCKETS, dtype=np.int64)
    for r in range(scores.shape[0]):
        _row(scores[r], attend[r], out[r], k, div, min_k, buffer, scratch, counts)


def topk_softmax_rows(
    scores: np.ndarray, attend: np.ndarray, k: int | None, div: float | None, min_k: int
) -> np.ndarray:
    """Top-k softmax of each row of `scores` (R, n) over the keys where `attend` (R, n) is True.

    Exactly one of `k` / `div` is set. Returns a new (R, n) array of the same dtype.
    """
    out = np.empty_like(scores)
    kernel = _rows_parallel if wants_parallel(scores.size, PARALLEL_MIN_SCORES) else _rows_serial
    kernel(scores, attend, out, k or 0, float(div or 0.0), min_k)
    return out
