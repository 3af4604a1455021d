"""Gradient-weighted and context-mixing attributions: one method per file.

| function | paper | returns |
|---|---|---|
| `gae` | Chefer, Gur & Wolf 2021 (ICCV), self-attention rule | (B, T, T) relevance R |
| `grad_rollout` | jacobgil/vit-explain's class-specific gradient rollout | (B, T, T) |
| `attention_norm` | Kobayashi et al. 2020, ‖Σ_h α f(x)‖ | (L, B, T, T) per layer |
| `globenc` | Modarressi et al. 2022 (NAACL) | (L, B, T, T), rolled out |
| `alti` | Ferrando, Gállego & Costa-jussà 2022 (EMNLP) | (L, B, T, T), rolled out |
| `value_zeroing` | Mohebbi et al. 2023 (EACL) | (L, B, T, T) per layer |
| `contribution_rollout` | Abnar & Zuidema 2020's rollout of any per-layer contribution | (L, B, T, T) |

Supported models: Hugging Face BERT, RoBERTa and DistilBERT encoders (all-MiniLM-L6-v2 is a
BERT) and ViT (pre-LN), with or without a classification head (the gradient methods need one),
and the kit's `GPT2Encoder` (pre-LN). `inputs` is the tokenizer's output and must carry
`attention_mask`, or `{"pixel_values": (B, C, H, W)}` for a ViT (every patch is real);
`target` is a class index, a (B,) tensor, or None for the predicted class; the gradient methods
explain the target's logit. AttnLRP (Achtibat et al. 2024) is not included: the `lxt` package
(2.1) imports names that transformers 5 removed (`find_pruneable_heads_and_indices`).
"""

from attnkit.relevance._encoder import RelevanceInputError
from attnkit.relevance.aggregate import contribution_rollout
from attnkit.relevance.alti import alti
from attnkit.relevance.attention_norm import attention_norm
from attnkit.relevance.gae import gae
from attnkit.relevance.globenc import globenc
from attnkit.relevance.grad_rollout import grad_rollout
from attnkit.relevance.value_zeroing import value_zeroing

__all__ = [
    "RelevanceInputError",
    "alti",
    "attention_norm",
    "contribution_rollout",
    "gae",
    "globenc",
    "grad_rollout",
    "value_zeroing",
]
