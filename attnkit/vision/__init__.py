"""Vision transformers: attention on a grid of image patches.

- `mean_attention_distance`: the ViT paper's per-layer, per-head attention distance in pixels
  (Dosovitskiy et al. 2021, Fig. 7), keys and queries restricted to patch tokens.
- `patch_map`, `cls_patch_map`: per-token scores (or one query's row of a `(T, T)` map from
  rollout, flow or a single layer) reshaped onto the patch grid, after dropping the first
  `num_special` tokens (CLS, distillation and register tokens).

Patch tokens follow the special tokens in row-major order (the order of `Conv2d(...).flatten(2)`
in ViT, DeiT, PVT and LIT): token `num_special + r * w + c` is the patch in row `r`, column `c`.
"""

from attnkit.vision.distance import mean_attention_distance, patch_distances
from attnkit.vision.patch_maps import cls_patch_map, patch_map

__all__ = ["cls_patch_map", "mean_attention_distance", "patch_distances", "patch_map"]
