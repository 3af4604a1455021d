"""Hugging Face models inside a user's own module, found without `modules=`.

The wrapper's forward is run as is; for the call, each Hugging Face model inside it has
`config.output_attentions = True` (and eager attention, see `huggingface.eager_attention`), and a
forward hook keeps what it returned and the keyword inputs it received. The weights are then
read from those outputs exactly as for a bare Hugging Face model, with the masks and ids the
inner model saw.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from attnkit.attentions import AttentionInputError
from attnkit.capture.huggingface import _model_configs, attentions_from_outputs
from attnkit.capture.seq2seq import Seq2SeqAttentions


class WrappedRecorder:
    """Context manager: each outer HF model's `(name, model, inputs, outputs)` per call."""

    def __init__(self, models: list[tuple[str, nn.Module]]) -> None:
        self.models = models
        self.calls: list[tuple[str, nn.Module, dict[str, Any], Any]] = []
        self._handles: list[Any] = []
        self._previous: list[tuple[Any, Any]] = []

    def __enter__(self) -> WrappedRecorder:
        for name, model in self.models:
            for config in _model_configs(model):
                self._previous.append((config, config.output_attentions))
                config.output_attentions = True
            self._handles.append(model.register_forward_hook(self._hook(name), with_kwargs=True))
        return self

    def _hook(self, name: str) -> Any:
        def record(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
            inputs = dict(kwargs)
            names = list(inspect.signature(module.forward).parameters)
            inputs.update(zip(names, args, strict=False))  # positional inputs by their names
            self.calls.append((name, module, inputs, output))

        return record

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        for config, value in self._previous:
            config.output_attentions = value


def wrapped_attentions(recorder: WrappedRecorder, wrapper: nn.Module, tokenizer: Any) -> Any:
    """The `Attentions` (or `Seq2SeqAttentions`) of the one wrapped HF model call."""
    if not recorder.calls:
        names = [name for name, _ in recorder.models]
        raise AttentionInputError(
            f"{type(wrapper).__name__} contains Hugging Face models {names} but its forward "
            "called none of them; check the inputs, or capture the inner model directly."
        )
    if len(recorder.calls) > 1:
        called = [name for name, *_ in recorder.calls]
        raise AttentionInputError(
            f"{type(wrapper).__name__}.forward called Hugging Face models {len(called)} times "
            f"({called}); capture gives one model's attention per call. Capture the one you "
            "mean directly, e.g. capture(wrapper.<name>, **inputs), or pass modules=[...]."
        )
    name, model, inputs, outputs = recorder.calls[0]
    attentions = attentions_from_outputs(model, outputs, inputs, tokenizer, None)
    parts = (
        [attentions.encoder, attentions.decoder, attentions.cross]
        if isinstance(attentions, Seq2SeqAttentions)
        else [attentions]
    )
    for part in parts:
        part.extra["model"] = name
    return attentions
