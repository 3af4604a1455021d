"""Training every model the kit trains: one package.

* `trainer`: `fit` (seeded, early-stopped on dev, cached), `TrainConfig`, `evaluate`, `predict`,
  the loss and metric every classifier uses;
* `model`: `train_model`, vocabulary → seed → model → `fit` → a `TrainedModel` that keeps
  model, vocabulary and collate together;
* `cache`: the checkpoint cache `fit` reads and writes (content fingerprints, keys, entries).
"""

from attnkit.train.cache import CacheWarning, data_fingerprint, default_cache_dir
from attnkit.train.model import TrainedModel, train_model
from attnkit.train.trainer import (
    Batch,
    Collate,
    EpochStats,
    LossFn,
    MetricFn,
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy_loss,
    evaluate,
    fit,
    predict,
    set_seed,
)

__all__ = [
    "Batch",
    "CacheWarning",
    "Collate",
    "EpochStats",
    "LossFn",
    "MetricFn",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "accuracy",
    "cross_entropy_loss",
    "data_fingerprint",
    "default_cache_dir",
    "evaluate",
    "fit",
    "predict",
    "set_seed",
    "train_model",
]
