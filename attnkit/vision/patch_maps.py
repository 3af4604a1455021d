"""Token scores on the patch grid, for overlaying on an image.

`patch_map` reshapes per-token scores `(..., T)` to `(..., h, w)`, dropping the first
`num_special` tokens; `cls_patch_map` first takes one query's row of `(..., T, T)` maps — the
CLS row of a rollout or flow (Abnar & Zuidema 2020) or of one layer's head-averaged attention,
the maps jacobgil/vit-explain overlays on images. Patch tokens are in row-major order.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from attnkit.attentions import AttentionInputError
from attnkit.vision._grid import check_grid


def patch_map(scores: Tensor, grid: tuple[int, int], num_special: int = 0) -> Tensor:
    """Scores `(..., T)` for every token -> `(..., h, w)` for the patches.

    Args:
        scores: per-token scores, T = num_special + h * w (e.g. a rollout row).
        grid: `(h, w)` patch grid.
        num_special: leading tokens to drop (CLS, distillation, registers).
    """
    scores = torch.as_tensor(scores)
    if scores.dim() == 0:
        raise AttentionInputError("patch_map needs per-token scores (..., T), got a scalar.")
    rows, cols = check_grid(tuple(grid), num_special, scores.shape[-1])
    return scores[..., num_special:].reshape(*scores.shape[:-1], rows, cols)


def cls_patch_map(
    matrices: Tensor, grid: tuple[int, int], num_special: int = 1, query: int = 0
) -> Tensor:
    """Row `query` of token-to-token maps `(..., T, T)` -> `(..., h, w)` over the patches.

    Args:
        matrices: e.g. `attnkit.rollout(...)` `(B, T, T)`, `attnkit.flow(...)`, or one layer's
            attention `(B, H, T, T)`; rows are queries.
        grid: `(h, w)` patch grid.
        num_special: leading special tokens (dropped from the keys).
        query: the row to map; 0 is CLS in ViT and DeiT.
    """
    matrices = torch.as_tensor(matrices)
    if matrices.dim() < 2 or matrices.shape[-1] != matrices.shape[-2]:
        raise AttentionInputError(
            f"cls_patch_map needs square token-to-token maps (..., T, T), got shape "
            f"{tuple(matrices.shape)}; for per-token scores (..., T) use patch_map."
        )
    tokens = matrices.shape[-1]
    if not isinstance(query, Integral) or not -tokens <= query < tokens:
        raise AttentionInputError(f"query must be a token index in [0, {tokens}), got {query!r}.")
    return patch_map(matrices[..., query, :], grid, num_special)
