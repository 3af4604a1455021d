"""Lopardo, Precioso & Garreau's (2024) setup: train their classifier, explain it four ways.

"Attention Meets Post-hoc Interpretability: A Mathematical Perspective" (ICML 2024) takes a
single layer of H independent CLS-attention heads with linear read-outs
(`attnkit.models.lopardo.LopardoClassifier`), trained on IMDB, and compares what attention
says about a document with two post-hoc explanations whose values it derives in closed form:

* the gradient of the logit w.r.t. each token embedding (`lopardo_gradient`), reduced per token
  by the mean over embedding dimensions, the L1 and L2 norms, and gradient × input;
* LIME for text with UNK masking (`lime_text`) and its attention-based approximation
  (`lime_approximation`, the authors' Eq. (19)).

The functions below are the notebook's steps: train (`train_lopardo`), check the closed-form
gradient against autograd (`gradient_check`), explain a batch of documents every way
(`explain_documents`), measure LIME against its approximation as documents grow
(`lime_error_by_length`) and the rank agreement of attention with each explanation
(`agreement_table`). Every explanation is of the *logit* of the explained class (the paper
explains raw logits), by default the predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from attnkit.data.types import TextDataset
from attnkit.importance import (
    embedding_attribution,
    lime_approximation,
    lime_text,
    lopardo_gradient,
)
from attnkit.metrics import kendall, mean_std, spearman
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig, lopardo_collate
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.train import (
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy_loss,
    evaluate,
    fit,
    set_seed,
)

# The reductions of the gradient the paper's Fig. 1 shows, in its order.
GRADIENT_SCORES = ("gradient (mean)", "gradient (L1)", "gradient (L2)", "gradient × input")


@dataclass
class LopardoModel:
    """A trained classifier with the vocabulary it reads."""

    model: LopardoClassifier
    vocab: Vocab
    training: TrainResult

    @property
    def max_len(self) -> int:
        return self.model.config.max_len

    def encode(self, token_lists: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """`(ids (B, T), mask (B, T))` with CLS first; documents longer than the model's
        `max_len` keep their first tokens with a warning (as the paper's `process_text`);
        unknown words become UNK; an empty document is a `ValueError`."""
        return self.vocab.encode(token_lists, self.max_len, truncate=True)

    def tokens(self, input_ids: Tensor, attention_mask: Tensor) -> list[str]:
        """The token strings of one encoded document's real positions (CLS included)."""
        return self.vocab.decode(input_ids[attention_mask.bool()])


def train_lopardo(
    train: TextDataset,
    dev: TextDataset,
    *,
    profile: str = "quick",
    epochs: int = 10,
    lr: float = 1e-4,
    batch_size: int = 16,
    weight_decay: float = 0.01,
    min_count: int = 1,
    max_vocab: int | None = None,
    patience: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    **config_overrides: int,
) -> LopardoModel:
    """Build a vocabulary on `train` and fit `LopardoClassifier` with the sizes of `profile`.

    Defaults are the authors' (`params.py`): AdamW with torch's weight decay 0.01, lr 1e-4,
    batch 16, 10 epochs, vocabulary = every training word. `max_vocab` / `min_count` shrink the
    vocabulary (dropped words read as UNK). Training documents are truncated to the model's
    `max_len` (the paper does the same). The run is cached by config, data and seed.
    """
    vocab = Vocab.build(train.texts, min_count=min_count, max_size=max_vocab)
    train_examples = [ex for ex in labelled_examples(train) if ex[0]]
    dev_examples = [ex for ex in labelled_examples(dev) if ex[0]]
    set_seed(seed)  # the initial weights are part of the cache key
    config = LopardoConfig.profile(
        profile, vocab_size=len(vocab), n_classes=len(train.label_names), **config_overrides
    )
    model = LopardoClassifier(config)
    collate = _quiet(lopardo_collate(vocab, config.max_len))
    result = fit(
        model,
        train_examples,
        dev_examples,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=collate,
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer="adamw",
            weight_decay=weight_decay,
            patience=patience,
            seed=seed,
            device=device,
        ),
        # The collate's max_len is not in the trainer's key (nor in the weights' shapes).
        cache_key_extra={"max_len": config.max_len, "min_count": min_count, "max_vocab": max_vocab},
        progress=progress,
    )
    return LopardoModel(model, vocab, result)


class _quiet:
    """A collate that truncates long documents without a warning per batch (training reads
    thousands of long reviews; the truncation is stated once in the notebook)."""

    def __init__(self, collate) -> None:
        self.collate = collate

    def __call__(self, examples):
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*exceed max_len.*")
            return self.collate(examples)

    def __repr__(self) -> str:  # part of the trainer's cache key
        return repr(self.collate)


def evaluate_accuracy(trained: LopardoModel, data: TextDataset, batch_size: int = 64) -> float:
    """Accuracy on `data` (documents truncated to `max_len` as in training)."""
    examples = [ex for ex in labelled_examples(data) if ex[0]]
    collate = _quiet(lopardo_collate(trained.vocab, trained.max_len))
    _, metric = evaluate(
        trained.model,
        examples,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=collate,
        batch_size=batch_size,
    )
    return float(metric)


# --------------------------------------------------------------------------- gradient


@dataclass
class GradientCheck:
    """The closed-form gradient against autograd's, `(B, T, d_in)` each (0 on padding).

    max_abs_difference `(B,)`: max over tokens and dimensions per document;
    max_abs_gradient `(B,)`: the gradient's own scale, for reading the difference.
    """

    closed_form: Tensor
    autograd: Tensor
    max_abs_difference: Tensor
    max_abs_gradient: Tensor


def gradient_check(
    trained: LopardoModel, input_ids: Tensor, attention_mask: Tensor, target: Tensor | None = None
) -> GradientCheck:
    """∇_{e_t} of the target logit in closed form (`lopardo_gradient`) and by autograd
    (captum on the token embedding, `embedding_attribution(output="logit")`). The positions
    are added to the token embeddings, so both are the gradient w.r.t. e_t = E[w_t] + p_t."""
    model = trained.model
    with torch.no_grad():
        logits = model(input_ids, attention_mask).logits
    target = logits.argmax(-1) if target is None else target
    closed = lopardo_gradient(model, input_ids, attention_mask, target)  # (B, T, d)
    auto = embedding_attribution(
        model,
        {"input_ids": input_ids, "attention_mask": attention_mask},
        target,
        output="logit",
        multiply_by_inputs=False,
    )  # (B, T, d)
    return GradientCheck(
        closed_form=closed,
        autograd=auto,
        max_abs_difference=(closed - auto).abs().amax(dim=(1, 2)),
        max_abs_gradient=auto.abs().amax(dim=(1, 2)),
    )


def gradient_scores(
    model: LopardoClassifier, input_ids: Tensor, gradient: Tensor
) -> dict[str, Tensor]:
    """The four per-token reductions of ∇_{e_t} f `(B, T, d)` the paper shows, each `(B, T)`:
    mean over dimensions (signed), L1 and L2 norms, and gradient × input Σ_d g_{t,d} e_{t,d}
    (signed) with e_t = E[w_t] + p_t, the vector the gradient is taken of."""
    with torch.no_grad():
        e = model.embed(input_ids)  # (B, T, d)
    return {
        "gradient (mean)": gradient.mean(dim=-1),
        "gradient (L1)": gradient.abs().sum(dim=-1),
        "gradient (L2)": gradient.norm(dim=-1),
        "gradient × input": (gradient * e).sum(dim=-1),
    }


# --------------------------------------------------------------------------- all explanations


@dataclass
class Explained:
    """Every explanation of a batch of documents, `(B, T)` each, lined up with the tokens.

    scores: "attention (mean)", "attention (max)" over heads, "LIME" (mean over runs of the
        coefficient of each position's word), "LIME approximation" (β̂ of each position's word),
        and the four `GRADIENT_SCORES`. CLS (position 0) and padding are 0 in LIME's scores.
    attention: `(B, H, T)` per head; lime_runs: per document the `(R, D)` coefficients;
    lime_approx: per document β̂ `(D,)`; feature_tokens: per document the word of each feature.
    mask: `(B, T)` real tokens; target: `(B,)` explained class; gradient: the `GradientCheck`.
    """

    input_ids: Tensor
    mask: Tensor
    target: Tensor
    attention: Tensor
    scores: dict[str, Tensor]
    gradient: GradientCheck
    lime_runs: list[Tensor] = field(default_factory=list)
    lime_approx: list[Tensor] = field(default_factory=list)
    feature_tokens: list[list[str]] = field(default_factory=list)


def explain_documents(
    trained: LopardoModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    lime_runs: int = 5,
    lime_samples: int = 5000,
    lime_batch_size: int = 500,
    factor: float = 1.5,
    seed: int = 0,
    progress: bool = True,
) -> Explained:
    """Attention, the gradient (closed form, checked against autograd), LIME (`lime_runs`
    runs of `lime_samples` perturbations each, evaluated `lime_batch_size` at a time) and its
    approximation β̂ (with the paper's `factor` 3/2) for every document of the batch, each
    explaining the logit of the predicted class."""
    from tqdm.auto import tqdm

    model = trained.model
    mask = attention_mask.bool()
    with torch.no_grad():
        out = model(input_ids, attention_mask)
    target = out.logits.argmax(-1)  # (B,)
    attention = out.attention  # (B, H, T)
    check = gradient_check(trained, input_ids, attention_mask, target)
    scores = {
        "attention (mean)": attention.mean(dim=1),
        "attention (max)": attention.amax(dim=1),
    }
    lime_scores = torch.zeros(input_ids.shape, dtype=torch.float64)
    approx_scores = torch.zeros(input_ids.shape, dtype=torch.float64)
    runs, approx, words = [], [], []
    seeds = [seed * 1000 + r for r in range(lime_runs)]
    for b in tqdm(range(input_ids.size(0)), desc="LIME", disable=not progress):
        ids, m = input_ids[b], mask[b]
        explanation = lime_text(
            model,
            ids,
            m,
            target=int(target[b]),
            n_samples=lime_samples,
            seeds=seeds,
            batch_size=lime_batch_size,
        )
        beta_hat = lime_approximation(model, ids, m, target=int(target[b]), factor=factor)
        lime_scores[b] = explanation.token_scores().mean(dim=0)
        where = explanation.feature_of_position
        approx_scores[b] = beta_hat.double()[where.clamp(min=0)] * (where >= 0)
        runs.append(explanation.coefficients)
        approx.append(beta_hat.double())
        words.append(trained.vocab.decode(explanation.feature_token_ids))
    scores["LIME"] = lime_scores
    scores["LIME approximation"] = approx_scores
    scores.update(gradient_scores(model, input_ids, check.closed_form))
    return Explained(
        input_ids=input_ids,
        mask=mask,
        target=target,
        attention=attention,
        scores=scores,
        gradient=check,
        lime_runs=runs,
        lime_approx=approx,
        feature_tokens=words,
    )


def explanation_frame(explained: Explained, index: int, vocab: Vocab) -> pd.DataFrame:
    """One document's explanations as a table: one row per real token after CLS."""
    m = explained.mask[index].clone()
    m[0] = False
    tokens = vocab.decode(explained.input_ids[index][m])
    return pd.DataFrame(
        {name: values[index][m].double().numpy() for name, values in explained.scores.items()},
        index=pd.Index(tokens, name="token"),
    )


# --------------------------------------------------------------------------- LIME vs β̂


def lime_error_by_length(
    trained: LopardoModel,
    token_lists: Sequence[Sequence[str]],
    lengths: Sequence[int],
    *,
    lime_runs: int = 1,
    lime_samples: int = 2000,
    lime_batch_size: int = 500,
    factors: Sequence[float] = (1.5, 1.0),
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """LIME against β̂ on the first `L` words of each document, for every `L` in `lengths`.

    Truncating the same documents isolates the effect of length. One row per (document,
    length, factor): `mean_abs_error` = mean_j |β_j - β̂_j| (β averaged over the runs; the
    paper's measure), `relative_error` = ‖β - β̂‖₂ / ‖β‖₂ (scale-free: LIME coefficients shrink
    as attention spreads over more words), `correlation` (Pearson over the document's words),
    `slope` (least-squares s in β ≈ s β̂), and the number of distinct words. The class explained
    is the one predicted for the full (truncated to `max_len`) document.
    """
    from tqdm.auto import tqdm

    model = trained.model
    documents = [list(tokens) for tokens in token_lists if len(tokens) >= max(lengths)]
    if not documents:
        raise ValueError(
            f"no document has at least {max(lengths)} words; lower the largest length."
        )
    limit = trained.max_len - 1
    if max(lengths) > limit:
        raise ValueError(
            f"length {max(lengths)} exceeds the model's max_len - 1 = {limit} words (CLS takes "
            "a position); lower it."
        )
    seeds = [seed * 1000 + r for r in range(lime_runs)]
    rows = []
    total = len(documents) * len(lengths)
    with tqdm(total=total, desc="LIME by length", disable=not progress) as bar:
        for d, tokens in enumerate(documents):
            full_ids, full_mask = trained.vocab.encode([tokens[:limit]], trained.max_len)
            with torch.no_grad():
                target = int(model(full_ids, full_mask).logits.argmax(-1)[0])
            for length in lengths:
                ids, mask = trained.vocab.encode([tokens[:length]], trained.max_len)
                explanation = lime_text(
                    model,
                    ids[0],
                    mask[0],
                    target=target,
                    n_samples=lime_samples,
                    seeds=seeds,
                    batch_size=lime_batch_size,
                )
                beta = explanation.coefficients.mean(dim=0)  # (D,)
                for factor in factors:
                    beta_hat = lime_approximation(
                        model, ids[0], mask[0], target=target, factor=factor
                    ).double()
                    difference = beta - beta_hat
                    rows.append(
                        dict(
                            document=d,
                            length=length,
                            factor=factor,
                            n_words=int(beta.numel()),
                            mean_abs_error=float(difference.abs().mean()),
                            relative_error=float(difference.norm() / beta.norm()),
                            correlation=float(np.corrcoef(beta.numpy(), beta_hat.numpy())[0, 1])
                            if beta.numel() > 1
                            else float("nan"),
                            slope=float((beta @ beta_hat) / (beta_hat @ beta_hat)),
                        )
                    )
                bar.update()
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- agreement


def agreement_table(
    explained: Explained,
    explanations: Sequence[str] | None = None,
    *,
    reference: str = "attention (mean)",
    absolute: bool = True,
) -> tuple[pd.DataFrame, dict[str, Tensor]]:
    """Spearman ρ and Kendall τ between `reference` and each explanation, per document over
    its words (CLS left out), then mean ± std over documents.

    Signed explanations (LIME, the mean gradient, gradient × input) are compared by magnitude
    when `absolute` (attention is a weight, not a direction). Returns the table (one row per
    explanation) and the per-document ρ `(B,)` of each.
    """
    if explanations is None:
        explanations = [
            name for name in explained.scores if name not in (reference, "LIME approximation")
        ]
    mask = explained.mask.clone()
    mask[:, 0] = False
    ref = explained.scores[reference].double()
    rows, per_document = [], {}
    for name in explanations:
        other = explained.scores[name].double()
        other = other.abs() if absolute else other
        rho = spearman(ref, other, mask)
        tau = kendall(ref, other, mask).tau
        per_document[name] = rho
        s_rho, s_tau = mean_std(rho), mean_std(tau)
        rows.append(
            dict(
                explanation=name,
                spearman_mean=s_rho.mean,
                spearman_std=s_rho.std,
                kendall_mean=s_tau.mean,
                kendall_std=s_tau.std,
                documents=s_rho.n,
            )
        )
    return pd.DataFrame(rows).set_index("explanation"), per_document


__all__ = [
    "GRADIENT_SCORES",
    "Explained",
    "GradientCheck",
    "LopardoModel",
    "agreement_table",
    "explain_documents",
    "explanation_frame",
    "gradient_check",
    "gradient_scores",
    "lime_error_by_length",
    "evaluate_accuracy",
    "train_lopardo",
]
