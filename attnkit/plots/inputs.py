"""Turn the inputs the plots accept into one example's arrays over real tokens only.

Accepted: an `Attentions` (pick `example`), or an array / tensor shaped `(L, B, H, T, S)`
(pick `example`), `(L, T, S)` for one example; row plots also take `(L, T)`. A 4-D array is
ambiguous -- rollout gives `(L, B, T, T)`, one example's weights are `(L, H, T, S)` -- so its
dimensions are named with `dims=` ("LHTS", "LBTS" or "BHTS"); without it the plot refuses it
(`AttentionInputError`) rather than guess.
Token labels come from the `Attentions` or `tokens=`; `mask=` (`(T,)`, True = real token)
drops padding from arrays. Labels may list all `T` positions or only the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attnkit.attentions import AttentionInputError, Attentions

DIMS_4D = ("LHTS", "LBTS", "BHTS")


def four_dims(maps: np.ndarray, dims: str | None, example: int) -> np.ndarray:
    """A 4-D array named by `dims` as `(L, H, T, S)` of one example."""
    if dims is None:
        raise AttentionInputError(
            f"a 4-D array of shape {maps.shape} is ambiguous: rollout gives (L, B, T, T), one "
            "example's attention is (L, H, T, S). Pass dims='LHTS', dims='LBTS' (e.g. rollout, "
            "with example=) or dims='BHTS' (one layer), or an Attentions, to say which."
        )
    if dims not in DIMS_4D:
        raise AttentionInputError(
            f"dims={dims!r} does not name a 4-D array; use one of {', '.join(map(repr, DIMS_4D))}."
        )
    if dims == "LBTS":
        return maps[:, example][:, None]  # (L, 1, T, S)
    if dims == "BHTS":
        return maps[example][None]  # (1, H, T, S)
    return maps


def to_numpy(values: Any) -> np.ndarray:
    """A float numpy copy of a tensor or array-like (detached, on the CPU)."""
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float32).numpy()
    return np.asarray(values, dtype=np.float32)


def _keep_mask(mask: Any | None, length: int) -> np.ndarray:
    """Boolean `(T,)` of positions to plot; all True without a mask."""
    if mask is None:
        return np.ones(length, dtype=bool)
    keep = to_numpy(mask).astype(bool).reshape(-1)
    if keep.shape != (length,):
        raise AttentionInputError(
            f"mask must have one entry per token ({length}), got shape {keep.shape}; pass the "
            "mask of the plotted example, e.g. attention_mask[example]."
        )
    if not keep.any():
        raise AttentionInputError("mask has no real tokens; nothing to plot.")
    return keep


def real_labels(tokens: Sequence[str] | None, keep: np.ndarray) -> list[str]:
    """Labels of the kept positions; `tokens` lists every position or only the kept ones."""
    if tokens is None:
        return [str(position) for position in np.flatnonzero(keep)]
    tokens = [str(token) for token in tokens]
    if len(tokens) == keep.size:
        return [token for token, real in zip(tokens, keep, strict=True) if real]
    if len(tokens) == int(keep.sum()):
        return tokens
    raise AttentionInputError(
        f"got {len(tokens)} tokens for {keep.size} positions ({int(keep.sum())} real); pass one "
        "token per position (padding included) or one per real token."
    )


def real_positions(attn: Attentions | Any, example: int, mask: Any | None) -> np.ndarray | None:
    """`(T,)` True for the plotted positions of one example, or None when nothing is dropped."""
    if isinstance(attn, Attentions):
        return to_numpy(attn.mask[example]).astype(bool)
    return None if mask is None else to_numpy(mask).astype(bool).reshape(-1)


@dataclass
class ExampleMaps:
    """One example's attention over real tokens.

    Attributes:
        maps: `(L, H, T, S)` weights, padding rows and columns removed.
        query_labels: `T` labels of the rows.
        key_labels: `S` labels of the columns.
    """

    maps: np.ndarray
    query_labels: list[str]
    key_labels: list[str]


def example_maps(
    attn: Attentions | Any,
    example: int = 0,
    tokens: Sequence[str] | None = None,
    mask: Any | None = None,
    key_tokens: Sequence[str] | None = None,
    dims: str | None = None,
) -> ExampleMaps:
    """`(L, H, T, S)` maps of one example over real tokens, with row and column labels.

    For an `Attentions`, `tokens` overrides its tokens and `mask` must be None. A 3-D array is
    `(L, T, S)` (e.g. head-averaged, or one example's rollout) and becomes one head; a 4-D
    array needs `dims` (see the module docstring).
    """
    key_mask = None
    if isinstance(attn, Attentions):
        if mask is not None:
            raise AttentionInputError("the Attentions carries its mask; do not also pass mask=.")
        maps = to_numpy(attn.weights[:, example])  # (L, H, T, S)
        mask = attn.mask[example]
        key_mask = attn.key_mask[example] if attn.key_mask is not None else None
        if tokens is None and attn.tokens is not None:
            tokens = attn.tokens[example]
    else:
        maps = to_numpy(attn)
        if maps.ndim == 5:
            maps = maps[:, example]  # (L, H, T, S)
        elif maps.ndim == 4:
            maps = four_dims(maps, dims, example)  # (L, H, T, S)
        elif maps.ndim == 3:
            maps = maps[:, None]  # (L, 1, T, S)
        else:
            raise AttentionInputError(
                f"attention to plot must be an Attentions or shaped (L, B, H, T, S), "
                f"(L, H, T, S) with dims='LHTS' or (L, T, S); got shape {maps.shape}."
            )
    queries, keys = maps.shape[-2:]
    keep_rows = _keep_mask(mask, queries)
    if key_mask is None:
        key_mask = mask if queries == keys else None
    keep_cols = _keep_mask(key_mask, keys)
    return ExampleMaps(
        maps=maps[:, :, keep_rows][:, :, :, keep_cols],
        query_labels=real_labels(tokens, keep_rows),
        key_labels=real_labels(key_tokens if queries != keys else tokens, keep_cols),
    )


def layer_matrices(
    attn: Attentions | Any,
    example: int = 0,
    tokens: Sequence[str] | None = None,
    mask: Any | None = None,
    dims: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Head-averaged `(L, T, T)` matrices of one example over real tokens, and token labels."""
    selected = example_maps(attn, example, tokens, mask, dims=dims)
    if selected.maps.shape[-1] != selected.maps.shape[-2]:
        raise AttentionInputError(
            f"expected square self-attention maps, got {selected.maps.shape[-2:]}; pass encoder "
            "or decoder self-attention, not cross-attention."
        )
    return selected.maps.mean(axis=1), selected.query_labels


def layer_rows(
    attn: Attentions | Any,
    row: int = 0,
    example: int = 0,
    tokens: Sequence[str] | None = None,
    mask: Any | None = None,
    dims: str | None = None,
) -> tuple[np.ndarray, list[str], str | None]:
    """Row `row` (a real-token position) of every layer, `(L, T)`, the token labels and the
    row's token (None when given rows).

    Takes everything `layer_matrices` does, or an `(L, T)` array that already holds the rows.
    """
    if not isinstance(attn, Attentions) and to_numpy(attn).ndim == 2:
        rows = to_numpy(attn)  # (L, T)
        keep = _keep_mask(mask, rows.shape[1])
        return rows[:, keep], real_labels(tokens, keep), None
    matrices, labels = layer_matrices(attn, example, tokens, mask, dims)  # (L, T, T)
    if not -len(labels) <= row < len(labels):
        raise AttentionInputError(
            f"row {row} is out of range for {len(labels)} real tokens {labels}."
        )
    return matrices[:, row], labels, labels[row]
