"""Rollout of any per-layer token-to-token contribution (Abnar & Zuidema 2020's aggregation).

ALTI, GlobEnc and value zeroing measure how much each layer-input token makes up each layer-output
token; their papers aggregate the layers as attention rollout does, by multiplying the per-layer
matrices from the bottom up. `contribution_rollout` runs `attnkit.rollout` on them (as a single
"head"), so every convention of `rollout` applies unchanged:

    Ĉ_l = rownorm((1 − residual) C_l + residual I)      R_l = Ĉ_l R_{l−1}        # (B, T, T)

The defaults are `rollout`'s (residual 0.5, as Abnar & Zuidema for raw attention). Methods whose
contributions already contain the residual stream (ALTI, GlobEnc, value zeroing) are aggregated
with `residual=0.0`, as their papers do.
"""

from __future__ import annotations

from torch import Tensor

from attnkit.attentions import AttentionInputError
from attnkit.propagate.rollout import rollout


def contribution_rollout(
    contributions: Tensor,
    mask: Tensor | None = None,
    *,
    residual: float = 0.5,
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    renormalize: bool = True,
) -> Tensor:
    """Rollout of per-layer contributions (L, B, T, T) -> (L, B, T, T).

    Args:
        contributions: non-negative (L, B, T, T), row i of [l, b] is what each token of layer
            l's input contributes to token i of its output.
        mask: (B, T) padding mask, 1 = real token (default: all real).
        residual, discard_ratio, start_layer, renormalize: as in `attnkit.rollout`.

    Returns:
        (L, B, T, T) with R[l] = Ĉ_l … Ĉ_start, zero at padding.
    """
    if not isinstance(contributions, Tensor) or contributions.dim() != 4:
        shape = tuple(contributions.shape) if isinstance(contributions, Tensor) else None
        raise AttentionInputError(
            f"contributions must be a (layers, batch, tokens, tokens) tensor, got "
            f"{shape or type(contributions).__name__}; a single layer needs .unsqueeze(0)."
        )
    return rollout(
        contributions.unsqueeze(2),  # (L, B, 1, T, T): one "head"
        residual=residual,
        head_fusion="mean",
        discard_ratio=discard_ratio,
        start_layer=start_layer,
        renormalize=renormalize,
        mask=mask,
    )
