"""A fake accelerator for device tests on a CPU-only machine.

`Accel` is a tensor subclass that reports device "meta" but keeps its values in a CPU tensor, so
computations give real numbers. Like CUDA, an op that mixes an `Accel` tensor with a CPU tensor
of one or more dimensions raises "Expected all tensors to be on the same device" (0-d CPU scalars,
packed-sequence lengths and host index tensors are allowed, as on CUDA); `.numpy()` needs
`.cpu()` first. Inside `FakeAccelerator()`, `.to("meta")` and factories with device="meta"
create `Accel` tensors and `.to("cpu")` / `.cpu()` read them back. `to_fake_accelerator(model)`
moves a module's parameters and buffers there. A recipe that feeds a CPU batch to a model on the
accelerator fails under it, as it would on a GPU.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

aten = torch.ops.aten
FAKE = torch.device("meta")


class Accel(torch.Tensor):
    @staticmethod
    def __new__(cls, inner, requires_grad=False):
        return torch.Tensor._make_wrapper_subclass(
            cls,
            inner.shape,
            dtype=inner.dtype,
            device=FAKE,
            requires_grad=requires_grad,
            strides=inner.stride(),
            storage_offset=inner.storage_offset(),
        )

    def __init__(self, inner, requires_grad=False):
        self.inner = inner

    def __repr__(self):
        return f"Accel({self.inner!r})"

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.numpy:
            raise TypeError("can't convert accelerator tensor to numpy; use Tensor.cpu() first")
        if func in (
            torch.Tensor.tolist,
            torch.Tensor.item,
            torch.Tensor.__bool__,
            torch.Tensor.__int__,
            torch.Tensor.__float__,
            torch.Tensor.__index__,
        ):
            return func(args[0].inner, *args[1:], **kwargs)  # a synchronising read, as on CUDA
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}

        def check(t):
            if isinstance(t, torch.Tensor) and not isinstance(t, Accel) and t.dim() > 0:
                raise RuntimeError(
                    f"Expected all tensors to be on the same device: {func} got a cpu tensor {tuple(t.shape)} beside accelerator tensors"
                )
            return t

        if func not in HOST_ARGUMENTS_ALLOWED:
            tree_map(check, (args, kwargs))
        if (
            func in (aten._to_copy.default,)
            and kwargs.get("device") is not None
            and torch.device(kwargs["device"]).type == "cpu"
        ):
            kw = dict(kwargs)
            kw.pop("device")
            return func(args[0].inner, **kw)

        def unwrap(t):
            return t.inner if isinstance(t, Accel) else t

        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
        if func in (aten._pack_padded_sequence.default, aten._pad_packed_sequence.default):
            return (Accel(out[0]), *out[1:])  # batch sizes / lengths stay on the host, as on CUDA
        return tree_map(
            lambda t: Accel(t) if isinstance(t, torch.Tensor) and not isinstance(t, Accel) else t,
            out,
        )


# Ops that take host (CPU) tensors beside device tensors on CUDA too: packed-sequence lengths
# and batch sizes, and CPU index tensors.
HOST_ARGUMENTS_ALLOWED = {
    aten._pack_padded_sequence.default,
    aten._pad_packed_sequence.default,
    aten.lstm.data,
    aten.index.Tensor,
    aten.index_put_.default,
    aten.index_put.default,
    aten._index_put_impl_.default,
    aten.index_add.default,  # backward of indexing with host indices
}


class FakeAccelerator(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        dev = kwargs.get("device")
        if dev is not None and torch.device(dev).type == "meta":
            kw = dict(kwargs)
            kw["device"] = torch.device("cpu")
            if func is aten._to_copy.default and isinstance(args[0], Accel):
                kw.pop("device")
                return func(*args, **kw)
            return Accel(func(*args, **kw))
        return func(*args, **kwargs)


def to_fake_accelerator(model):
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = torch.nn.Parameter(
                    Accel(p.detach().clone()), requires_grad=p.requires_grad
                )
        for name, b in list(module._buffers.items()):
            if b is not None:
                module._buffers[name] = Accel(b.clone())
        if isinstance(module, torch.nn.RNNBase):
            module._init_flat_weights()
    return model
