"""Mean attention distance (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Fig. 7).

For a layer and a head, the distance a query patch q attends over is the attention-weighted
mean of its distances to the key patches, in pixels:

    d_q = Σ_k α̃_qk ‖pos_q − pos_k‖₂ · p,     α̃_qk = α_qk / Σ_k' α_qk'     (k, k' patch tokens)

and the mean attention distance is the mean of d_q over query patches and over the batch:

    MAD[l, h] = mean_{b, q} d_q                                               # (L, H)

`pos` is a patch's (row, column) on the grid and `p` the patch side in pixels, so the distance
is measured between patch centres. The first `num_special` tokens (CLS, distillation, registers)
are neither queries nor keys; the weights a patch query gives to them are dropped and its row is
renormalised over the patches. The ViT paper plots this per head against depth (Fig. 7, right):
"analogous to receptive field size in CNNs". Its exact averaging code is not published with the
paper; this is the definition in attnkit's issue 16, which the notebook `pan2022_lit` follows.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor

from attnkit.attentions import AttentionInputError, Attentions, as_weights_and_mask
from attnkit.vision._grid import check_grid


def patch_distances(grid: tuple[int, int], patch_size: float = 1.0) -> Tensor:
    """`(N, N)` Euclidean distances between patch centres in pixels, N = rows * columns,
    patches in row-major order."""
    rows, cols = grid
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    positions = torch.stack([r.flatten(), c.flatten()], dim=-1).double()  # (N, 2)
    return torch.cdist(positions, positions) * float(patch_size)  # (N, N)


def mean_attention_distance(
    attentions: Attentions | Tensor,
    grid: tuple[int, int],
    patch_size: float = 1.0,
    num_special: int = 0,
) -> Tensor:
    """Per layer and head, the mean pixel distance patch queries attend over.

    Args:
        attentions: `Attentions` or weights `(L, B, H, T, T)` with T = num_special + h * w.
        grid: `(h, w)`, the patch grid (rows, columns).
        patch_size: a patch's side in pixels (the grid step); 1 gives distances in patches.
        num_special: tokens before the patches (CLS, distillation, registers), excluded.

    Returns:
        `(L, H)` float tensor (the weights' dtype): MAD[l, h] = mean over the batch and patch
        queries of Σ_k α̃_qk ‖pos_q − pos_k‖ · patch_size (see the module docstring).

    Raises:
        AttentionInputError: a grid that does not match the tokens, padding in the mask
            (images have none), a bad patch size, or a patch query that gives no weight at
            all to patches (its renormalised row is undefined).
    """
    weights, mask = as_weights_and_mask(attentions)
    if not bool(mask.all()):
        raise AttentionInputError(
            "mean_attention_distance expects image attention without padding, but the mask "
            "marks padded tokens. Drop padded examples, or pass the weights of real images only."
        )
    if isinstance(patch_size, bool) or not isinstance(patch_size, Real) or not patch_size > 0:
        raise AttentionInputError(
            f"patch_size must be a positive number (pixels per patch side), got {patch_size!r}."
        )
    tokens = weights.shape[-1]
    rows, cols = check_grid(tuple(grid), num_special, tokens)
    patches = weights[..., num_special:, num_special:]  # (L, B, H, N, N)
    mass = patches.sum(-1, keepdim=True)  # (L, B, H, N, 1)
    if bool((mass <= 0).any()):
        where = (mass[..., 0] <= 0).nonzero()[0].tolist()
        raise AttentionInputError(
            f"the patch query at (layer, batch, head, patch) = {where} gives no weight to any "
            "patch (all of it goes to special tokens), so its distance is undefined. Check "
            "num_special, or leave such layers out."
        )
    distances = patch_distances((rows, cols), patch_size).to(weights)  # (N, N)
    per_query = (patches / mass * distances).sum(-1)  # (L, B, H, N)
    return per_query.mean(dim=(1, 3))  # (L, H)
