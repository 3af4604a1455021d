"""Checks shared by the patch-grid functions: the grid and the number of special tokens."""

from __future__ import annotations

from numbers import Integral

from attnkit.attentions import AttentionInputError


def check_grid(grid: tuple[int, int], num_special: int, tokens: int) -> tuple[int, int]:
    """Return `(h, w)` after checking that `num_special + h * w == tokens`."""
    if (
        not isinstance(grid, tuple | list)
        or len(grid) != 2
        or not all(isinstance(side, Integral) and side > 0 for side in grid)
    ):
        raise AttentionInputError(
            f"grid must be (rows, columns) of the patch grid as two positive ints, got {grid!r}; "
            "e.g. grid=(14, 14) for a 224-pixel ViT-B/16."
        )
    if not isinstance(num_special, Integral) or num_special < 0:
        raise AttentionInputError(
            f"num_special must be a non-negative int (1 for CLS, 2 for DeiT's CLS + "
            f"distillation tokens, plus any register tokens), got {num_special!r}."
        )
    rows, cols = int(grid[0]), int(grid[1])
    if num_special + rows * cols != tokens:
        raise AttentionInputError(
            f"the attention has {tokens} tokens but num_special + rows * columns = "
            f"{num_special} + {rows} * {cols} = {num_special + rows * cols}. Pass the grid of "
            "the layer's patches (image side / patch size) and the number of tokens that come "
            "before them (CLS, distillation, registers)."
        )
    return rows, cols
