"""attnkit.train's `fused` option: the same Adam/AdamW update as torch's default kernel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from attnkit.train import TrainConfig, cross_entropy_loss, fit, set_seed
from tests.test_train import TRAIN, TinyClassifier

pytestmark = pytest.mark.usefixtures("single_thread")


def trained(config: TrainConfig) -> TinyClassifier:
    set_seed(0)
    model = TinyClassifier()
    fit(model, TRAIN, loss_fn=cross_entropy_loss, config=config, cache=False, progress=False)
    return model


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_fused_optimizer_follows_the_default_kernel(optimizer: str) -> None:
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05, optimizer=optimizer, weight_decay=0.01)
    default = trained(config)
    fused = trained(dataclasses.replace(config, fused=True))
    for (name, a), (_, b) in zip(
        default.state_dict().items(), fused.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    assert any(
        not torch.equal(a, torch.zeros_like(a)) for a in default.state_dict().values()
    )  # the comparison is of trained weights, not zeros


def test_fused_is_in_the_cache_key_only_when_on(tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, lr=0.05)

    def key(config: TrainConfig) -> str:
        set_seed(0)
        result = fit(
            TinyClassifier(),
            TRAIN,
            loss_fn=cross_entropy_loss,
            config=config,
            cache_dir=tmp_path,
            progress=False,
        )
        return result.cache_key

    plain, fused = key(config), key(dataclasses.replace(config, fused=True))
    assert plain != fused
    # The unfused key is the one written before the option existed: no "fused" entry.
    from attnkit.train.trainer import _cache_key_inputs

    set_seed(0)
    inputs = _cache_key_inputs(
        TinyClassifier(), TRAIN, None, config, cross_entropy_loss, None, None, None
    )
    settings = dataclasses.asdict(config)
    del settings["fused"]
    assert inputs["train_config"] == settings
