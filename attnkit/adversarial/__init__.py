"""Adversarial and permuted attention: is the model's attention the only one that works?

* `adversarial_attention`: Jain & Wallace's (2019) per-instance search for attention that is
  far from the model's (JSD) yet gives the same prediction (|Δŷ| ≤ 0.05), batched.
* `permutation_scores`: J&W's permutation test, median |Δŷ| over random shuffles of the
  attention among the real tokens.
* `train_consistent_adversary`: Wiegreffe & Pinter's (2019) model-consistent adversarial
  training over a λ grid (TVD of predictions vs JSD of attention from the base model).

All three work on `attnkit.models.AdditiveClassifier` (its embed / encode / attend / decode
steps): the encoder runs once and only the attention varies.
"""

from attnkit.adversarial.consistent import (
    ConsistentAdversary,
    ConsistentAdversaryLoss,
    compare_to_base,
    consistent_adversary_loss,
    kl_divergence,
    train_consistent_adversary,
)
from attnkit.adversarial.per_instance import (
    AdversarialAttention,
    AdversaryConfig,
    AdversaryLoss,
    adversarial_attention,
    adversarial_attention_over,
    adversary_loss,
)
from attnkit.adversarial.permutation import (
    PermutationResult,
    permutation_scores,
    permutation_scores_over,
    random_permutations,
)

__all__ = [
    "AdversarialAttention",
    "AdversaryConfig",
    "AdversaryLoss",
    "ConsistentAdversary",
    "ConsistentAdversaryLoss",
    "PermutationResult",
    "adversarial_attention",
    "adversarial_attention_over",
    "adversary_loss",
    "compare_to_base",
    "consistent_adversary_loss",
    "kl_divergence",
    "permutation_scores",
    "permutation_scores_over",
    "random_permutations",
    "train_consistent_adversary",
]
