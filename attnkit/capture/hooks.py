"""Hook route: collect attention weights from named submodules of any `nn.Module`.

See the module contract in `attnkit.capture`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.attentions import AttentionInputError

ModuleSelector = Sequence[str] | Callable[[str, nn.Module], bool] | type[nn.Module]

CONTRACT = (
    "an attention module must return (output, weights) with weights shaped (B, H, T, S) or "
    "(B, T, S), or store them in self.last_attention during forward"
)

# nn.MultiheadAttention.forward's parameters after (query, key, value), in order.
_MHA_OPTIONAL = (
    "key_padding_mask",
    "need_weights",
    "attn_mask",
    "average_attn_weights",
    "is_causal",
)


def _attention_like_names(model: nn.Module) -> list[str]:
    """Names of submodules that look like attention, to suggest in error messages."""
    return [
        name
        for name, module in model.named_modules()
        if name and ("att" in name.lower() or "att" in type(module).__name__.lower())
    ]


def select_modules(model: nn.Module, modules: ModuleSelector | None) -> list[tuple[str, nn.Module]]:
    """Resolve `modules=` to `(name, module)` pairs; raises when nothing matches.

    None finds `nn.MultiheadAttention` and modules with a `last_attention` attribute;
    a sequence gives module names ("" is the model itself); a class selects its instances;
    a callable `(name, module) -> bool` is a predicate.
    """
    named = dict(model.named_modules())
    if modules is None:
        chosen = [
            (name, module)
            for name, module in named.items()
            if isinstance(module, nn.MultiheadAttention) or hasattr(module, "last_attention")
        ]
    elif isinstance(modules, type):
        chosen = [(name, module) for name, module in named.items() if isinstance(module, modules)]
    elif callable(modules):
        chosen = [(name, module) for name, module in named.items() if modules(name, module)]
    else:
        if isinstance(modules, str):
            modules = [modules]
        missing = [name for name in modules if name not in named]
        if missing:
            hints = {name: difflib.get_close_matches(name, list(named), n=3) for name in missing}
            raise AttentionInputError(
                f"{type(model).__name__} has no submodules named {missing} (closest: {hints}). "
                f"Names come from model.named_modules(); attention-like ones: "
                f"{_attention_like_names(model)[:20]}."
            )
        chosen = [(name, named[name]) for name in modules]
    if not chosen:
        raise AttentionInputError(
            f"no attention modules found in {type(model).__name__}. Pass modules=[names] or a "
            f"predicate (name, module) -> bool; attention-like submodules: "
            f"{_attention_like_names(model)[:20]}. Contract: {CONTRACT}."
        )
    return chosen


def _force_mha_weights(
    module: nn.Module, args: tuple, kwargs: dict[str, Any]
) -> tuple[tuple, dict[str, Any]]:
    """Forward pre-hook making `nn.MultiheadAttention` return per-head weights."""
    kwargs = {**dict(zip(_MHA_OPTIONAL, args[3:], strict=False)), **kwargs}
    kwargs["need_weights"] = True
    kwargs["average_attn_weights"] = False
    return args[:3], kwargs


class AttentionRecorder:
    """Context manager hooking the selected modules; `layers` holds `(name, (B, H, T, S))` per call.

    `silent` lists modules that ran without producing weights; `key_padding_masks` holds the
    `(B, S)` real-token masks that `nn.MultiheadAttention` calls received.
    """

    def __init__(self, selected: list[tuple[str, nn.Module]]) -> None:
        self.selected = selected
        self.layers: list[tuple[str, Tensor]] = []
        self.silent: list[str] = []
        self.key_padding_masks: list[Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._stored_before: dict[int, Any] = {}  # module id -> last_attention before forward
        self._unbatched: dict[int, bool] = {}  # MHA module id -> query had no batch dim

    def __enter__(self) -> AttentionRecorder:
        for name, module in self.selected:
            if isinstance(module, nn.MultiheadAttention):
                self._handles.append(
                    module.register_forward_pre_hook(_force_mha_weights, with_kwargs=True)
                )
            self._handles.append(module.register_forward_pre_hook(self._remember, with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._record_hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _remember(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Note what a forward starts from: the old `last_attention`, MHA batching and mask."""
        self._stored_before[id(module)] = getattr(module, "last_attention", None)
        if isinstance(module, nn.MultiheadAttention):
            query = args[0] if args else kwargs["query"]
            self._unbatched[id(module)] = query.dim() == 2
            padding = kwargs.get("key_padding_mask")
            if padding is not None and padding.dim() == 2:
                # MHA marks padding with True (bool) or -inf (float); attnkit marks real tokens.
                real = ~padding if padding.dtype == torch.bool else padding == 0
                self.key_padding_masks.append(real)

    def _record_hook(self, name: str) -> Callable[[nn.Module, tuple, Any], None]:
        def record(module: nn.Module, args: tuple, output: Any) -> None:
            weights = self._weights_of(module, output)
            if weights is None:
                self.silent.append(f"{name or '<model>'} ({type(module).__name__})")
                return
            if weights.dim() == 3:
                # (H, T, S) from unbatched MHA input, else a single-head (B, T, S) map.
                unbatched = self._unbatched.get(id(module), False)
                weights = weights.unsqueeze(0) if unbatched else weights.unsqueeze(1)
            if weights.dim() != 4:
                raise AttentionInputError(
                    f"module {name!r} ({type(module).__name__}) gave attention weights of shape "
                    f"{tuple(weights.shape)}; {CONTRACT}."
                )
            self.layers.append((name, weights))  # (B, H, T, S)

        return record

    def _weights_of(self, module: nn.Module, output: Any) -> Tensor | None:
        """The weights a module produced in this call, per the contract, or None."""
        stored = getattr(module, "last_attention", None)
        if isinstance(stored, Tensor) and stored is not self._stored_before.get(id(module)):
            return stored
        if isinstance(output, tuple | list) and len(output) >= 2:
            second = output[1]
            if isinstance(second, Tensor) and second.dim() in (3, 4):
                return second
        return None


def recorded_padding_mask(recorder: AttentionRecorder) -> Tensor | None:
    """The first real-token mask seen by a `nn.MultiheadAttention` call, if any."""
    return recorder.key_padding_masks[0] if recorder.key_padding_masks else None


def check_recorded(recorder: AttentionRecorder, model: nn.Module) -> None:
    """Raise when selected modules ran without weights, or nothing was captured at all."""
    if recorder.silent:
        raise AttentionInputError(
            f"modules {recorder.silent} ran but returned no attention weights; {CONTRACT}. "
            "Hugging Face attention modules return weights only with eager attention."
        )
    if not recorder.layers:
        names = [name or "<model>" for name, _ in recorder.selected]
        raise AttentionInputError(
            f"hooks captured nothing: none of the selected modules {names[:20]} ran during "
            f"{type(model).__name__}.forward. Check modules= and that the inputs reach them."
        )


@contextmanager
def mha_fastpath_disabled() -> Iterator[None]:
    """Turn off PyTorch's fused MHA / TransformerEncoder fast path for the block."""
    # The fused kernels skip nn.MultiheadAttention.forward, and so its hooks, entirely.
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
