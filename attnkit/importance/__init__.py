"""Post-hoc token importance: one `(B, T)` score per token, lined up with attention rows.

| function | paper | what it measures |
|---|---|---|
| `blank_out` | Abnar & Zuidema 2020 | drop in the target's probability when a token becomes UNK |
| `input_gradient` | Abnar & Zuidema 2020 | `|sum_d dy/de_{t,d}|` at the token embeddings |
| `gradient_x_input` | Abnar & Zuidema 2020 (code) | `|sum_d dy/de_{t,d} * e_{t,d}|` |
| `integrated_gradients` | Sundararajan et al. 2017 | path integral of gradients from a PAD/UNK baseline |
| `lime_text` | Ribeiro et al. 2016; Lopardo et al. 2024 | weighted linear surrogate on word presence |
| `lime_approximation` | Lopardo et al. 2024, Eq. 19 | LIME's coefficients predicted from attention and values |
| `lopardo_gradient` | Lopardo et al. 2024 | the closed-form gradient of the single-layer attention model |

One signature, captum-like: `f(model, inputs, target=None, **options) -> (B, T)`, with
`inputs` the tokenizer's output; the defaults they share (explained output, sign, reduction,
special tokens and replacement ids from `tokenizer=`) are stated once in
`attnkit.importance.defaults`. Classifiers, causal LMs (next-token target), encoder–decoders
(decoder-token target) and, for the gradient, integrated gradients and blank-out (patch
occlusion), image models (`{"pixel_values": ...}`, one score per patch).

| `lime` | Ribeiro et al. 2016 | `lime_text` per example, with the shared signature |
| `patch_occlusion` | Zeiler & Fergus 2014 | blank-out for images, one patch at a time |

Older call forms still work: `blank_out(forward_fn, input_ids, attention_mask, target, unk_id)`
(= `blank_out_ids`), `lime_text(model, input_ids, attention_mask, target)` (one document, a
`LimeExplanation`).
"""

from attnkit.importance._common import DegenerateScoreWarning, ImportanceInputError
from attnkit.importance.blank_out import blank_out, blank_out_ids
from attnkit.importance.closed_form import lopardo_gradient
from attnkit.importance.defaults import UnscoredWordWarning
from attnkit.importance.gradient import embedding_attribution, gradient_x_input, input_gradient
from attnkit.importance.images import patch_occlusion
from attnkit.importance.integrated_gradients import integrated_gradients
from attnkit.importance.lime import (
    HeadAdditivity,
    LimeExplanation,
    lime,
    lime_approximation,
    lime_approximation_terms,
    lime_head_additivity,
    lime_text,
)

__all__ = [
    "DegenerateScoreWarning",
    "HeadAdditivity",
    "LimeExplanation",
    "lime_approximation",
    "lime_approximation_terms",
    "lime_head_additivity",
    "lime_text",
    "lopardo_gradient",
    "ImportanceInputError",
    "UnscoredWordWarning",
    "blank_out",
    "blank_out_ids",
    "lime",
    "patch_occlusion",
    "embedding_attribution",
    "gradient_x_input",
    "input_gradient",
    "integrated_gradients",
]
