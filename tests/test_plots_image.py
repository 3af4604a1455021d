"""attnkit.plots.image_overlay: a patch map upsampled onto its image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attnkit.plots import image_overlay


def test_overlay_on_a_non_square_grid_places_each_patch_over_its_pixels(tmp_path):
    image = np.random.default_rng(0).random((20, 30))  # H = 20, W = 30
    scores = np.arange(6, dtype=float).reshape(2, 3)  # 2 x 3 patches of 10 x 10 pixels
    figure = image_overlay(
        image, scores, interpolation="nearest", save=tmp_path / "overlay.png", title="t"
    )
    assert isinstance(figure, Figure) and (tmp_path / "overlay.png").stat().st_size > 0
    picture, heat = figure.axes[0].images
    np.testing.assert_allclose(picture.get_array(), (image - image.min()) / np.ptp(image))
    expected = np.kron(scores, np.ones((10, 10)))  # each patch's value over its 10 x 10 pixels
    np.testing.assert_allclose(heat.get_array(), expected)


def test_bilinear_overlay_keeps_the_image_size_and_the_map_range():
    image = torch.rand(3, 24, 40)  # channel-first, like a torch image
    scores = torch.rand(3, 5)
    heat = image_overlay(image, scores).axes[0].images[1].get_array()
    assert heat.shape == (24, 40)
    assert scores.min() - 1e-6 <= heat.min() and heat.max() <= scores.max() + 1e-6


def test_overlay_rejects_token_scores():
    with pytest.raises(ValueError, match="patch_map"):
        image_overlay(np.zeros((8, 8)), np.zeros(17))


def test_overlay_colour_scale_can_be_shared():
    heat = image_overlay(np.zeros((8, 8)), np.ones((2, 2)), vmin=0.0, vmax=5.0).axes[0].images[1]
    assert heat.get_clim() == (0.0, 5.0)
