"""Attribution for image models (`inputs = {"pixel_values": (B, C, H, W)}`), one score per patch.

Scores are `(B, P)`, P = (H / p) · (W / p) patches of the model's `config.patch_size` p in
row-major order, so they line up with a ViT's patch tokens (attention positions 1..P after CLS):

    gradient:              sum over the patch's pixels and channels of dy/dx              (signed)
    gradient × input:      sum of dy/dx · x
    integrated gradients:  sum of IG_x from an all-`baseline` image (Sundararajan et al. 2017),
                           captum's `IntegratedGradients` on the pixels
    patch occlusion:       y(x) - y(x with the patch set to `baseline`) (Zeiler & Fergus 2014),
                           the image counterpart of blank-out

y is the explained output of `attnkit.importance.defaults` (the target's probability).
`baseline` 0 is the mean image for inputs normalised by the image processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from captum.attr import IntegratedGradients
from torch import Tensor, nn

from attnkit.importance._common import (
    ImportanceInputError,
    Output,
    Target,
    check_finite,
    check_output,
    evaluation,
    logits_of,
    resolve_target,
    scored_output,
)


def is_image_input(inputs: Any) -> bool:
    return isinstance(inputs, Mapping) and "pixel_values" in inputs and "input_ids" not in inputs


def check_pixels(model: nn.Module, inputs: Mapping[str, Any]) -> tuple[Tensor, dict[str, Any], int]:
    """Checked `(B, C, H, W)` pixels, the other model inputs and the patch size (shared with
    `attnkit.relevance`)."""
    pixels = inputs["pixel_values"]
    rest = {k: v for k, v in inputs.items() if k not in ("pixel_values", "labels")}
    config = getattr(model, "config", None)
    patch = getattr(config, "patch_size", None)
    if not isinstance(pixels, Tensor) or pixels.dim() != 4 or not pixels.is_floating_point():
        shape = tuple(pixels.shape) if isinstance(pixels, Tensor) else type(pixels).__name__
        raise ImportanceInputError(
            f"pixel_values must be a float (batch, channels, height, width) tensor, got {shape}; "
            "use the image processor's output (return_tensors='pt')."
        )
    size = getattr(config, "image_size", None)
    size = (size, size) if isinstance(size, int) else tuple(size) if size else None
    channels = getattr(config, "num_channels", pixels.shape[1])
    if (size is not None and tuple(pixels.shape[-2:]) != size) or pixels.shape[1] != channels:
        raise ImportanceInputError(
            f"the image has shape {tuple(pixels.shape[1:])} (channels, height, width) but "
            f"{type(model).__name__} expects ({channels}, {size[0]}, {size[1]}); resize it with "
            "the model's image processor."
        )
    if isinstance(patch, list | tuple):
        patch = patch[0]
    if not isinstance(patch, int) or pixels.shape[-1] % patch or pixels.shape[-2] % patch:
        raise ImportanceInputError(
            f"cannot split a {tuple(pixels.shape[-2:])} image into patches: "
            f"{type(model).__name__}.config.patch_size is {patch!r}; image attribution needs a "
            "patch model (ViT-like) whose patch size divides the image."
        )
    return pixels, rest, patch


def _per_patch(values: Tensor, patch: int) -> Tensor:
    """`(B, C, H, W)` -> `(B, P)`: sum over channels and each patch's pixels, row-major."""
    B, _, H, W = values.shape
    summed = values.sum(1).reshape(B, H // patch, patch, W // patch, patch)
    return summed.sum((2, 4)).reshape(B, -1)


def _scalar_forward(model: nn.Module, rest: dict[str, Any], output: Output):
    def forward(pixels: Tensor) -> Tensor:
        return scored_output(logits_of(model(pixel_values=pixels, **rest)), output)

    return forward


def _resolved(model: nn.Module, pixels: Tensor, rest: dict, target: Target) -> Tensor:
    with torch.no_grad():
        logits = logits_of(model(pixel_values=pixels, **rest))
    check_finite(logits, "the model's logits")
    return resolve_target(target, logits)


def pixel_gradient(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    output: Output = "prob",
    multiply_by_inputs: bool = False,
) -> Tensor:
    """Gradient (× input) of the explained output w.r.t. the pixels, summed per patch, `(B, P)`."""
    check_output(output)
    pixels, rest, patch = check_pixels(model, inputs)
    with evaluation(model):
        target = _resolved(model, pixels, rest, target)
        x = pixels.detach().clone().requires_grad_()
        with torch.enable_grad():
            y = _scalar_forward(model, rest, output)(x)  # (B, C)
            (grad,) = torch.autograd.grad(y.gather(1, target[:, None]).sum(), x)
    return _per_patch(grad * pixels if multiply_by_inputs else grad, patch)


def pixel_integrated_gradients(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    baseline: float = 0.0,
    n_steps: int = 50,
    output: Output = "prob",
) -> Tensor:
    """Integrated gradients from an all-`baseline` image, summed per patch, `(B, P)`."""
    check_output(output)
    pixels, rest, patch = check_pixels(model, inputs)
    with evaluation(model):
        target = _resolved(model, pixels, rest, target)
        explainer = IntegratedGradients(_scalar_forward(model, rest, output))
        with torch.enable_grad():
            attributions = explainer.attribute(
                pixels, baselines=baseline, target=target, n_steps=n_steps
            )
    return _per_patch(attributions.detach(), patch)


@torch.no_grad()
def patch_occlusion(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    baseline: float = 0.0,
    output: Output = "prob",
) -> Tensor:
    """y(x) - y(x with one patch set to `baseline`) for every patch, `(B, P)`."""
    check_output(output)
    pixels, rest, patch = check_pixels(model, inputs)
    B, _, H, W = pixels.shape
    forward = _scalar_forward(model, rest, output)
    with evaluation(model):
        target = _resolved(model, pixels, rest, target)
        original = forward(pixels).gather(1, target[:, None])[:, 0]  # (B,)
        scores = []
        for top in range(0, H, patch):
            for left in range(0, W, patch):
                occluded = pixels.clone()
                occluded[:, :, top : top + patch, left : left + patch] = baseline
                scores.append(original - forward(occluded).gather(1, target[:, None])[:, 0])
    return torch.stack(scores, dim=1)  # (B, P)
