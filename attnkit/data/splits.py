"""Deterministic, seed-driven index partitions and subsamples (no global random state)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

# Share of a training file held out as the dev split when a corpus ships no dev file.
DEV_FRACTION = 0.1


def derive_seed(seed: int, *parts: str) -> int:
    """Mix ``seed`` with labels (e.g. a split name) into a new 63-bit seed.

    Used so that, say, the synthetic train and test sets for one seed are different draws,
    and a hash of strings is stable across processes (unlike ``hash()``).
    """
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def shuffled_indices(n: int, seed: int) -> list[int]:
    """Return ``range(n)`` shuffled by ``random.Random(seed)``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def partition_indices(n: int, fractions: Sequence[float], seed: int) -> list[list[int]]:
    """Split ``range(n)`` into disjoint parts with the given fractions, each part sorted.

    The last part takes the rounding remainder, so the parts always cover every index.
    """
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    order = shuffled_indices(n, seed)
    parts: list[list[int]] = []
    start = 0
    for fraction in fractions[:-1]:
        stop = start + round(fraction * n)
        parts.append(sorted(order[start:stop]))
        start = stop
    parts.append(sorted(order[start:]))
    return parts


def train_dev_indices(
    n: int, seed: int, dev_fraction: float = DEV_FRACTION
) -> dict[str, list[int]]:
    """Split the rows of a training file into ``train`` and ``dev`` (``dev_fraction`` of them)."""
    train, dev = partition_indices(n, [1.0 - dev_fraction, dev_fraction], seed)
    return {"train": train, "dev": dev}


def subsample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """Return ``limit`` of ``range(n)`` chosen by seed, in original order (all when ``limit`` is None)."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return sorted(random.Random(seed).sample(range(n), limit))
