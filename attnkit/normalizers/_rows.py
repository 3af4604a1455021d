"""The torch side of the fused CPU kernels: lay the scores out as contiguous numpy rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


def map_rows(
    kernel: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scores: Tensor,
    attend: Tensor | None,
    dim: int,
) -> Tensor:
    """Apply a row kernel along `dim` of CPU `scores`; returns a new tensor shaped like them.

    `kernel((R, n) scores, (R, n) bool attendable) -> (R, n)` sees every row along `dim`;
    `attend` broadcasts to `scores` (None: every key). For the usual dim=-1 layout of a
    contiguous tensor the scores are passed without a copy.
    """
    rows = scores.detach().movedim(dim, -1).contiguous()  # (..., n)
    n = rows.shape[-1]
    if attend is None:
        keys = torch.ones(rows.shape, dtype=torch.bool)
    else:
        keys = attend.expand(scores.shape).movedim(dim, -1).contiguous()
    out = kernel(rows.reshape(-1, n).numpy(), keys.reshape(-1, n).numpy())  # (R, n)
    return torch.from_numpy(out).reshape(rows.shape).movedim(-1, dim)


def wants_parallel(size: int, min_size: int) -> bool:
    """Whether a fused kernel should spread `size` scores over numba threads: only for inputs of
    at least `min_size` scores, and only when torch itself may use more than one thread. A run
    pinned to one thread (`torch.set_num_threads(1)`, as the notebooks and benchmarks do on a
    shared machine) gets the serial loop: numba's own pool would otherwise take every core and,
    on a loaded machine, wait for the slowest of them at each call."""
    return size >= min_size and torch.get_num_threads() > 1
