"""`attnkit explain` and `attnkit.explain(...)`: your own text, every method, one offline page.

    explanation = attnkit.explain("The keys to the cabinet are on the table.", model="minilm")
    explanation.save("page.html")      # or .png / .json

See `run` (what is computed), `models` (the model and the stated target), `page` (the files),
`names` (the methods). The heavy parts load on first use, so `attnkit --help` stays quick.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from attnkit.explain.names import DEFAULT_METHODS, METHODS, ExplainError

if TYPE_CHECKING:
    from attnkit.explain.run import Explanation, TextExplanation, explain

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "ExplainError",
    "Explanation",
    "TextExplanation",
    "explain",
]


def __getattr__(name: str) -> Any:
    if name in ("Explanation", "TextExplanation", "explain"):
        return getattr(importlib.import_module("attnkit.explain.run"), name)
    raise AttributeError(f"module 'attnkit.explain' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    # `attnkit.explain` names both this package and the function (as `attnkit.capture` does):
    # once the package is imported, `attnkit.explain(texts, ...)` calls the function.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("attnkit.explain.run").explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
