"""Attention normalisers with one interface, masks respected: softmax, sparsemax, 1.5-entmax, ReLA, top-k.

Each is a function `f(scores, dim=-1, mask=None, ...)` and an `nn.Module` whose forward is
`(scores, mask=None)`. `mask` is boolean, True = attend, broadcastable to `scores`; a −inf score
counts as masked. Masked keys get exactly 0 and a row with no attendable key is all zeros, with
finite gradients (no NaN in forward or backward).

| name        | map                                                     | rows sum to 1 |
|-------------|---------------------------------------------------------|---------------|
| `softmax`   | exp(z_i) / Σ exp(z_j)                                   | yes           |
| `sparsemax` | argmin_{p ∈ Δ} ‖p − z‖² (Martins & Astudillo 2016)      | yes           |
| `entmax15`  | 1.5-entmax, Tsallis α = 1.5 (Peters et al. 2019)        | yes           |
| `rela`      | ReLU(z), unnormalised (Zhang et al. 2021); `RMSNormGate` after W·V | no |
| `topk`      | softmax over the k largest z (Zhao et al. 2019)         | yes           |

Module classes carry `name` (the registry key) and `normalized` (whether rows sum to 1).
`scaled_dot_product_attention(q, k, v, mask, normalizer)` returns `(out, weights)` for models
that take `normalizer=` and hand their weights to `attnkit.capture`.
"""

from attnkit.normalizers.attention import scaled_dot_product_attention
from attnkit.normalizers.registry import NORMALIZERS, get_normalizer
from attnkit.normalizers.rela import ReLA, RMSNormGate, rela, rela_output_norm
from attnkit.normalizers.softmax import Softmax, softmax
from attnkit.normalizers.sparsemax import Entmax15, Sparsemax, entmax15, sparsemax
from attnkit.normalizers.topk import DEFAULT_K, TopK, topk

__all__ = [
    "DEFAULT_K",
    "NORMALIZERS",
    "Entmax15",
    "RMSNormGate",
    "ReLA",
    "Softmax",
    "Sparsemax",
    "TopK",
    "entmax15",
    "get_normalizer",
    "rela",
    "rela_output_norm",
    "scaled_dot_product_attention",
    "softmax",
    "sparsemax",
    "topk",
]
