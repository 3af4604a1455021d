"""`fit`: one small, seeded, cached trainer for every model the paper reproductions train.

Batch contract
--------------
``train_data`` / ``dev_data`` are sequences of examples (anything with ``len`` and
``__getitem__``). ``collate(list_of_examples)`` turns a slice of them into a *batch*
(default: :func:`torch.utils.data.default_collate`). The trainer moves every tensor in
the batch (recursively through dicts, lists and tuples) to ``config.device`` and hands the
batch, untouched otherwise, to ``loss_fn(model, batch) -> scalar loss tensor`` and
``metric_fn(model, batch) -> (correct, total) | float``. So a model can take ``**batch``
(dict batches; :func:`cross_entropy_loss` and :func:`accuracy` strip the ``"labels"`` key
and call ``model(**inputs)``) or ``(inputs, labels)`` (tuple batches; ``model(inputs)``).

Reproducibility and caching
---------------------------
:func:`fit` seeds Python, NumPy and torch from ``config.seed`` and shuffles with a local
NumPy generator, so building the model after ``set_seed(config.seed)`` makes the whole
run a function of the seed: same seed, bitwise-identical weights and history on CPU.
Finished runs are stored under ``<cache_dir>/<key>.safetensors`` + ``<key>.json``, where
the key hashes the model (class, ``repr``, state_dict shapes and *initial* weights), the
:class:`TrainConfig`, the data's content, the callables' names and ``cache_key_extra``.
Code changes inside the model or the loss are not visible to the key: bump a version in
``cache_key_extra`` when they happen.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from attnkit.train import cache as checkpoint_cache
from attnkit.train.cache import CacheWarning, data_fingerprint, default_cache_dir

# The trainer's own names; `attnkit.train` exports them with the cache's and `train_model`.
__all__ = [
    "EpochStats",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "cross_entropy_loss",
    "evaluate",
    "fit",
    "predict",
    "set_seed",
]

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
MetricFn = Callable[[nn.Module, Batch], tuple[float, float] | float | torch.Tensor]
Collate = Callable[[list[Any]], Batch]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run; all of it is part of the cache key.

    ``patience``: stop after this many epochs without dev improvement (``None``: run all
    epochs). With dev data the best epoch's weights are restored either way.
    ``fused``: torch's fused Adam/AdamW kernel (same update rule, one kernel for every
    parameter): about 8x faster steps on CPU for models with a large embedding table, with
    float rounding that differs from the default implementation, so it is part of the key.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Literal["adam", "adamw"] = "adam"
    patience: int | None = None
    max_grad_norm: float | None = None
    seed: int = 0
    device: str = "cpu"
    fused: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1, got {self.patience}")


@dataclass(frozen=True)
class EpochStats:
    """One epoch (1-based) of history; dev fields are ``None`` without dev data / metric."""

    epoch: int
    train_loss: float
    dev_loss: float | None = None
    dev_metric: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """What :func:`fit` did. The trained (best) weights are in the model itself.

    ``train_time_s`` is how long the original training took (also on a cache hit);
    ``wall_time_s`` is how long this call took. ``cache_path`` (the weights file) is
    ``None`` when the cache was off or the entry could not be written.
    """

    history: list[EpochStats]
    best_epoch: int | None
    stopped_early: bool
    train_time_s: float
    wall_time_s: float
    from_cache: bool
    cache_key: str | None = None
    cache_path: Path | None = None


# --------------------------------------------------------------------------- seeding


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def _deterministic_algorithms() -> Iterator[None]:
    """Turn on torch's deterministic algorithms for the block, then restore the old setting.

    ``warn_only`` because an op without a deterministic implementation should not abort a
    CPU training run; torch then warns instead, which is the signal we want.
    """
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled, warn_only=was_warn_only)


# --------------------------------------------------------------------------- batches


def _split_labels(batch: Batch) -> tuple[Any, torch.Tensor]:
    """``(inputs, labels)`` from a dict batch with a ``labels`` key or a 2-tuple batch."""
    if isinstance(batch, Mapping):
        inputs = {name: value for name, value in batch.items() if name != "labels"}
        return inputs, batch["labels"]
    inputs, labels = batch
    return inputs, labels


def _call_model(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Call with ``**inputs`` for dicts, positionally otherwise; unwrap ``.logits`` outputs."""
    output = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    return output.logits if hasattr(output, "logits") else output


def cross_entropy_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of ``model(inputs)`` logits against the batch's labels."""
    inputs, labels = _split_labels(batch)
    return nn.functional.cross_entropy(_call_model(model, inputs), labels)


def accuracy(model: nn.Module, batch: Batch) -> tuple[int, int]:
    """``(correct, total)`` of argmax predictions against the batch's labels."""
    inputs, labels = _split_labels(batch)
    predictions = _call_model(model, inputs).argmax(dim=-1)
    return int((predictions == labels).sum()), labels.numel()


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {name: _to_device(value, device) for name, value in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


def _batches(
    data: Sequence[Any], order: Sequence[int], batch_size: int, collate: Collate
) -> Iterator[tuple[int, Batch]]:
    """Yield ``(number_of_examples, collated_batch)`` over ``data`` in ``order``."""
    for start in range(0, len(order), batch_size):
        chunk = [data[int(index)] for index in order[start : start + batch_size]]
        yield len(chunk), collate(chunk)


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Sequence[Any],
    *,
    loss_fn: LossFn,
    metric_fn: MetricFn | None = None,
    collate: Collate = default_collate,
    batch_size: int = 64,
) -> tuple[float, float | None]:
    """Example-weighted mean loss and metric over ``data`` in eval mode.

    ``metric_fn`` may return ``(correct, total)`` (pooled as sum/sum) or a per-batch
    float (weighted by the batch's example count).
    """
    was_training = model.training
    model.eval()
    device = _model_device(model)
    loss_sum, correct_sum, total_sum, metric_sum, n_examples = 0.0, 0.0, 0.0, 0.0, 0
    try:
        for n, batch in _batches(data, range(len(data)), batch_size, collate):
            batch = _to_device(batch, device)
            loss_sum += float(loss_fn(model, batch)) * n
            n_examples += n
            if metric_fn is not None:
                value = metric_fn(model, batch)
                if isinstance(value, tuple):
                    correct_sum += float(value[0])
                    total_sum += float(value[1])
                else:
                    metric_sum += float(value) * n
    finally:
        model.train(was_training)
    if n_examples == 0:
        raise ValueError("cannot evaluate on empty data")
    metric = None
    if metric_fn is not None:
        metric = correct_sum / total_sum if total_sum else metric_sum / n_examples
    return loss_sum / n_examples, metric


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Sequence[Any],
    collate: Collate = default_collate,
    batch_size: int = 64,
    forward: Callable[[nn.Module, Batch], Any] | None = None,
) -> torch.Tensor | list[Any]:
    """Run the model over ``data`` in eval mode without gradients, batch by batch.

    ``forward(model, batch)`` defaults to calling the model on the batch's inputs (labels,
    if present, are dropped). Tensor outputs come back on CPU concatenated along dim 0;
    other outputs as a list with one entry per batch.
    """
    forward = forward or (lambda m, batch: _call_model(m, _drop_labels(batch)))
    was_training = model.training
    model.eval()
    device = _model_device(model)
    try:
        outputs = [
            _to_device(forward(model, _to_device(batch, device)), torch.device("cpu"))
            for _, batch in _batches(data, range(len(data)), batch_size, collate)
        ]
    finally:
        model.train(was_training)
    if outputs and all(isinstance(output, torch.Tensor) for output in outputs):
        return torch.cat(outputs, dim=0)
    return outputs


def _drop_labels(batch: Batch) -> Any:
    if isinstance(batch, Mapping):
        return {name: value for name, value in batch.items() if name != "labels"}
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0]
    return batch


# --------------------------------------------------------------------------- training


def _parameter_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """One group at `lr`, plus one per submodule with an `lr_mult` attribute (its parameters
    at `lr * lr_mult`, as the DCN offset layers of the LIT repository)."""
    scaled, groups = set(), []
    for module in model.modules():
        mult = getattr(module, "lr_mult", None)
        if mult is not None:
            params = [p for p in module.parameters() if id(p) not in scaled]
            scaled.update(id(p) for p in params)
            groups.append({"params": params, "lr": lr * float(mult)})
    rest = [p for p in model.parameters() if id(p) not in scaled]
    return [{"params": rest, "lr": lr}, *groups]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    groups = _parameter_groups(model, config.lr)
    options = {"fused": True} if config.fused else {}
    return optimizer_class(groups, lr=config.lr, weight_decay=config.weight_decay, **options)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _train(
    model: nn.Module,
    train_data: Sequence[Any],
    dev_data: Sequence[Any] | None,
    *,
    loss_fn: LossFn,
    metric_fn: MetricFn | None,
    collate: Collate,
    config: TrainConfig,
    progress: bool,
) -> tuple[list[EpochStats], int | None, bool]:
    """The training loop proper; returns ``(history, best_epoch, stopped_early)``."""
    set_seed(config.seed)
    # A local generator, so user code drawing from the global NumPy RNG cannot shift the order.
    shuffle_rng = np.random.default_rng(config.seed)
    optimizer = _make_optimizer(model, config)
    device = _model_device(model)
    batches_per_epoch = math.ceil(len(train_data) / config.batch_size)

    history: list[EpochStats] = []
    best_score, best_state, best_epoch = -math.inf, None, None
    epochs_without_improvement, stopped_early = 0, False
    epoch_bar = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not progress)
    for epoch in epoch_bar:
        model.train()
        order = shuffle_rng.permutation(len(train_data))
        loss_sum = 0.0
        batches = _batches(train_data, order, config.batch_size, collate)
        for n, batch in tqdm(
            batches,
            total=batches_per_epoch,
            desc=f"epoch {epoch}",
            leave=False,
            disable=not progress,
        ):
            loss = loss_fn(model, _to_device(batch, device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            loss_sum += loss.item() * n
        stats = EpochStats(epoch=epoch, train_loss=loss_sum / len(train_data))

        if dev_data is not None:
            dev_loss, dev_metric = evaluate(
                model,
                dev_data,
                loss_fn=loss_fn,
                metric_fn=metric_fn,
                collate=collate,
                batch_size=config.batch_size,
            )
            stats = dataclasses.replace(stats, dev_loss=dev_loss, dev_metric=dev_metric)
            # Higher is better for the metric; without one, lower dev loss is better.
            score = dev_metric if dev_metric is not None else -dev_loss
            if score > best_score:  # NaN never counts as an improvement
                best_score, best_state, best_epoch = score, _snapshot(model), epoch
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
        history.append(stats)
        epoch_bar.set_postfix(
            {
                k: f"{v:.4g}"
                for k, v in dataclasses.asdict(stats).items()
                if k != "epoch" and v is not None
            }
        )
        if config.patience is not None and epochs_without_improvement >= config.patience:
            stopped_early = True
            break
    epoch_bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    elif dev_data is None and history:
        best_epoch = history[-1].epoch
    return history, best_epoch, stopped_early


def fit(
    model: nn.Module,
    train_data: Sequence[Any],
    dev_data: Sequence[Any] | None = None,
    *,
    loss_fn: LossFn,
    config: TrainConfig,
    metric_fn: MetricFn | None = None,
    collate: Collate = default_collate,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_key_extra: Any = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place (or load it from the checkpoint cache) and return the run.

    See the module docstring for the batch contract. Early stopping monitors the dev
    metric when ``metric_fn`` is given, else the dev loss; with dev data the best epoch's
    weights are restored. The model is moved to ``config.device`` and left in eval mode.

    A submodule with an ``lr_mult`` attribute trains at ``config.lr * lr_mult`` (one optimizer
    parameter group per such module; e.g. the offset layer of deformable token merging).

    ``cache=False`` skips the cache entirely; ``cache_dir`` defaults to
    :func:`default_cache_dir`. ``cache_key_extra`` (JSON-serialisable) goes into the key.
    An unusable entry triggers a :class:`CacheWarning` and a retrain that rewrites it.
    """
    started = time.perf_counter()
    if len(train_data) == 0:
        raise ValueError("train_data is empty")
    model.to(config.device)

    key, key_inputs, directory = None, None, None
    if cache:
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key_inputs = _cache_key_inputs(
            model, train_data, dev_data, config, loss_fn, metric_fn, collate, cache_key_extra
        )
        key = checkpoint_cache.key_for(key_inputs)
        weights_path = directory / f"{key}.safetensors"
        entry = checkpoint_cache.load_entry(
            directory,
            key,
            expected=checkpoint_cache.tensor_specs(model.state_dict()),
            parse_metadata=lambda metadata: _result_from_metadata(metadata, key, weights_path),
        )
        if entry is not None:
            tensors, cached = entry
            model.load_state_dict(tensors)
            model.eval()
            return dataclasses.replace(cached, wall_time_s=time.perf_counter() - started)

    with _deterministic_algorithms():
        history, best_epoch, stopped_early = _train(
            model,
            train_data,
            dev_data,
            loss_fn=loss_fn,
            metric_fn=metric_fn,
            collate=collate,
            config=config,
            progress=progress,
        )
    model.eval()
    train_time_s = time.perf_counter() - started
    result = TrainResult(
        history=history,
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        train_time_s=train_time_s,
        wall_time_s=train_time_s,
        from_cache=False,
    )
    if directory is not None and key is not None:
        try:
            weights_path = checkpoint_cache.write_entry(
                directory, key, model.state_dict(), _metadata_for(result, key_inputs)
            )
            result = dataclasses.replace(result, cache_key=key, cache_path=weights_path)
        except OSError as error:
            # The training itself succeeded; losing only the cache is not worth failing for.
            warnings.warn(
                f"could not write cache entry {key} in {directory}: {error}",
                CacheWarning,
                stacklevel=2,
            )
            result = dataclasses.replace(result, cache_key=key)
    return dataclasses.replace(result, wall_time_s=time.perf_counter() - started)


def _cache_key_inputs(
    model: nn.Module,
    train_data: Sequence[Any],
    dev_data: Sequence[Any] | None,
    config: TrainConfig,
    loss_fn: LossFn,
    metric_fn: MetricFn | None,
    collate: Collate,
    cache_key_extra: Any,
) -> dict[str, Any]:
    """Everything the trained weights depend on that we can see, as JSON-ready data."""
    try:
        checkpoint_cache.canonical_json(cache_key_extra)
    except TypeError as error:
        raise TypeError(f"cache_key_extra must be JSON-serialisable: {error}") from None
    state = model.state_dict()
    return {
        "format": checkpoint_cache.CACHE_FORMAT_VERSION,
        "model": {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            # repr carries hyper-parameters that have no weights (dropout p, activations).
            "repr": repr(model),
            "tensors": checkpoint_cache.tensor_specs(state),
            # Same shapes but other starting weights (another init seed, another
            # pretrained checkpoint) must not share an entry.
            "initial_weights_sha256": checkpoint_cache.weights_fingerprint(state),
        },
        "train_config": _config_key(config),
        "data": {"train": data_fingerprint(train_data), "dev": data_fingerprint(dev_data)},
        "functions": {
            "loss_fn": checkpoint_cache.callable_name(loss_fn),
            "metric_fn": checkpoint_cache.callable_name(metric_fn),
            "collate": checkpoint_cache.callable_name(collate),
        },
        "extra": cache_key_extra,
    }


def _config_key(config: TrainConfig) -> dict[str, Any]:
    """The config as it enters the cache key; `fused` only when on, so that the keys of runs
    made before the option existed (all unfused) stay valid."""
    settings = dataclasses.asdict(config)
    if not config.fused:
        del settings["fused"]
    return settings


def _metadata_for(result: TrainResult, key_inputs: Any) -> dict[str, Any]:
    return {
        "history": [dataclasses.asdict(stats) for stats in result.history],
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_time_s": result.train_time_s,
        "key_inputs": key_inputs,
        "torch_version": torch.__version__,
        "created": datetime.now(UTC).isoformat(),
    }


def _result_from_metadata(metadata: dict[str, Any], key: str, weights_path: Path) -> TrainResult:
    return TrainResult(
        history=[EpochStats(**stats) for stats in metadata["history"]],
        best_epoch=metadata["best_epoch"],
        stopped_early=bool(metadata["stopped_early"]),
        train_time_s=float(metadata["train_time_s"]),
        wall_time_s=0.0,
        from_cache=True,
        cache_key=key,
        cache_path=weights_path,
    )
