"""Token merging between the stages of a pyramid vision transformer.

- `PatchMerging`: PVT's patch embedding between stages (Wang et al. 2021): a convolution with
  kernel = stride = k over the `(B, C, H, W)` token map, then LayerNorm.
- `DeformableTokenMerging` (DTM; Pan et al. 2022, "Less is More: Pay Less Attention in Vision
  Transformers", §3): the same kernel = stride = k merge, but each of the k × k taps samples the
  map bilinearly at a learned offset (a deformable convolution, Dai et al. 2017), then
  BatchNorm + GELU, as the authors' `DeformablePatchEmbed_GELU` (ziplab/LIT,
  classification/code_for_lit_ti/patch_embed.py). The offsets come from a k × k, stride-k
  convolution initialised to zero, so DTM starts as plain strided merging; the authors train
  that layer with a lower learning rate (`dconv_lr_ratio` 0.01 in config/lit-ti.json), which
  `lr_mult` carries to `attnkit.train.fit`.

The authors use a compiled deformable-convolution kernel; here it is written with
`F.grid_sample`, so it runs anywhere torch does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def deformable_merge(
    x: Tensor, offsets: Tensor, weight: Tensor, bias: Tensor | None, kernel: int
) -> Tensor:
    """Strided deformable convolution (kernel = stride = `kernel`, no padding).

    Output position (i, j), tap (a, b) reads `x` at pixel (k·i + a + Δy, k·j + b + Δx) with
    bilinear interpolation (zero outside the map); the taps are then combined by `weight`:

        y[:, i, j] = Σ_{a,b} weight[:, :, a, b] · x(k·i + a + Δy_ab(i, j), k·j + b + Δx_ab(i, j))

    Args:
        x: `(B, C, H, W)` token map, H and W divisible by `kernel` and at least 2.
        offsets: `(B, 2·k·k, H/k, W/k)` pixel offsets, channel 2·(a·k + b) is Δy and the next Δx
            (the layout of mmcv's / the authors' DCN v1).
        weight: `(C_out, C, k, k)`; bias: `(C_out,)` or None.

    Returns `(B, C_out, H/k, W/k)`. With zero offsets this is `F.conv2d(x, weight, bias, stride=k)`.
    """
    batch, _, height, width = x.shape
    k = kernel
    if height % k or width % k or min(height, width) < 2:
        raise ValueError(
            f"the token map is {height} x {width}; both sides must be divisible by the kernel "
            f"{k} and at least 2."
        )
    rows, cols = height // k, width // k
    if offsets.shape != (batch, 2 * k * k, rows, cols):
        raise ValueError(
            f"offsets must have shape {(batch, 2 * k * k, rows, cols)}, got {tuple(offsets.shape)}."
        )
    # Offsets per tap -> one offset per pixel of the (H, W) map: pixel (k·i + a, k·j + b).
    shift = offsets.reshape(batch, k, k, 2, rows, cols)  # (B, a, b, yx, i, j)
    shift = shift.permute(0, 4, 1, 5, 2, 3).reshape(batch, height, width, 2)  # (B, H, W, yx)
    ys = torch.arange(height, dtype=x.dtype, device=x.device)
    xs = torch.arange(width, dtype=x.dtype, device=x.device)
    base_y, base_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W)
    sample_y = base_y + shift[..., 0]
    sample_x = base_x + shift[..., 1]
    # grid_sample wants (x, y) in [-1, 1]; align_corners=True puts -1 / 1 on the edge pixels.
    grid = torch.stack([2 * sample_x / (width - 1) - 1, 2 * sample_y / (height - 1) - 1], dim=-1)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return F.conv2d(sampled, weight, bias, stride=k)  # (B, C_out, H/k, W/k)


class PatchMerging(nn.Module):
    """Fixed merging: conv (kernel = stride = k) over `(B, C, H, W)`, then LayerNorm over
    channels; returns tokens `(B, H/k · W/k, C_out)` (PVT's between-stage patch embedding)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int = 2) -> None:
        super().__init__()
        self.kernel = kernel
        self.proj = nn.Conv2d(in_dim, out_dim, kernel_size=kernel, stride=kernel)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # (B, N', C_out)


class DeformableTokenMerging(nn.Module):
    """DTM (Pan et al. 2022): deformable merge (kernel = stride = k) + BatchNorm + GELU,
    `(B, C, H, W) -> (B, H/k · W/k, C_out)`.

    `offset` is the zero-initialised k × k, stride-k convolution predicting `(B, 2k², H/k, W/k)`
    offsets in pixels of the input map; its `lr_mult` (default 0.01, the authors' LIT-Ti
    `dconv_lr_ratio`) scales its learning rate in `attnkit.train.fit`. The last offsets are kept
    (detached) in `last_offsets` for figures.
    """

    def __init__(
        self, in_dim: int, out_dim: int, kernel: int = 2, offset_lr_mult: float = 0.01
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(out_dim))
        reference = nn.Conv2d(in_dim, out_dim, kernel)  # the default conv init, as DCN's
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            self.bias.copy_(reference.bias)
        self.offset = nn.Conv2d(in_dim, 2 * kernel * kernel, kernel_size=kernel, stride=kernel)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.offset.lr_mult = offset_lr_mult
        self.norm = nn.BatchNorm2d(out_dim)
        self.act = nn.GELU()
        self.last_offsets: Tensor | None = None

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, offset_lr_mult={self.offset.lr_mult}"

    def forward(self, x: Tensor) -> Tensor:
        offsets = self.offset(x)  # (B, 2k², H/k, W/k)
        self.last_offsets = offsets.detach()
        merged = deformable_merge(x, offsets, self.weight, self.bias, self.kernel)
        return self.act(self.norm(merged)).flatten(2).transpose(1, 2)  # (B, N', C_out)
