"""The method names and the error of `attnkit explain`, importable without torch (the CLI's
parser is built from them)."""

from __future__ import annotations

from attnkit.errors import AttnkitError

ATTENTION_METHODS = ("raw", "rollout", "flow")
IMPORTANCE_METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "blank_out", "lime")
# attnkit.relevance: context mixing of the encoder (first token's row, per layer) ...
MIXING_METHODS = ("attention_norm", "globenc", "alti", "value_zeroing")
# ... and gradient-weighted relevance of a classifier's logit (first token's row)
RELEVANCE_METHODS = ("gae", "grad_rollout")
METHODS = ATTENTION_METHODS + IMPORTANCE_METHODS + MIXING_METHODS + RELEVANCE_METHODS
DEFAULT_METHODS = ("raw", "rollout", "flow", "gradient", "integrated_gradients", "blank_out")


class ExplainError(AttnkitError):
    """Input `attnkit explain` cannot work with; the message says what to change."""


def check_methods(methods: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Method names as a list (a comma-separated string is accepted); unknown names raise."""
    if methods is None:
        return list(DEFAULT_METHODS)
    if isinstance(methods, str):
        methods = [name.strip() for name in methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ExplainError(
            f"unknown method(s) {unknown or list(methods)!r}; known methods: {', '.join(METHODS)}."
        )
    return list(dict.fromkeys(methods))
