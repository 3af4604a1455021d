"""Jain & Wallace's (2019) gradient importance, with the attention held fixed.

    g[b, t] = | Σ_d ∂ŷ/∂e_{t,d} · e_{t,d} |        # (B, T), 0 at padding, α detached

J&W (`successar/AttentionExplanation`, `batch_data.detach = True`, key `XxE[X]`) first compute
the model's own attention, then back-propagate ŷ with that attention imposed as a constant, so
the score measures how the token reaches the output through the encoder alone. ŷ is the
predicted class's probability; for two classes its gradient has the magnitude of ∂σ(z)/∂e,
J&W's. Not normalised (J&W divide by the sum; Kendall τ only needs the ranking).

The model must accept `attention=` (imposed weights), as `attnkit.models.AdditiveClassifier`
does. Device: inputs are moved to the model's device; scores come back on the inputs' device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.importance.gradient import gradient_x_input
from attnkit.importance.leave_one_out import model_device


def jw_gradient(model: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """J&W's gradient × input score with the model's attention detached, `(B, T)` float64."""
    home, device = input_ids.device, model_device(model)
    ids, mask = input_ids.to(device), attention_mask.to(device)
    with torch.no_grad():
        own = model(input_ids=ids, attention_mask=mask).attention.detach()  # (B, T)
    inputs = {"input_ids": ids, "attention_mask": mask, "attention": own}
    return gradient_x_input(model, inputs, output="prob").double().to(home)
