"""Small image data available offline: scikit-learn's digits and scikit-image's sample images.

- `load_digits_images`: the 1,797 handwritten digits bundled with scikit-learn (8 × 8, 16 grey
  levels; the UCI "optdigits" test set, Alpaydin & Kaynak 1998), upsampled bilinearly.
- `sample_images`: scikit-image's bundled photographs (camera, astronaut, coffee, chelsea),
  grey, resized — for figures only.

Both packages ship their data in the wheel; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLE_IMAGES = ("camera", "astronaut", "coffee", "chelsea")


def _needs(package: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise ImportError(
            f"{package} is needed for this data; install it with `pip install {pip_name}` "
            "(it is listed in attnkit's pyproject.toml)."
        ) from error


def load_digits_images(size: int = 32) -> tuple[Tensor, Tensor]:
    """The scikit-learn digits as `(1797, 1, size, size)` float images and `(1797,)` labels.

    Pixel values 0–16 are scaled to [0, 1], upsampled bilinearly, then standardised with the
    mean and standard deviation of the whole set.
    """
    datasets = _needs("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images - images.mean()) / images.std()
    return images, torch.tensor(digits.target, dtype=torch.long)


def sample_images(size: int = 32, names: tuple[str, ...] = SAMPLE_IMAGES) -> dict[str, Tensor]:
    """scikit-image sample photographs, grey, centre-cropped square and resized: name ->
    `(1, size, size)` tensor standardised like `load_digits_images`."""
    data = _needs("skimage.data", "scikit-image")
    color = _needs("skimage.color", "scikit-image")
    out = {}
    for name in names:
        picture = np.asarray(getattr(data, name)(), dtype=np.float64)
        if picture.ndim == 3:
            picture = color.rgb2gray(picture[..., :3])
        side = min(picture.shape)
        top, left = (picture.shape[0] - side) // 2, (picture.shape[1] - side) // 2
        square = torch.tensor(picture[top : top + side, left : left + side], dtype=torch.float32)
        small = F.interpolate(square[None, None], size=(size, size), mode="area")[0]
        out[name] = (small - small.mean()) / small.std().clamp_min(1e-6)
    return out
