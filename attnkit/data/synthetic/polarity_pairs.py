"""A synthetic image task whose label depends on a long-range relation.

Each image is Gaussian noise with two square markers, one bright (+1) or dark (−1) each, placed
at least `min_distance` pixels apart (centre to centre). The label is 1 when the two markers
have the same polarity and 0 otherwise. A model that only pools local features cannot solve it
(the label is the XOR of two far-apart local features); some layer has to relate the two
markers, which is the work self-attention is there for. Marker corners lie on a 4-pixel lattice.

`extra`-style ground truth: `marker_boxes` gives each image's two `(row, col)` corners, so an
attention map can be checked against where the evidence is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class PolarityPairs:
    """`images` `(N, 1, S, S)`, `labels` `(N,)` (1 = same polarity), `corners` `(N, 2, 2)`."""

    images: Tensor
    labels: Tensor
    corners: Tensor
    marker: int

    def __len__(self) -> int:
        return len(self.labels)

    def examples(self) -> list[tuple[Tensor, int]]:
        """`(image, label)` pairs, the format `attnkit.train.fit` takes."""
        return [(image, int(label)) for image, label in zip(self.images, self.labels, strict=True)]


def make_polarity_pairs(
    n: int,
    seed: int,
    *,
    size: int = 32,
    marker: int = 8,
    min_distance: float = 14.0,
    noise: float = 0.05,
) -> PolarityPairs:
    """`n` images of the polarity task (balanced labels in expectation), deterministic by seed."""
    if n < 1 or marker < 1 or size < 2 * marker:
        raise ValueError(
            f"need n >= 1 and an image at least twice the marker (size {size}, marker {marker})."
        )
    rng = np.random.default_rng(seed)
    lattice = np.arange(0, size - marker + 1, 4)
    images = rng.normal(0.0, noise, (n, 1, size, size)).astype(np.float32)
    labels = np.zeros(n, dtype=np.int64)
    corners = np.zeros((n, 2, 2), dtype=np.int64)
    for i in range(n):
        while True:
            first, second = rng.choice(lattice, 2), rng.choice(lattice, 2)
            if np.hypot(*(first - second)) >= min_distance:
                break
        polarity = rng.choice([-1.0, 1.0])
        same = rng.random() < 0.5
        for corner, sign in ((first, polarity), (second, polarity if same else -polarity)):
            images[i, 0, corner[0] : corner[0] + marker, corner[1] : corner[1] + marker] += sign
        labels[i], corners[i] = int(same), (first, second)
    return PolarityPairs(
        torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(corners), marker
    )
