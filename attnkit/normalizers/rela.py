"""ReLA: rectified linear attention with a gated RMS norm on its output (Zhang, Titov & Sennrich 2021).

ReLA replaces softmax by a ReLU of the scaled scores and does not normalise the weights, so a
query may attend to nothing at all ("switch off"). The attention output is stabilised instead,
after the heads are combined, by a gated RMS norm. Formulation of the authors' `modules/rela.py`
(bzhangGo/zero, commit 22a9201):

    W = ReLU(Q Kᵀ / √d_h)          masked keys → 0
    O = combine_heads(W · V)       (B, T, H·d_h)
    O = gated_rms_norm(O)          = scale ⊙ O / √(mean(O²) + ε) ⊙ σ(gate ⊙ O)
    O = Linear_o(O)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError
from attnkit.normalizers._checks import masked_keys

# The authors' epsilon (utils/dtype.py: _EPSILON = 1e-8).
RMS_EPS = 1e-8


def rela(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """ReLA weights W = ReLU(z): rectified scores, no normalisation (Zhang et al. 2021).

    Args:
        scores: scaled attention scores z = q kᵀ / √d, e.g. `(B, H, T, S)`.
        dim: the key dimension (kept for the shared interface; ReLU is elementwise).
        mask: boolean, True = attend, broadcastable to `scores`; −inf scores count as masked.

    Returns:
        Non-negative weights shaped like `scores`, exactly 0 where z ≤ 0 and at masked keys.
        Rows do not sum to 1; a row may be all zeros. Follow `W · V` with `RMSNormGate`.
    """
    masked = masked_keys(scores, mask, dim, who="rela")
    if masked is None:
        return torch.relu(scores)
    # The authors zero masked logits before the ReLU; zeroing after it is the same and keeps the
    # gradient at masked keys exactly 0 even for −inf scores.
    return torch.relu(scores).masked_fill(masked, 0.0)


def rela_output_norm(
    values_out: Tensor,
    scale: Tensor | None = None,
    gate: Tensor | None = None,
    eps: float = RMS_EPS,
) -> Tensor:
    """Gated RMS norm of ReLA's attention output: scale ⊙ x / √(mean(x²) + ε) ⊙ σ(gate ⊙ x).

    Args:
        values_out: x = the attention output after combining heads, `(..., hidden)` with
            hidden = heads · d_head (the authors normalise over the full hidden size, not per head).
        scale: `(hidden,)` gain; None means ones.
        gate: `(hidden,)` gate weights; None leaves out the sigmoid gate (plain RMS norm).
        eps: ε inside the square root; it keeps a query that attends to nothing (x = 0) at
            output 0 with finite gradients.

    Returns:
        Tensor shaped like `values_out`.
    """
    hidden = values_out.shape[-1]
    for label, weight in (("scale", scale), ("gate", gate)):
        if weight is not None and weight.shape != (hidden,):
            raise AttentionInputError(
                f"rela_output_norm: {label} must have shape ({hidden},) to match the last "
                f"dimension of values_out {tuple(values_out.shape)}, got {tuple(weight.shape)}. "
                "Combine heads first: (B, H, T, d) -> (B, T, H*d)."
            )
    mean_square = values_out.pow(2).mean(-1, keepdim=True)  # (..., 1)
    normed = values_out * torch.rsqrt(mean_square + eps)
    if scale is not None:
        normed = normed * scale
    if gate is not None:
        # The authors' comment: "adding gating here which slightly improves quality" (ReLA-g).
        normed = normed * torch.sigmoid(gate * values_out)
    return normed


class ReLA(nn.Module):
    """ReLA weights as a module: `ReLA(dim)(scores, mask=None)`; see `rela`.

    Use it in place of softmax and put `RMSNormGate(hidden)` after combining the heads of W · V.
    """

    name = "rela"
    normalized = False  # rows need not sum to 1 and may be all zeros

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return rela(scores, dim=self.dim, mask=mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class RMSNormGate(nn.Module):
    """Gated RMS norm for ReLA's attention output, `(..., hidden)` → `(..., hidden)`.

    Parameters as in the authors' `gated_rms_norm`: `scale` starts at ones; `gate` starts as
    TensorFlow's default initialiser (Glorot uniform) gives a vector of size n, U(±√(3/n)).
    `gated=False` gives a plain RMS norm with gain. See `rela_output_norm`.
    """

    name = "rms_norm_gate"

    def __init__(self, hidden_size: int, eps: float = RMS_EPS, gated: bool = True) -> None:
        super().__init__()
        if hidden_size < 1:
            raise ValueError(f"RMSNormGate: hidden_size must be >= 1, got {hidden_size}.")
        self.hidden_size = hidden_size
        self.eps = eps
        self.gated = gated
        self.scale = nn.Parameter(torch.empty(hidden_size))
        self.gate = nn.Parameter(torch.empty(hidden_size)) if gated else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.scale.fill_(1.0)
            if self.gate is not None:
                bound = math.sqrt(3.0 / self.hidden_size)  # Glorot: √(6 / (fan_in + fan_out))
                self.gate.uniform_(-bound, bound)

    def forward(self, values_out: Tensor) -> Tensor:
        return rela_output_norm(values_out, self.scale, self.gate, self.eps)

    def extra_repr(self) -> str:
        return f"{self.hidden_size}, eps={self.eps}, gated={self.gated}"
