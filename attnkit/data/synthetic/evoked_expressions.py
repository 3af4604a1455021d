"""A synthetic stand-in for the Evoked Expressions from Videos (EEV) data.

EEV (Sun et al. 2021, arXiv:2001.05488; github.com/google-research-datasets/eev) annotates each
video at 6 Hz with 15 continuous evoked-expression scores; the videos themselves are not
distributed, so the data cannot be rebuilt here. The stand-in keeps the structure the 2021
challenge entry relies on:

- per-second **audio** and **image** feature streams, `(seconds, d_audio)` and
  `(seconds, d_image)`, each a noisy linear view of a few smooth latent signals — audio sees some
  latents, images others, and one latent both;
- **smooth expression targets** at the dense rate `(seconds · rate, 15)`: a fixed random mixture
  of the latents passed through softplus, plus annotation noise at the dense rate (EEV's labels
  come from an expression-recognition model, so they are noisy too).

Latents are Gaussian noise smoothed with a Gaussian kernel of `timescale` seconds, so the targets
change slowly next to the 1 Hz feature rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class EvokedExpressions:
    """`audio` `(N, S, d_a)`, `image` `(N, S, d_v)` per second; `targets` and `clean`
    `(N, S · rate, K)` at the dense rate (`clean` without annotation noise)."""

    audio: Tensor
    image: Tensor
    targets: Tensor
    clean: Tensor
    rate: int

    def __len__(self) -> int:
        return len(self.audio)


def _smooth_noise(
    rng: np.random.Generator, n: int, steps: int, dims: int, width: float
) -> np.ndarray:
    """`(n, steps, dims)` Gaussian noise smoothed along time by a Gaussian of `width` steps,
    rescaled to unit variance."""
    raw = rng.normal(size=(n, steps + 8 * int(width), dims))
    radius = int(4 * width)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / width) ** 2)
    kernel /= kernel.sum()
    smooth = np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="valid"), 1, raw)
    smooth = smooth[:, :steps]
    return smooth / smooth.std()


def make_evoked_expressions(
    n: int,
    seed: int,
    *,
    seconds: int = 40,
    rate: int = 6,
    expressions: int = 15,
    latents: int = 6,
    d_audio: int = 16,
    d_image: int = 16,
    timescale: float = 3.0,
    feature_noise: float = 0.5,
    label_noise: float = 0.5,
    mixing_seed: int = 0,
) -> EvokedExpressions:
    """`n` synthetic videos. `mixing_seed` fixes the feature and target mixing matrices (the
    "world"), `seed` the videos, so train and test sets share a world with other seeds.

    Audio sees latents 0 .. latents/2, images latents latents/2 − 1 .. end (one shared).
    `label_noise` is the annotation noise's standard deviation relative to the clean targets'.
    """
    if n < 1 or seconds < 2 or rate < 1:
        raise ValueError(f"need n >= 1, seconds >= 2 and rate >= 1; got {n}, {seconds}, {rate}.")
    world = np.random.default_rng(mixing_seed)
    half = latents // 2
    audio_mix = world.normal(size=(half + 1, d_audio))
    image_mix = world.normal(size=(latents - half + 1, d_image))
    target_mix = world.normal(size=(latents, expressions)) / np.sqrt(latents)
    rng = np.random.default_rng(seed)
    dense = _smooth_noise(rng, n, seconds * rate, latents, timescale * rate)  # (N, S·R, latents)
    per_second = dense[:, ::rate]  # the latent at the start of each second, (N, S, latents)
    audio = per_second[..., : half + 1] @ audio_mix
    image = per_second[..., half - 1 :] @ image_mix
    audio += feature_noise * rng.normal(size=audio.shape)
    image += feature_noise * rng.normal(size=image.shape)
    clean = np.logaddexp(0.0, 2.0 * dense @ target_mix)  # softplus, (N, S·R, K)
    clean = (clean - clean.mean((0, 1))) / clean.std((0, 1))
    targets = clean + label_noise * rng.normal(size=clean.shape)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return EvokedExpressions(
        as_tensor(audio / audio.std()),
        as_tensor(image / image.std()),
        as_tensor(targets),
        as_tensor(clean),
        rate,
    )
