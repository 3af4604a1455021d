"""Tiny pyramid vision transformers: PVT-style with full attention, LIT, and a plain ViT.

One configurable model covers the three (Pan et al. 2022, "Less is More: Pay Less Attention in
Vision Transformers"; Wang et al. 2021, PVT; Dosovitskiy et al. 2021, ViT):

    stage s:  tokens_s = merge_s(map_{s-1}) + pos_s        # (B, N_s, C_s), N_s = h_s · w_s
              blocks: TransformerBlock if attention[s] else MLPBlock
    head:     LN, then the CLS token (cls_token=True) or the mean of the last stage's tokens

Stage 1 embeds `patch_size` × `patch_size` pixel patches (conv + LN); later stages merge 2 × 2
tokens, with PVT's fixed merging or LIT's deformable token merging (DTM). Full self-attention is
used wherever `attention[s]` is True (PVT's own spatial-reduction attention is not: the LIT
paper's ablation starts from PVT with standard MSA). LIT-Ti in the authors' repository (ziplab/LIT,
classification/code_for_lit_ti/lit.py) is `attention=(False, False, True, True)`, DTM merging,
with a CLS token in the last stage; its sizes are dims (64, 128, 320, 512), heads (1, 2, 5, 8),
MLP ratios (8, 8, 4, 4), depths (3, 4, 6, 3) at 224 pixels. Ours are tiny (see the factories).

Attention weights: `stage_attentions(model, images)` captures one `Attentions` per stage with
attention (stages differ in token count, so they cannot share one tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from attnkit.attentions import Attentions
from attnkit.models.token_merging import DeformableTokenMerging, PatchMerging
from attnkit.models.vision_blocks import MLPBlock, TransformerBlock, keep_attention_weights

MERGINGS = ("fixed", "deformable")


@dataclass(frozen=True)
class PyramidConfig:
    """Sizes of a pyramid vision transformer; one entry per stage in the tuples."""

    image_size: int = 32
    in_channels: int = 1
    patch_size: int = 2
    dims: tuple[int, ...] = (8, 16, 32, 64)
    heads: tuple[int, ...] = (1, 2, 4, 4)
    mlp_ratios: tuple[float, ...] = (4, 4, 4, 4)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    attention: tuple[bool, ...] = (True, True, True, True)
    merging: str = "fixed"
    offset_lr_mult: float = 0.01
    cls_token: bool = False
    num_classes: int = 10

    def __post_init__(self) -> None:
        stages = len(self.dims)
        sizes = [self.heads, self.mlp_ratios, self.depths, self.attention]
        if stages == 0 or any(len(size) != stages for size in sizes):
            raise ValueError(
                "dims, heads, mlp_ratios, depths and attention need one entry per stage, got "
                f"lengths {[len(self.dims)] + [len(size) for size in sizes]}."
            )
        if self.merging not in MERGINGS:
            raise ValueError(f"merging must be one of {MERGINGS}, got {self.merging!r}.")
        side = self.image_size // self.patch_size
        if (
            self.image_size % self.patch_size
            or side % 2 ** (stages - 1)
            or side < 2 ** (stages - 1)
        ):
            raise ValueError(
                f"image_size {self.image_size} / patch_size {self.patch_size} must be divisible "
                f"by 2^(stages - 1) = {2 ** (stages - 1)} (each later stage halves the grid)."
            )
        if self.cls_token and not self.attention[-1]:
            raise ValueError("a CLS token needs attention in the last stage to read the patches.")

    @property
    def grids(self) -> list[tuple[int, int]]:
        """`(h, w)` token grid of each stage."""
        side = self.image_size // self.patch_size
        return [(side >> s, side >> s) for s in range(len(self.dims))]

    @property
    def token_pixels(self) -> list[int]:
        """Side in pixels of one token of each stage (the patch size for attention distance)."""
        return [self.patch_size << s for s in range(len(self.dims))]


class PyramidTransformer(nn.Module):
    """Images `(B, C, S, S)` -> logits `(B, num_classes)`; see the module docstring."""

    def __init__(self, config: PyramidConfig) -> None:
        super().__init__()
        self.config = config
        merges, positions, stages = [], [], []
        for s, (dim, grid) in enumerate(zip(config.dims, config.grids, strict=True)):
            if s == 0:
                merges.append(PatchMerging(config.in_channels, dim, config.patch_size))
            elif config.merging == "deformable":
                merges.append(
                    DeformableTokenMerging(config.dims[s - 1], dim, 2, config.offset_lr_mult)
                )
            else:
                merges.append(PatchMerging(config.dims[s - 1], dim, 2))
            tokens = grid[0] * grid[1] + (
                1 if config.cls_token and s == len(config.dims) - 1 else 0
            )
            positions.append(nn.Parameter(torch.randn(1, tokens, dim) * 0.02))
            block = (
                (lambda d=dim, h=config.heads[s], r=config.mlp_ratios[s]: TransformerBlock(d, h, r))
                if config.attention[s]
                else (lambda d=dim, r=config.mlp_ratios[s]: MLPBlock(d, r))
            )
            stages.append(nn.Sequential(*(block() for _ in range(config.depths[s]))))
        self.merges = nn.ModuleList(merges)
        self.positions = nn.ParameterList(positions)
        self.stages = nn.ModuleList(stages)
        self.cls = (
            nn.Parameter(torch.randn(1, 1, config.dims[-1]) * 0.02) if config.cls_token else None
        )
        self.norm = nn.LayerNorm(config.dims[-1])
        self.head = nn.Linear(config.dims[-1], config.num_classes)
        self.apply(_init_linear)

    def num_special(self, stage: int) -> int:
        """Tokens before the patches in `stage` (1 for the CLS token of the last stage)."""
        return int(self.cls is not None and stage == len(self.stages) - 1)

    def features(self, images: Tensor) -> Tensor:
        """The last stage's normalised tokens `(B, N, C)` (CLS first when there is one)."""
        x = images
        last = len(self.stages) - 1
        for s, (merge, position, blocks) in enumerate(
            zip(self.merges, self.positions, self.stages, strict=True)
        ):
            tokens = merge(x)  # (B, h·w, C_s)
            if s == last and self.cls is not None:
                tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
            tokens = blocks(tokens + position)
            if s < last:
                h, w = self.config.grids[s]
                x = tokens.transpose(1, 2).reshape(len(tokens), -1, h, w)  # (B, C_s, h, w)
        return self.norm(tokens)

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.features(images)
        pooled = tokens[:, 0] if self.cls is not None else tokens.mean(dim=1)
        return self.head(pooled)

    def attention_modules(self) -> dict[int, list[str]]:
        """Stage index -> names of its attention modules (for `attnkit.capture(modules=...)`)."""
        found: dict[int, list[str]] = {}
        for s, blocks in enumerate(self.stages):
            names = [f"stages.{s}.{i}.attn" for i, b in enumerate(blocks) if hasattr(b, "attn")]
            if names:
                found[s] = names
        return found

    def offsets(self) -> dict[int, Tensor]:
        """Stage index -> the DTM offsets `(B, 8, h, w)` of the last forward pass."""
        return {
            s: merge.last_offsets
            for s, merge in enumerate(self.merges)
            if isinstance(merge, DeformableTokenMerging) and merge.last_offsets is not None
        }


def _init_linear(module: nn.Module) -> None:
    # ViT/DeiT/PVT/LIT initialisation: truncated normal (std 0.02) linear weights, zero biases.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def stage_attentions(model: PyramidTransformer, images: Tensor) -> dict[int, Attentions]:
    """Stage index -> `Attentions` `(L_s, B, H_s, T_s, T_s)` of that stage's attention layers.

    Runs the model once per stage through `attnkit.capture` (hooks on the stage's
    `PatchSelfAttention` modules, switched to their eager path).
    """
    from attnkit.capture import capture

    with keep_attention_weights(model):
        return {
            s: capture(model, images, modules=names)
            for s, names in model.attention_modules().items()
        }


def count_flops(model: nn.Module, images: Tensor) -> float:
    """Forward FLOPs per image counted by `torch.utils.flop_counter` (matmuls, convolutions,
    attention; 2 per multiply–add; normalisation, softmax and grid sampling are not counted).

    The kit's attention modules run their eager path here: on the CPU the counter does not see
    the matmuls inside `F.scaled_dot_product_attention` (torch 2.13), so it would undercount.
    """
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), keep_attention_weights(model), counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / len(images)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pvt_tiny(**overrides) -> PyramidTransformer:
    """PVT-style, full self-attention in all four stages, fixed merging."""
    return PyramidTransformer(PyramidConfig(**overrides))


def lit_tiny(**overrides) -> PyramidTransformer:
    """LIT: MLP blocks in stages 1–2, self-attention in 3–4, deformable token merging."""
    settings = dict(attention=(False, False, True, True), merging="deformable")
    return PyramidTransformer(PyramidConfig(**{**settings, **overrides}))


def vit_tiny(**overrides) -> PyramidTransformer:
    """A one-stage ViT with a CLS token (Dosovitskiy et al. 2021)."""
    settings = dict(
        patch_size=4,
        dims=(32,),
        heads=(4,),
        mlp_ratios=(2,),
        depths=(4,),
        attention=(True,),
        cls_token=True,
    )
    return PyramidTransformer(PyramidConfig(**{**settings, **overrides}))
