"""`Seq2SeqAttentions`, the three attention kinds of an encoder–decoder model.

Defined in `attnkit.attentions` (beside `Attentions`, so propagation can refuse it with a clear
message); imported here for `from attnkit.capture.seq2seq import Seq2SeqAttentions`.
"""

from attnkit.attentions import Seq2SeqAttentions

__all__ = ["Seq2SeqAttentions"]
