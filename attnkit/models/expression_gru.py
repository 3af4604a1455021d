"""The 2021 EEV challenge entry's model: a GRU over per-second audio and image features.

The entry's abstract: a GRU over audio and image features predicts one sparse signal at 1 Hz,
and the dense prediction is its linear interpolation, "robust to the prediction fluctuation".
`ExpressionGRU` covers both that and the dense alternative with the same recurrent core:

    h_t = GRU([audio_t ; image_t], h_{t−1})                   # one step per second
    y_t = W h_t + b                                           # (K · steps_per_second)

With `steps_per_second=1` it predicts the 1 Hz signal, which `interpolate_linear` turns into the
dense rate; with `steps_per_second=rate` the same GRU predicts every dense step itself.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ExpressionGRU(nn.Module):
    """Features `(B, S, d)` per second -> expressions `(B, S · steps_per_second, K)`."""

    def __init__(self, d_in: int, hidden: int, expressions: int, steps_per_second: int = 1) -> None:
        super().__init__()
        self.steps = steps_per_second
        self.expressions = expressions
        self.gru = nn.GRU(d_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, expressions * steps_per_second)

    def forward(self, features: Tensor) -> Tensor:
        states, _ = self.gru(features)  # (B, S, hidden)
        out = self.head(states)  # (B, S, K · steps)
        batch, seconds, _ = out.shape
        return out.reshape(batch, seconds * self.steps, self.expressions)


def interpolate_linear(sparse: Tensor, rate: int) -> Tensor:
    """`(B, S, K)` values at t = 0, 1, …, S − 1 s -> `(B, S · rate, K)` at t = i / rate s, by linear
    interpolation between neighbouring seconds (the last second's value is held to the end)."""
    if rate < 1:
        raise ValueError(f"rate must be a positive number of steps per second, got {rate}.")
    following = torch.cat([sparse[:, 1:], sparse[:, -1:]], dim=1)  # value at the next second
    fraction = torch.arange(rate, dtype=sparse.dtype, device=sparse.device) / rate  # (rate,)
    start, end = sparse[:, :, None], following[:, :, None]  # (B, S, 1, K)
    dense = start + (end - start) * fraction[None, None, :, None]  # (B, S, rate, K)
    return dense.reshape(sparse.shape[0], -1, sparse.shape[-1])
