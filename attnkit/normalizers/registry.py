"""Normalisers by name: `get_normalizer("sparsemax")`, for configs and notebook parameters."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from attnkit.normalizers.rela import ReLA
from attnkit.normalizers.softmax import Softmax
from attnkit.normalizers.sparsemax import Entmax15, Sparsemax
from attnkit.normalizers.topk import TopK

NORMALIZERS: dict[str, type[nn.Module]] = {
    "softmax": Softmax,
    "sparsemax": Sparsemax,
    "entmax15": Entmax15,
    "rela": ReLA,
    "topk": TopK,
}


def get_normalizer(name: str, **kwargs: Any) -> nn.Module:
    """Build the normaliser module registered as `name` (see `NORMALIZERS`) with `kwargs`.

    Examples: `get_normalizer("softmax")`, `get_normalizer("topk", k=8)`,
    `get_normalizer("topk", div=4)`.

    Raises:
        ValueError: unknown name (the message lists the known ones), or a keyword the chosen
            normaliser does not take.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {name!r}; choose one of: {', '.join(NORMALIZERS)}.")
    cls = NORMALIZERS[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unexpected = sorted(set(kwargs) - set(accepted))
    if unexpected:
        raise ValueError(
            f"normalizer {key!r} does not take {', '.join(unexpected)}; "
            f"it takes: {', '.join(accepted)}."
        )
    return cls(**kwargs)
