"""Transformer and MLP blocks over image tokens `(B, N, C)`, for the kit's ViT, PVT and LIT models.

`PatchSelfAttention` runs `F.scaled_dot_product_attention` by default and has an eager path that
computes the softmax itself and stores the weights in `self.last_attention` (the module contract
of `attnkit.capture`): switch it on for a model with `keep_attention_weights(model)`.

Blocks are pre-LN, as in ViT/DeiT/PVT and the LIT repository (ziplab/LIT, `blocks.py`):

    TransformerBlock:  x ← x + MSA(LN(x));  x ← x + MLP(LN(x))
    MLPBlock:          x ← x + MLP(LN(x))      (no token mixing: LIT's stages 1–2)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn.functional as F
from torch import Tensor, nn


class PatchSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) over tokens `(B, N, C)`.

    softmax(q kᵀ / √d) v per head, d = C / heads, then an output projection. With
    `keep_weights` True (see `keep_attention_weights`) the forward computes the `(B, H, N, N)`
    weights explicitly and stores them in `last_attention`; otherwise it calls
    `F.scaled_dot_product_attention` and stores nothing.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}.")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.keep_weights = False
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, N, d)
        if self.keep_weights:
            scores = q @ k.transpose(-2, -1) * (dim // self.heads) ** -0.5  # (B, H, N, N)
            weights = scores.softmax(dim=-1)
            self.last_attention = weights
            mixed = weights @ v  # (B, H, N, d)
        else:
            mixed = F.scaled_dot_product_attention(q, k, v)
        return self.proj(mixed.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Sequential):
    """Linear → GELU → Linear, hidden size `ratio * dim`."""

    def __init__(self, dim: int, ratio: float) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    """Pre-LN self-attention block `(B, N, C) -> (B, N, C)`."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = PatchSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MLPBlock(nn.Module):
    """Pre-LN MLP block without token mixing `(B, N, C) -> (B, N, C)` (LIT stages 1–2)."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mlp(self.norm(x))


@contextmanager
def keep_attention_weights(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every `PatchSelfAttention` of `model` takes its eager path and stores
    its weights in `last_attention` (so `attnkit.capture(model, x)` finds them)."""
    modules = [m for m in model.modules() if isinstance(m, PatchSelfAttention)]
    before = [m.keep_weights for m in modules]
    for module in modules:
        module.keep_weights = True
    try:
        yield model
    finally:
        for module, kept in zip(modules, before, strict=True):
            module.keep_weights = kept
