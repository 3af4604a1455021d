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

Conventions (model, inputs, target, output) are in `attnkit.importance._common`.
"""

from attnkit.importance._common import DegenerateScoreWarning, ImportanceInputError
from attnkit.importance.blank_out import blank_out
from attnkit.importance.closed_form import lopardo_gradient
from attnkit.importance.gradient import embedding_attribution, gradient_x_input, input_gradient
from attnkit.importance.integrated_gradients import integrated_gradients
from attnkit.importance.lime import (
    HeadAdditivity,
    LimeExplanation,
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
    "blank_out",
    "embedding_attribution",
    "gradient_x_input",
    "input_gradient",
    "integrated_gradients",
]
