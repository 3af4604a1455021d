"""attnkit: attention capture, rollout, flow, post-hoc importance and sparse attention,
with one reproducible notebook per paper.

Public names are imported lazily so that `import attnkit` (and the `attnkit` command) stays quick;
`attnkit.rollout` loads torch and the propagation code on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Attentions": "attnkit.attentions",
    "AttentionInputError": "attnkit.attentions",
    "claim": "attnkit.record",
    "used_data": "attnkit.record",
    "run_report": "attnkit.report",
    "rollout": "attnkit.propagate",
    "flow": "attnkit.propagate",
    "rollout_per_head": "attnkit.propagate",
    "flow_per_head": "attnkit.propagate",
    "capture": "attnkit.capture",
    "explain": "attnkit.explain",
    "ExplainError": "attnkit.explain",
    "AttnkitError": "attnkit.errors",
    "Seq2SeqAttentions": "attnkit.capture",
    "spearman": "attnkit.metrics",
    "kendall": "attnkit.metrics",
    "mean_std": "attnkit.metrics",
    "fraction_significant": "attnkit.metrics",
    "jsd": "attnkit.metrics",
    "tvd": "attnkit.metrics",
    "entropy": "attnkit.metrics",
    "sparsity": "attnkit.metrics",
    "MetricInputError": "attnkit.metrics",
    "blank_out": "attnkit.importance",
    "input_gradient": "attnkit.importance",
    "gradient_x_input": "attnkit.importance",
    "integrated_gradients": "attnkit.importance",
    "ImportanceInputError": "attnkit.importance",
    "lime_text": "attnkit.importance",
    "lime": "attnkit.importance",
    "patch_occlusion": "attnkit.importance",
    "lopardo_gradient": "attnkit.importance",
    "AdditiveClassifier": "attnkit.models.additive",
    "AdditiveConfig": "attnkit.models.additive",
    "adversarial_attention": "attnkit.adversarial",
    "permutation_scores": "attnkit.adversarial",
    "mean_attention_distance": "attnkit.vision",
    "patch_map": "attnkit.vision",
    "cls_patch_map": "attnkit.vision",
    "train_consistent_adversary": "attnkit.adversarial",
    "gae": "attnkit.relevance",
    "grad_rollout": "attnkit.relevance",
    "attention_norm": "attnkit.relevance",
    "globenc": "attnkit.relevance",
    "alti": "attnkit.relevance",
    "value_zeroing": "attnkit.relevance",
    "contribution_rollout": "attnkit.relevance",
    "RelevanceInputError": "attnkit.relevance",
    "aopc": "attnkit.metrics_faithfulness",
    "deletion_curve": "attnkit.metrics_faithfulness",
    "insertion_curve": "attnkit.metrics_faithfulness",
    "FaithfulnessInputError": "attnkit.metrics_faithfulness",
    "correlation_table": "attnkit.metrics_correlation",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the lazy exports, spelled out for IDEs and type checkers
    from attnkit.adversarial import (  # noqa: F401
        adversarial_attention,
        permutation_scores,
        train_consistent_adversary,
    )
    from attnkit.attentions import AttentionInputError, Attentions  # noqa: F401
    from attnkit.capture import Seq2SeqAttentions, capture  # noqa: F401
    from attnkit.errors import AttnkitError  # noqa: F401
    from attnkit.explain import ExplainError, explain  # noqa: F401
    from attnkit.importance import (  # noqa: F401
        ImportanceInputError,
        blank_out,
        gradient_x_input,
        input_gradient,
        integrated_gradients,
        lime,
        lime_text,
        lopardo_gradient,
        patch_occlusion,
    )
    from attnkit.metrics import (  # noqa: F401
        MetricInputError,
        entropy,
        fraction_significant,
        jsd,
        kendall,
        mean_std,
        sparsity,
        spearman,
        tvd,
    )
    from attnkit.metrics_correlation import correlation_table  # noqa: F401
    from attnkit.metrics_faithfulness import (  # noqa: F401
        FaithfulnessInputError,
        aopc,
        deletion_curve,
        insertion_curve,
    )
    from attnkit.models.additive import AdditiveClassifier, AdditiveConfig  # noqa: F401
    from attnkit.propagate import flow, flow_per_head, rollout, rollout_per_head  # noqa: F401
    from attnkit.record import claim, used_data  # noqa: F401
    from attnkit.relevance import (  # noqa: F401
        RelevanceInputError,
        alti,
        attention_norm,
        contribution_rollout,
        gae,
        globenc,
        grad_rollout,
        value_zeroing,
    )
    from attnkit.report import run_report  # noqa: F401
    from attnkit.vision import cls_patch_map, mean_attention_distance, patch_map  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
