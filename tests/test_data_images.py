"""Offline image data: scikit-learn digits, scikit-image samples, the polarity-pairs task and
the EEV stand-in's structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnkit.data.images import load_digits_images, sample_images
from attnkit.data.synthetic import make_polarity_pairs
from attnkit.data.synthetic.evoked_expressions import make_evoked_expressions


def test_digits_are_upsampled_and_standardised():
    pytest.importorskip("sklearn")
    images, labels = load_digits_images(size=16)
    assert images.shape == (1797, 1, 16, 16) and labels.shape == (1797,)
    assert set(labels.tolist()) == set(range(10))
    assert abs(images.mean().item()) < 1e-4 and abs(images.std().item() - 1) < 1e-4


def test_sample_images_are_grey_squares():
    pytest.importorskip("skimage")
    images = sample_images(24, ("camera", "astronaut"))
    assert {name: tuple(x.shape) for name, x in images.items()} == {
        "camera": (1, 24, 24),
        "astronaut": (1, 24, 24),
    }


def test_polarity_labels_follow_the_markers():
    data = make_polarity_pairs(60, seed=3, noise=0.0)
    for image, label, corners in zip(data.images, data.labels, data.corners, strict=True):
        (r1, c1), (r2, c2) = corners.tolist()
        assert np.hypot(r1 - r2, c1 - c2) >= 14
        first = image[0, r1 : r1 + 8, c1 : c1 + 8]
        second = image[0, r2 : r2 + 8, c2 : c2 + 8]
        assert first.abs().min() == 1 and second.abs().min() == 1  # markers do not overlap
        assert int(label) == int(torch.sign(first[0, 0]) == torch.sign(second[0, 0]))
        assert (image.abs() > 0).sum() == 2 * 64  # nothing else in a noise-free image
    assert 0.2 < data.labels.float().mean() < 0.8
    assert torch.equal(make_polarity_pairs(5, seed=3).images, make_polarity_pairs(5, seed=3).images)


def test_evoked_expressions_structure():
    data = make_evoked_expressions(4, seed=0, seconds=10, rate=6, label_noise=0.0)
    assert data.audio.shape == (4, 10, 16) and data.image.shape == (4, 10, 16)
    assert data.targets.shape == data.clean.shape == (4, 60, 15)
    torch.testing.assert_close(data.targets, data.clean)  # no annotation noise asked for
    # Smooth targets: neighbouring 6 Hz steps differ far less than the targets vary.
    step = data.clean.diff(dim=1).abs().mean()
    assert step < 0.2 * data.clean.std()
    # Same world, other videos: the mixing is fixed by mixing_seed, the videos by seed.
    other = make_evoked_expressions(4, seed=1, seconds=10, label_noise=0.0)
    assert not torch.equal(other.audio, data.audio)
    noisy = make_evoked_expressions(4, seed=0, seconds=10, label_noise=1.0)
    torch.testing.assert_close(noisy.clean, data.clean)
    assert (noisy.targets - noisy.clean).std() == pytest.approx(1.0, abs=0.1)
