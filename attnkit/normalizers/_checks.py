"""Input checks shared by every normaliser: scores, the boolean mask, and which keys are attendable."""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from attnkit.attentions import AttentionInputError


def attendable(scores: Tensor, mask: Tensor | None, dim: int, *, who: str) -> Tensor:
    """Validate `scores` and `mask` and return the boolean "may attend" tensor shaped like `scores`.

    A key is attendable when `mask` is True there (or no mask was given) and its score is not −inf:
    a −inf score is how many models spell "masked", and treating it as masked keeps fully −inf
    rows at zeros instead of NaN. The result may be a broadcast view of the mask (read it, do
    not write to it).

    Raises:
        AttentionInputError: scores not a floating tensor, no key axis, NaN or +inf scores, a mask
            that is not boolean/integer, on another device, or not broadcastable to `scores`.
    """
    masked = masked_keys(scores, mask, dim, who=who)
    if masked is None:
        return torch.ones((1,) * scores.dim(), dtype=torch.bool, device=scores.device).expand(
            scores.shape
        )
    return (~masked).expand(scores.shape)


def masked_keys(scores: Tensor, mask: Tensor | None, dim: int, *, who: str) -> Tensor | None:
    """Validate like `attendable`; return where keys are NOT attendable, or None if nowhere.

    The result broadcasts to `scores` but keeps the mask's own (often much smaller) shape when
    the scores have no −inf, so masking costs one pass over the scores instead of three.
    """
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        kind = scores.dtype if isinstance(scores, Tensor) else type(scores).__name__
        raise AttentionInputError(
            f"{who}: scores must be a floating-point torch.Tensor, got {kind}. "
            "Compute them as q @ k.transpose(-2, -1) * d**-0.5."
        )
    if scores.dim() == 0:
        raise AttentionInputError(f"{who}: scores must have a key dimension, got a 0-d tensor.")
    if (
        isinstance(dim, bool)
        or not isinstance(dim, Integral)
        or not -scores.dim() <= dim < scores.dim()
    ):
        raise AttentionInputError(
            f"{who}: dim={dim!r} is not a dimension of the scores (shape "
            f"{tuple(scores.shape)}); pass the key dimension, e.g. dim=-1."
        )
    if scores.shape[dim] == 0:
        raise AttentionInputError(
            f"{who}: scores have no keys along dim={dim} (shape {tuple(scores.shape)}); "
            "every row needs at least one key position (mask it instead of dropping it)."
        )
    # One reduction first: any NaN or +inf makes the sum NaN or +inf (−inf alone gives −inf,
    # which is allowed), and a sum is much cheaper than two elementwise masks. Only a suspicious
    # sum (which may also be a finite overflow) pays for the exact scan.
    total = scores.sum()
    # A finite sum also rules out −inf, so the mask alone says what is attendable.
    all_finite = bool(torch.isfinite(total))
    bad = None
    if not all_finite and (torch.isnan(total) or torch.isposinf(total)):
        bad = torch.isnan(scores) | torch.isposinf(scores)
    if bad is not None and bad.any():
        first = bad.nonzero()[0].tolist()
        raise AttentionInputError(
            f"{who}: scores contain NaN or +inf (first at index {first} of shape "
            f"{tuple(scores.shape)}). Check the model's forward pass; masked keys go in `mask` "
            "(or as −inf scores), not as NaN."
        )
    if mask is None:
        return None if all_finite else scores == float("-inf")
    if not isinstance(mask, Tensor):
        raise AttentionInputError(
            f"{who}: mask must be a boolean torch.Tensor (True = attend), got {type(mask).__name__}."
        )
    if mask.is_floating_point() or mask.is_complex():
        raise AttentionInputError(
            f"{who}: mask must be boolean (True = attend), got {mask.dtype}. A float mask is "
            "ambiguous (0/1 keep-mask or additive 0/−inf?): pass `mask.bool()` for a keep-mask, "
            "or add an additive mask to the scores yourself."
        )
    if mask.device != scores.device:
        raise AttentionInputError(
            f"{who}: mask is on {mask.device} but scores are on {scores.device}; "
            "move the mask with `mask.to(scores.device)`."
        )
    try:
        broadcast = torch.broadcast_shapes(mask.shape, scores.shape)
    except RuntimeError:
        broadcast = None
    if broadcast != scores.shape:
        raise AttentionInputError(
            f"{who}: mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores.shape)}. Give it size 1 (or the scores' size) in every dimension, "
            "aligned from the right; e.g. a (batch, key) padding mask for (batch, heads, query, "
            "key) scores is mask[:, None, None, :]."
        )
    if all_finite:
        return ~mask.bool()
    return (scores == float("-inf")) | ~mask.bool()
