"""Training: `train_model` (vocabulary → seed → model → fit → wrapper) and the checkpoint cache.

`attnkit.train` holds the trainer itself (`fit`, `TrainConfig`); `cache` its checkpoint cache.
`train_model` is imported lazily because `attnkit.train` imports `attnkit.training.cache`.
"""

from typing import Any

__all__ = ["TrainedModel", "train_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from attnkit.training import model

        return getattr(model, name)
    raise AttributeError(f"module 'attnkit.training' has no attribute {name!r}")
