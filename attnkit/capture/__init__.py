"""Capture the attention weights of every layer of a model as `attnkit.Attentions`.

`capture(model, **inputs)` runs one forward pass and returns `(L, B, H, T, S)` weights with the
padding mask (and token strings when a tokenizer is passed).

Routes, picked in this order (`capture.api._run`):

* Hugging Face models: the weights come from `output_attentions=True` with eager attention
  (switched on for the call when the model was loaded with sdpa/flash, then switched back).
  Encoder–decoder models give a `Seq2SeqAttentions` (encoder, decoder, cross).
* `nn.Transformer`-style models (`nn.TransformerEncoderLayer` + `nn.TransformerDecoderLayer`):
  `Seq2SeqAttentions` from their `nn.MultiheadAttention` layers (`torch_seq2seq`).
* A user's module wrapping a Hugging Face model: read as the bare model is (`wrapped`).
* Any `torch.nn.Module`: forward hooks on attention submodules, found automatically
  (`nn.MultiheadAttention`, modules with a `last_attention` attribute) or named with `modules=`.
* Nothing found that way: every `F.scaled_dot_product_attention` call of the forward is a layer,
  its weights computed from q, k and the mask during the call (`sdpa`).

The tokenizer's output may be passed positionally: `capture(model, tokenizer(texts, ...))`.

Module contract (what an attention module must do to be captured by hooks):

    A module's forward returns `(output, weights)`, with `weights` shaped `(B, H, T, S)` or
    `(B, T, S)` (single head) as the second element; or the module stores those weights in
    `self.last_attention` during forward. Set `self.last_attention = None` in `__init__` so
    `capture` finds the module without `modules=`. Each call of such a module is one layer,
    in call order.
"""

import sys
import types
from typing import Any

from attnkit.capture.api import capture
from attnkit.capture.seq2seq import Seq2SeqAttentions

__all__ = ["Seq2SeqAttentions", "capture"]


class _CallablePackage(types.ModuleType):
    # `attnkit.capture` names both this package and the function. Once the package is imported
    # (e.g. by `import attnkit.capture.hooks`) the attribute on `attnkit` is the package, so it
    # must be callable for `attnkit.capture(model, **inputs)` to keep working.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return capture(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
