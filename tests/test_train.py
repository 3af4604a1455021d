"""Tests for attnkit.train: learning, determinism, early stopping and the checkpoint cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from attnkit.train import (
    CacheWarning,
    TrainConfig,
    accuracy,
    cross_entropy_loss,
    data_fingerprint,
    default_cache_dir,
    evaluate,
    fit,
    predict,
    set_seed,
)

pytestmark = pytest.mark.usefixtures("single_thread")


FAST = TrainConfig(epochs=4, batch_size=16, lr=0.05, seed=0)


class TinyClassifier(nn.Module):
    """A two-layer MLP over 2-d points, called as ``model(x=...)``."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyAttentionClassifier(nn.Module):
    """Embedding + self-attention + dropout + mean pooling, called as ``model(tokens)``."""

    def __init__(self, vocab: int = 10, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.attention = nn.MultiheadAttention(dim, num_heads=2, dropout=0.1, batch_first=True)
        self.out = nn.Linear(dim, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(tokens)
        attended, _ = self.attention(hidden, hidden, hidden)
        return self.out(attended.mean(dim=1))


class CountingLoss:
    """Cross-entropy that counts its calls, so a test can tell whether training ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        return cross_entropy_loss(model, batch)


def blobs(n: int, seed: int, flip_labels: bool = False) -> list[dict[str, torch.Tensor]]:
    """Two well-separated Gaussian blobs as dict examples ``{"x", "labels"}``."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    centres = (labels.float() * 2 - 1).unsqueeze(1) * 2.0
    points = centres + 0.5 * torch.randn(n, 2, generator=generator)
    shown_labels = 1 - labels if flip_labels else labels
    return [{"x": points[i], "labels": shown_labels[i]} for i in range(n)]


def build(seed: int = 0) -> TinyClassifier:
    set_seed(seed)
    return TinyClassifier()


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


TRAIN, DEV = blobs(160, seed=1), blobs(64, seed=2)


def test_learns_separable_data() -> None:
    model = build()
    result = fit(
        model, TRAIN, DEV, loss_fn=cross_entropy_loss, metric_fn=accuracy, config=FAST, cache=False
    )
    assert len(result.history) == FAST.epochs
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert max(stats.dev_metric for stats in result.history) >= 0.95
    assert result.best_epoch is not None and not result.from_cache and not model.training
    _, dev_accuracy = evaluate(model, DEV, loss_fn=cross_entropy_loss, metric_fn=accuracy)
    assert dev_accuracy == result.history[result.best_epoch - 1].dev_metric


def test_same_seed_same_weights_and_history_different_seed_differs() -> None:
    runs = []
    for seed in (0, 0, 1):
        model = build(seed)
        config = dataclasses.replace(FAST, seed=seed)
        result = fit(
            model,
            TRAIN,
            DEV,
            loss_fn=cross_entropy_loss,
            config=config,
            cache=False,
            progress=False,
        )
        runs.append((model, result.history))
    assert_same_weights(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert runs[0][1] != runs[2][1]
    assert not torch.equal(runs[0][0].net[0].weight, runs[2][0].net[0].weight)


def test_tuple_batches_with_attention_ops_are_deterministic_and_do_not_warn() -> None:
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 10, (48, 6), generator=generator)
    examples = [(tokens[i], (tokens[i] > 4).sum().remainder(2)) for i in range(len(tokens))]
    config = TrainConfig(
        epochs=2,
        batch_size=8,
        lr=0.01,
        optimizer="adamw",
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=5,
    )
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    runs = []
    for _ in range(2):
        set_seed(config.seed)
        model = TinyAttentionClassifier()
        with warnings.catch_warnings():
            # torch reports non-deterministic ops as UserWarnings in warn_only mode.
            warnings.simplefilter("error")
            result = fit(
                model,
                examples,
                examples[:16],
                loss_fn=cross_entropy_loss,
                metric_fn=accuracy,
                config=config,
                cache=False,
                progress=False,
            )
        runs.append((model, result.history))
    assert_same_weights(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert torch.are_deterministic_algorithms_enabled() == was_deterministic


def test_early_stopping_stops_and_restores_best_weights() -> None:
    # Dev has the train points with flipped labels, so dev loss rises from the first epoch on.
    train = TRAIN[:64]
    flipped_dev = [{"x": ex["x"], "labels": 1 - ex["labels"]} for ex in train]
    config = dataclasses.replace(FAST, epochs=20, patience=2)
    model = build()
    result = fit(
        model,
        train,
        flipped_dev,
        loss_fn=cross_entropy_loss,
        config=config,
        cache=False,
        progress=False,
    )

    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
    dev_losses = [stats.dev_loss for stats in result.history]
    assert dev_losses == sorted(dev_losses)
    dev_loss, _ = evaluate(model, flipped_dev, loss_fn=cross_entropy_loss)
    assert dev_loss == pytest.approx(dev_losses[0], abs=1e-6)
    one_epoch = build()
    fit(
        one_epoch,
        train,
        loss_fn=cross_entropy_loss,
        config=dataclasses.replace(config, epochs=1),
        cache=False,
        progress=False,
    )
    assert_same_weights(model, one_epoch)


def test_cache_hit_returns_identical_weights_without_training(tmp_path: Path) -> None:
    first_loss, first = CountingLoss(), build()
    trained = fit(
        first,
        TRAIN,
        DEV,
        loss_fn=first_loss,
        metric_fn=accuracy,
        config=FAST,
        cache_dir=tmp_path,
        progress=False,
    )
    assert first_loss.calls > 0 and not trained.from_cache

    second_loss, second = CountingLoss(), build()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        cached = fit(
            second,
            TRAIN,
            DEV,
            loss_fn=second_loss,
            metric_fn=accuracy,
            config=FAST,
            cache_dir=tmp_path,
            progress=False,
        )
    assert second_loss.calls == 0 and cached.from_cache
    assert_same_weights(first, second)
    assert cached.history == trained.history and cached.best_epoch == trained.best_epoch
    assert cached.cache_key == trained.cache_key and cached.train_time_s == trained.train_time_s


def test_cache_key_changes_with_config_data_seed_and_extra(tmp_path: Path) -> None:
    config = dataclasses.replace(FAST, epochs=1)

    def key(data=TRAIN, config=config, model_seed=0, extra=None) -> str:
        result = fit(
            build(model_seed),
            data,
            loss_fn=cross_entropy_loss,
            config=config,
            cache_dir=tmp_path,
            cache_key_extra=extra,
            progress=False,
        )
        return result.cache_key

    changed_data = list(TRAIN)
    changed_data[7] = {"x": changed_data[7]["x"] + 1e-6, "labels": changed_data[7]["labels"]}
    keys = [
        key(),
        key(config=dataclasses.replace(config, lr=0.01)),
        key(data=changed_data),
        key(config=dataclasses.replace(config, seed=1)),
        key(model_seed=1),  # same config, other initial weights
        key(extra={"variant": "b"}),
    ]
    assert len(set(keys)) == len(keys)
    assert key() == keys[0]


def test_default_cache_dir_follows_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    result = fit(
        build(),
        TRAIN[:32],
        loss_fn=cross_entropy_loss,
        config=dataclasses.replace(FAST, epochs=1),
        progress=False,
    )
    assert result.cache_path == tmp_path / "cache" / f"{result.cache_key}.safetensors"
    assert result.cache_path.exists()
    monkeypatch.delenv("ATTNKIT_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "attnkit"


def _truncate(weights: Path, metadata: Path) -> None:
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _flip_last_byte(weights: Path, metadata: Path) -> None:
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 0xFF
    weights.write_bytes(bytes(payload))


def _break_json(weights: Path, metadata: Path) -> None:
    metadata.write_text(metadata.read_text()[:40])


def _change_a_shape(weights: Path, metadata: Path) -> None:
    # A self-consistent entry (valid checksum) whose tensors do not fit the model.
    tensors = safetensors.torch.load(weights.read_bytes())
    tensors["net.0.weight"] = torch.zeros(3, 2)
    payload = safetensors.torch.save(tensors)
    weights.write_bytes(payload)
    content = json.loads(metadata.read_text())
    content["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    metadata.write_text(json.dumps(content))


def _drop_metadata(weights: Path, metadata: Path) -> None:
    metadata.unlink()


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (_truncate, "checksum"),
        (_flip_last_byte, "checksum"),
        (_break_json, "not valid JSON"),
        (_change_a_shape, "shapes"),
        (_drop_metadata, "incomplete"),
    ],
)
def test_unusable_cache_entry_warns_retrains_and_rewrites(
    tmp_path: Path, corrupt, reason: str
) -> None:
    config = dataclasses.replace(FAST, epochs=2)
    original = build()
    # CountingLoss throughout: the loss function's name is part of the cache key.
    first = fit(
        original, TRAIN, loss_fn=CountingLoss(), config=config, cache_dir=tmp_path, progress=False
    )
    corrupt(first.cache_path, first.cache_path.with_suffix(".json"))

    loss, retrained = CountingLoss(), build()
    with pytest.warns(CacheWarning, match=reason):
        result = fit(
            retrained, TRAIN, loss_fn=loss, config=config, cache_dir=tmp_path, progress=False
        )
    assert loss.calls > 0 and not result.from_cache
    assert_same_weights(original, retrained)

    loss, reloaded = CountingLoss(), build()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = fit(
            reloaded, TRAIN, loss_fn=loss, config=config, cache_dir=tmp_path, progress=False
        )
    assert again.from_cache and loss.calls == 0
    assert_same_weights(original, reloaded)


def test_cache_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(FAST, epochs=1)
    data = TRAIN[:32]

    def train(seed: int):
        return fit(
            build(seed),
            data,
            loss_fn=cross_entropy_loss,
            config=dataclasses.replace(config, seed=seed),
            cache_dir=tmp_path,
            progress=False,
        )

    result = train(0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{result.cache_key}.json",
        f"{result.cache_key}.safetensors",
    ]

    real_replace = os.replace

    def replace_failing_on_metadata(source, destination) -> None:
        if str(destination).endswith(".json"):
            raise OSError("disk full")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_failing_on_metadata)
    with pytest.warns(CacheWarning, match="could not write"):
        failed = train(1)
    assert failed.cache_path is None
    assert not (tmp_path / f"{failed.cache_key}.json").exists()

    def interrupted_replace(source, destination) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        train(2)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    monkeypatch.setattr(os, "replace", real_replace)

    # The half-written seed-1 entry (weights without metadata) is never used as is.
    with pytest.warns(CacheWarning, match="incomplete"):
        assert not train(1).from_cache
    assert train(1).from_cache


def test_predict_batches_without_grad_and_restores_mode() -> None:
    model = build()
    model.train()
    outputs = predict(model, DEV, batch_size=7)
    expected = model(torch.stack([ex["x"] for ex in DEV]))
    assert outputs.shape == (len(DEV), 2) and not outputs.requires_grad
    torch.testing.assert_close(outputs, expected.detach())
    assert model.training

    pairs = [(ex["x"], ex["labels"]) for ex in DEV]
    first_features = predict(
        model, pairs, batch_size=10, forward=lambda m, batch: m.net[0](batch[0])
    )
    assert first_features.shape == (len(DEV), 8)


def test_data_fingerprint_is_content_based() -> None:
    assert data_fingerprint(blobs(10, seed=4)) == data_fingerprint(blobs(10, seed=4))
    assert data_fingerprint(blobs(10, seed=4)) != data_fingerprint(blobs(10, seed=5))
    assert data_fingerprint([[1, 2]]) != data_fingerprint([(1, 2)]) != data_fingerprint(["12"])
    assert data_fingerprint([{"a": 1.0, "b": "x"}]) == data_fingerprint([{"b": "x", "a": 1.0}])
    assert data_fingerprint([torch.zeros(2)]) != data_fingerprint(
        [torch.zeros(2, dtype=torch.float64)]
    )
    with pytest.raises(TypeError, match="cannot fingerprint"):
        data_fingerprint([object()])


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(TypeError, match="JSON"):
        fit(
            build(),
            TRAIN[:8],
            loss_fn=cross_entropy_loss,
            config=TrainConfig(),
            cache_dir="/nonexistent-unused",
            cache_key_extra={"f": object()},
            progress=False,
        )
