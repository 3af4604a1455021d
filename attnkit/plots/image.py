"""A patch map over its image: the figure vit-explain and Chefer et al. draw for ViTs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnkit.plots.figures import figure_with_axes, finish
from attnkit.plots.inputs import to_numpy

INTERPOLATIONS = ("bilinear", "nearest")


def _as_image(image: Any) -> np.ndarray:
    """`(H, W)`, `(H, W, C)` or channel-first `(C, H, W)` (C = 1, 3, 4) -> `(H, W)` or `(H, W, C)`."""
    array = to_numpy(image).astype(float)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first (a torch image) -> channel-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"image must be (H, W), (H, W, 3|4) or (3|4, H, W), got shape {array.shape}."
        )
    low, high = array.min(), array.max()
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def upsample_map(scores: Any, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """A `(h, w)` patch map resized to the image's `(H, W)` (pixel-centre aligned)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
    grid = torch.as_tensor(to_numpy(scores), dtype=torch.float64)
    if grid.dim() != 2:
        raise ValueError(
            f"scores must be one (rows, columns) patch map, got shape {tuple(grid.shape)}; "
            "reshape token scores with attnkit.vision.patch_map(scores, grid, num_special)."
        )
    options = {"align_corners": False} if interpolation == "bilinear" else {}
    resized = F.interpolate(grid[None, None], size=size, mode=interpolation, **options)
    return resized[0, 0].numpy()


def image_overlay(
    image: Any,
    scores: Any,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    interpolation: str = "bilinear",
    title: str | None = None,
    colorbar: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    ax: Axes | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Draw `scores` (a `(h, w)` patch map) upsampled onto `image`; return the figure.

    Args:
        image: `(H, W)`, `(H, W, 3)` or a torch-style `(3, H, W)` image; rescaled to [0, 1].
        scores: `(h, w)` map over the patch grid (any h, w; need not be square or divide H, W),
            e.g. `attnkit.vision.cls_patch_map(attnkit.rollout(attn), grid, num_special=1)[0]`.
        alpha: opacity of the map over the image.
        cmap: matplotlib colour map for the scores.
        interpolation: "bilinear" (smooth, as vit-explain's cv2.resize) or "nearest" (patches
            as blocks).
        vmin, vmax: the colour scale's ends (default: the map's range), e.g. a shared scale
            for several panels.
        title, colorbar, ax, save: as in the other attnkit plots.
    """
    picture = _as_image(image)
    size = picture.shape[:2]
    heat = upsample_map(scores, size, interpolation)
    figure, axes = figure_with_axes(1, 1, (3.2, 3.2 * size[0] / size[1]), ax)
    panel = axes[0, 0]
    panel.imshow(picture, cmap="gray" if picture.ndim == 2 else None, interpolation="nearest")
    shown = panel.imshow(
        heat, cmap=cmap, alpha=alpha, interpolation="nearest", vmin=vmin, vmax=vmax
    )
    panel.set_xticks([])
    panel.set_yticks([])
    if title:
        panel.set_title(title, fontsize=9)
    if colorbar:
        figure.colorbar(shown, ax=panel, fraction=0.046, pad=0.02)
    return finish(figure, save)
