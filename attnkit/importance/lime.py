"""LIME for text with UNK masking, and Lopardo et al.'s (2024) attention-based approximation of it.

LIME (Ribeiro et al. 2016), as `lime.lime_text.LimeTextExplainer` does it, for one document:

* Interpretable features: the distinct words of the document (`features="word"`, LIME's
  `bow=True`: removing a word removes every occurrence) or every position (`"position"`).
  CLS and padding are never features. z ∈ {0, 1}^D says which features are kept.
* Sampling: the first sample is the document itself (z = 1). Every other one draws the number
  of removed features s uniformly in {1, ..., D}, then which s features, uniformly.
* A removed word is replaced *in place* by UNK (`replacement_id`), so positions do not shift.
  (The `lime` package with `bow=True` deletes removed words instead; in-place UNK is what the
  paper's analysis and its `mask_string='UNK'` describe, and it keeps the model's input length.)
* Weights: π(z) = sqrt(exp(-d(z)² / ν²)) with d the cosine distance between z and 1, times 100
  (LIME's defaults: ν = `kernel_width` = 25). For binary z with |z| kept: cos(z, 1) = √(|z|/D).
* Surrogate: weighted ridge regression of the model's output on z, with an unpenalised
  intercept, α = 1 (LIME's `Ridge(alpha=1)`). β_j is feature j's coefficient.

The perturbed documents are evaluated in batches of `batch_size`, never one forward per sample.
The surrogate is solved in closed form in float64 for every output at once, which makes LIME
additive in the explained function: for a model whose output is the mean of its heads, the
LIME coefficients of the model equal the mean of the heads' coefficients when the samples are
shared (`lime_head_additivity` checks it numerically).

Why not captum's `LimeBase`: it draws one sample per call and fits one scalar output per run
(so per-head coefficients on shared samples need H + 1 runs), casts everything to float32, and
its exact ridge needs scikit-learn (not a dependency); the SGD surrogates are approximate.

The approximation (Lopardo et al. 2024, the authors' notebook "Eq. (19)"): for long
documents, the LIME coefficient of word j for the logit of class c of `LopardoClassifier` is

    β̂_j = 3/2 · (1/H) Σ_h Σ_{t: w_t = j} [ α_t^h v_t^h - g̃_t^h ṽ_t^h / Σ_s g̃_s^h ] · W_ℓ^h[:, c]

where ṽ_t = (E[UNK] + p_t) W_v and g̃_t = exp(q · k̃_t / √d_attn) come from the document with
every word replaced by UNK (q is unchanged: the CLS token is never removed). So
g̃_t / Σ_s g̃_s = α̃_t is the CLS attention in that all-UNK document, summed over its real
positions (CLS included). The authors pad with unmasked UNK up to MAX_LEN, so their Σ_s also
runs over the padding; our model masks padding, so the sum is over the document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from attnkit.importance._common import (
    ImportanceInputError,
    Output,
    Target,
    check_finite,
    check_ids_and_mask,
    check_output,
    check_token_id,
    evaluation,
    first_pass,
    forward_inputs,
    logits_of,
    resolve_target,
    scored_output,
)
from attnkit.importance.defaults import OUTPUT, default_positions, token_id
from attnkit.models.lopardo import LopardoClassifier
from attnkit.models.vocab import UNK_ID

Features = Literal["word", "position"]
Forward = Callable[[Tensor, Tensor], Tensor]  # (ids (n, T), mask (n, T)) -> (n,) or (n, K)

LIME_KERNEL_WIDTH = 25.0  # lime_text.LimeTextExplainer default
LIME_RIDGE_ALPHA = 1.0  # lime_base.LimeBase default surrogate: Ridge(alpha=1)
APPROXIMATION_FACTOR = 1.5  # the 3/2 of Lopardo et al.'s Eq. (19)


# --------------------------------------------------------------------------- the pieces


def interpretable_features(
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    features: Features = "word",
    scored: Tensor | None = None,
) -> Tensor:
    """Feature index of every position `(T,)` (long), -1 at CLS (position 0) and padding.

    `"word"`: one feature per distinct token id, numbered by first occurrence (as LIME's
    `IndexedString`); `"position"`: one feature per real position after CLS. `scored` `(T,)`
    bool replaces "real and not position 0" (e.g. real and not a special token).
    """
    if features not in ("word", "position"):
        raise ImportanceInputError(f"features must be 'word' or 'position', got {features!r}")
    ids, mask = _one_document(input_ids, attention_mask)  # (T,), (T,)
    if scored is None:
        is_feature = mask.clone()
        is_feature[0] = False  # CLS is never removed
    else:
        is_feature = mask & torch.as_tensor(scored, device=mask.device).reshape(-1).bool()
    feature_of_position = torch.full_like(ids, -1)
    if features == "position":
        feature_of_position[is_feature] = torch.arange(int(is_feature.sum()), device=ids.device)
        return feature_of_position
    number: dict[int, int] = {}
    for position in is_feature.nonzero().flatten().tolist():
        token = int(ids[position])
        feature_of_position[position] = number.setdefault(token, len(number))
    return feature_of_position


def sample_presence(n_features: int, n_samples: int, generator: torch.Generator) -> Tensor:
    """LIME-text samples z `(n_samples, D)` float64 in {0, 1}: row 0 is all ones, every other
    row removes s ~ U{1..D} features chosen uniformly without replacement."""
    if n_features < 1:
        raise ImportanceInputError("the document has no word to explain (no feature)")
    if n_samples < 2:
        raise ImportanceInputError(
            f"n_samples must be >= 2 (LIME's default is 5000), got {n_samples}"
        )
    n_removed = torch.randint(1, n_features + 1, (n_samples - 1, 1), generator=generator)
    # A uniformly random rank per feature and sample; the s lowest-ranked are removed, a
    # uniform s-subset -- LIME's `random_state.choice(D, s, replace=False)`, vectorised.
    ranks = torch.rand(n_samples - 1, n_features, generator=generator).argsort(dim=1)
    presence = torch.ones(n_samples, n_features, dtype=torch.float64)
    presence[1:] = (ranks >= n_removed).double()
    return presence


def kernel_weights(presence: Tensor, kernel_width: float = LIME_KERNEL_WIDTH) -> Tensor:
    """LIME-text sample weights `(n,)`: sqrt(exp(-d²/ν²)) with d = 100 · cosine distance to 1."""
    if not kernel_width > 0:
        raise ImportanceInputError(
            f"kernel_width must be > 0, got {kernel_width}; LIME's default is "
            f"{LIME_KERNEL_WIDTH:g}."
        )
    kept_share = presence.sum(dim=1) / presence.size(1)  # |z| / D
    distance = 100.0 * (1.0 - kept_share.sqrt())  # all removed: cos = 0, d = 100
    return torch.exp(-(distance**2) / kernel_width**2).sqrt()


def perturbed_ids(
    input_ids: Tensor,
    feature_of_position: Tensor,
    presence: Tensor,
    replacement_id: int = UNK_ID,
) -> Tensor:
    """The documents `(n, T)` of samples z `(n, D)`: removed features become `replacement_id`
    in place; CLS and padding are left alone."""
    ids = input_ids.reshape(-1)  # (T,)
    feature_of_position = feature_of_position.to(presence.device)
    is_feature = feature_of_position >= 0  # (T,)
    kept = presence[:, feature_of_position.clamp(min=0)].bool() | ~is_feature  # (n, T)
    return torch.where(kept.to(ids.device), ids, torch.full_like(ids, replacement_id))


def weighted_ridge(
    presence: Tensor, outputs: Tensor, weights: Tensor, alpha: float = LIME_RIDGE_ALPHA
) -> tuple[Tensor, Tensor]:
    """Weighted ridge with an unpenalised intercept (scikit-learn's `Ridge` with
    `sample_weight`), solved in float64 for every output column at once.

        min_{β, b} Σ_i π_i (y_i - b - z_i·β)² + alpha ‖β‖²

    presence `(n, D)`, outputs `(n,)` or `(n, K)`, weights `(n,)` -> (β `(D,)` or `(K, D)`,
    intercept `()` or `(K,)`).
    """
    if alpha < 0:
        raise ImportanceInputError(f"alpha must be >= 0, got {alpha}")
    Z, y, pi = presence.double(), outputs.double(), weights.double().to(presence.device)
    single = y.dim() == 1
    y = y[:, None] if single else y  # (n, K)
    pi_share = pi / pi.sum()  # (n,)
    z_mean, y_mean = pi_share @ Z, pi_share @ y  # (D,), (K,): weighted means
    Zc, yc = Z - z_mean, y - y_mean  # centring absorbs the intercept
    gram = Zc.T @ (pi[:, None] * Zc) + alpha * torch.eye(Z.size(1), dtype=Z.dtype)  # (D, D)
    # SVD-based driver: the default (gelsy) is not run-to-run deterministic on CPU, and a
    # feature that no sample removed makes the alpha = 0 system singular (min-norm solution).
    beta = torch.linalg.lstsq(gram, Zc.T @ (pi[:, None] * yc), driver="gelsd").solution  # (D, K)
    intercept = y_mean - z_mean @ beta  # (K,)
    return (beta[:, 0], intercept[0]) if single else (beta.T, intercept)


def evaluate_in_batches(forward: Forward, ids: Tensor, mask: Tensor, batch_size: int) -> Tensor:
    """`forward` on the rows of `ids (n, T)` (with the same `mask (T,)` row each), `batch_size`
    rows per call, concatenated: `(n,)` or `(n, K)`."""
    if batch_size < 1:
        raise ImportanceInputError(f"batch_size must be >= 1, got {batch_size}")
    outputs = []
    for start in range(0, ids.size(0), batch_size):
        chunk = ids[start : start + batch_size]  # (b, T)
        outputs.append(forward(chunk, mask.expand(chunk.size(0), -1)))
    return torch.cat(outputs)


def target_forward(
    model: nn.Module, target: int, output: Output = "logit"
) -> Callable[[Tensor, Tensor], Tensor]:
    """`forward(ids, mask) -> (n,)`: `output` ("logit", the paper's; "prob"; "log_prob") of class
    `target` for a classifier called as `model(input_ids=..., attention_mask=...)`."""
    check_output(output)

    def forward(ids: Tensor, mask: Tensor) -> Tensor:
        logits = logits_of(model(input_ids=ids, attention_mask=mask))  # (n, C)
        return scored_output(logits, output)[:, target]

    return forward


# --------------------------------------------------------------------------- LIME


@dataclass(frozen=True)
class LimeExplanation:
    """LIME coefficients of one document, one row per run (seed).

    coefficients: `(R, D)` β_j per run and feature (`(R, K, D)` for a K-output forward).
    intercepts: `(R,)` (or `(R, K)`).
    feature_of_position: `(T,)` the feature of each position, -1 at CLS and padding.
    feature_token_ids: `(D,)` the token id of each feature (its first occurrence), for labels.
    seeds: the seed of each run.
    """

    coefficients: Tensor
    intercepts: Tensor
    feature_of_position: Tensor
    feature_token_ids: Tensor
    seeds: tuple[int, ...]

    def token_scores(self) -> Tensor:
        """β of each position's feature, `(R, T)` (or `(R, K, T)`), 0 at CLS and padding --
        lined up with attention rows."""
        is_feature = self.feature_of_position >= 0  # (T,)
        scores = self.coefficients[..., self.feature_of_position.clamp(min=0)]  # (R, [K,] T)
        return scores * is_feature.to(scores.dtype)


def lime_text(
    model: nn.Module | Forward,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    target: Target = None,
    *,
    output: Output = "logit",
    n_samples: int = 5000,
    seeds: int | Sequence[int] = (0,),
    kernel_width: float = LIME_KERNEL_WIDTH,
    alpha: float = LIME_RIDGE_ALPHA,
    features: Features = "word",
    replacement_id: int = UNK_ID,
    batch_size: int = 256,
    scored: Tensor | None = None,
) -> LimeExplanation:
    """LIME for one document with in-place UNK removal; one run per seed.

    Args:
        model: a classifier `nn.Module` called as `model(input_ids=..., attention_mask=...)`
            (logits as a tensor, a tuple's first element or `.logits`), explained through
            `output` of class `target`; or a callable `forward(ids (n, T), mask (n, T))`
            returning `(n,)` or `(n, K)` outputs, explained as is (then leave `target` None).
        input_ids: `(T,)` or `(1, T)` ids, CLS at position 0; `attention_mask` likewise.
        target: class to explain (int); None: the class the model predicts for the document.
        output: "logit" (the paper explains raw logits), "prob" or "log_prob".
        n_samples: perturbed documents per run, the document itself included (LIME: 5000).
        seeds: one run per seed (the paper repeats LIME 5 times).
        kernel_width, alpha: LIME's kernel width ν (25) and ridge penalty (1).
        features: "word" (distinct words, LIME's bag of words) or "position".
        replacement_id: the token a removed word becomes (UNK).
        batch_size: perturbed documents per forward call.
        scored: `(T,)` bool, the positions that are features (default: real tokens after
            position 0; `attnkit.importance.lime` passes the non-special tokens).

    Returns:
        `LimeExplanation` with coefficients `(R, D)` (or `(R, K, D)`), float64.
    """
    ids, mask = _one_document(input_ids, attention_mask)  # (T,), (T,)
    check_token_id(model, replacement_id, "replacement_id")
    seeds = (seeds,) if isinstance(seeds, int) else tuple(seeds)
    if not seeds:
        raise ImportanceInputError("seeds is empty; pass at least one seed, e.g. seeds=(0,)")
    forward = _explained_forward(model, ids, mask, target, output)
    feature_of_position = interpretable_features(ids, mask, features=features, scored=scored)
    n_features = int(feature_of_position.max()) + 1
    if n_features < 1:
        raise ImportanceInputError("the document has no word after CLS: nothing to explain")
    first_position = [int((feature_of_position == j).nonzero()[0]) for j in range(n_features)]
    coefficients, intercepts = [], []
    with evaluation(model), torch.no_grad():
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            presence = sample_presence(n_features, n_samples, generator)  # (n, D)
            documents = perturbed_ids(ids, feature_of_position, presence, replacement_id)
            outputs = evaluate_in_batches(forward, documents, mask, batch_size)  # (n, [K])
            check_finite(outputs, "the model's outputs on the perturbed documents")
            beta, intercept = weighted_ridge(
                presence, outputs.cpu(), kernel_weights(presence, kernel_width), alpha
            )
            coefficients.append(beta)
            intercepts.append(intercept)
    return LimeExplanation(
        coefficients=torch.stack(coefficients),
        intercepts=torch.stack(intercepts),
        feature_of_position=feature_of_position.cpu(),
        feature_token_ids=ids[first_position].cpu(),
        seeds=seeds,
    )


@dataclass(frozen=True)
class HeadAdditivity:
    """LIME of the model vs the mean of its heads' LIME, on the same samples.

    model_coefficients `(D,)`, head_coefficients `(H, D)`, mean_of_heads `(D,)`,
    max_abs_difference = max_j |model_j - mean_of_heads_j| (float rounding only).
    """

    model_coefficients: Tensor
    head_coefficients: Tensor
    mean_of_heads: Tensor
    max_abs_difference: float


def lime_head_additivity(
    model: LopardoClassifier,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    target: Target = None,
    *,
    seed: int = 0,
    n_samples: int = 5000,
    **lime_options: object,
) -> HeadAdditivity:
    """LIME of the model's logit f_c and of every head's logit f_{h,c}, on one shared sample.

    f = (1/H) Σ_h f_h and the surrogate is linear in the explained outputs, so LIME(f) =
    (1/H) Σ_h LIME(f_h) (the authors' "LIME additivity" check). `lime_options` go to
    `lime_text` (kernel_width, alpha, features, replacement_id, batch_size).
    """
    _check_lopardo(model, "lime_head_additivity")
    ids, mask = _one_document(input_ids, attention_mask)
    c = _resolve_one_target(model, ids, mask, target)

    def model_and_heads(ids: Tensor, mask: Tensor) -> Tensor:
        result = model(ids, mask)
        return torch.cat([result.logits[:, c : c + 1], result.head_logits[:, :, c]], dim=1)

    with evaluation(model):
        explanation = lime_text(
            model_and_heads, ids, mask, seeds=seed, n_samples=n_samples, **lime_options
        )
    coefficients = explanation.coefficients[0]  # (1 + H, D)
    mean_of_heads = coefficients[1:].mean(dim=0)  # (D,)
    return HeadAdditivity(
        model_coefficients=coefficients[0],
        head_coefficients=coefficients[1:],
        mean_of_heads=mean_of_heads,
        max_abs_difference=float((coefficients[0] - mean_of_heads).abs().max()),
    )


# --------------------------------------------------------------------------- the approximation


def lime_approximation_terms(
    model: LopardoClassifier,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    target: Target = None,
    *,
    replacement_id: int = UNK_ID,
    factor: float = APPROXIMATION_FACTOR,
) -> Tensor:
    """Per-position terms of β̂ (Eq. (19)), `(B, T)`, 0 at CLS and padding:

        factor · (1/H) Σ_h [ α_t^h v_t^h - α̃_t^h ṽ_t^h ] · W_ℓ^h[:, c]

    with α̃, ṽ from the document whose every word is `replacement_id` (α̃_t = g̃_t / Σ_s g̃_s).
    `factor` is the paper's 3/2. (When attention barely moves as words are removed -- e.g. a
    freshly initialised model -- the model is linear in z and LIME recovers the bracket with
    factor 1; pass `factor=1.0` to compare.) β̂_j of a word is the sum of its positions' terms
    (`lime_approximation`).
    """
    _check_lopardo(model, "lime_approximation_terms")
    mask = check_ids_and_mask(input_ids, attention_mask)  # (B, T)
    is_word = mask.clone()
    is_word[:, 0] = False  # CLS is never removed
    all_unk = torch.where(is_word, torch.full_like(input_ids, replacement_id), input_ids)
    heads = model.heads
    with evaluation(model), torch.no_grad():
        result = model(input_ids, mask)
        c = resolve_target(target, result.logits)  # (B,)
        w = heads.W_l.permute(2, 0, 1)[c]  # (B, H, d_out): W_ℓ^h[:, c]
        alpha = result.attention  # (B, H, T)
        alpha_unk = model(all_unk, mask).attention  # (B, H, T): g̃_t / Σ_s g̃_s
        v = torch.einsum("btd,hdo->bhto", model.embed(input_ids), heads.W_v)  # (B, H, T, d_out)
        v_unk = torch.einsum("btd,hdo->bhto", model.embed(all_unk), heads.W_v)  # ṽ_t
        contribution = alpha[..., None] * v - alpha_unk[..., None] * v_unk  # (B, H, T, d_out)
        terms = torch.einsum("bhto,bho->bt", contribution, w) / heads.W_l.size(0)  # mean_h
    return factor * terms * is_word.to(terms.dtype)


def lime_approximation(
    model: LopardoClassifier,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    target: Target = None,
    *,
    features: Features = "word",
    replacement_id: int = UNK_ID,
    factor: float = APPROXIMATION_FACTOR,
) -> Tensor:
    """β̂ per interpretable feature `(D,)` of one document (Eq. (19)), in the feature order of
    `lime_text` for the same document, so `lime_text(...).coefficients.mean(0)` compares
    entry by entry. `target`: int, or None for the predicted class; `factor`: the paper's 3/2."""
    ids, mask = _one_document(input_ids, attention_mask)
    terms = lime_approximation_terms(
        model, ids[None], mask[None], target, replacement_id=replacement_id, factor=factor
    )[0]  # (T,)
    feature_of_position = interpretable_features(ids, mask, features=features)  # (T,)
    n_features = int(feature_of_position.max()) + 1
    is_feature = feature_of_position >= 0
    beta_hat = torch.zeros(n_features, dtype=terms.dtype, device=terms.device)
    return beta_hat.index_add_(0, feature_of_position[is_feature], terms[is_feature])


# --------------------------------------------------------------------------- helpers


def _one_document(input_ids: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """`(T,)` ids and bool mask of a single document given as `(T,)` or `(1, T)`."""
    if not isinstance(input_ids, Tensor):
        raise ImportanceInputError(
            f"input_ids must be a tensor of token ids, got {type(input_ids).__name__}"
        )
    if input_ids.dim() == 1:
        input_ids = input_ids[None]  # (1, T)
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if attention_mask.dim() == 1:
            attention_mask = attention_mask[None]  # (1, T)
    if input_ids.dim() == 2 and input_ids.size(0) != 1:
        raise ImportanceInputError(
            f"LIME explains one document at a time, got a batch of {input_ids.size(0)}; loop "
            "over the documents (input_ids[i], attention_mask[i])."
        )
    mask = check_ids_and_mask(input_ids, attention_mask)  # (1, T)
    if not mask[0, 0]:
        raise ImportanceInputError("position 0 (CLS) is padding; pad on the right")
    if not mask[0, 1:].any():
        raise ImportanceInputError("the document is empty (CLS and no word): nothing to explain")
    return input_ids[0], mask[0]


def _explained_forward(
    model: nn.Module | Forward, ids: Tensor, mask: Tensor, target: Target, output: Output
) -> Forward:
    if isinstance(model, nn.Module):
        return target_forward(model, _resolve_one_target(model, ids, mask, target), output)
    if not callable(model):
        raise ImportanceInputError(
            f"model must be an nn.Module or a callable forward(ids, mask), got {type(model).__name__}"
        )
    if target is not None:
        raise ImportanceInputError(
            "target applies to an nn.Module; a forward(ids, mask) callable is explained as is -- "
            "select the class inside it."
        )
    return model


def _resolve_one_target(model: nn.Module, ids: Tensor, mask: Tensor, target: Target) -> int:
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    with evaluation(model), torch.no_grad():
        logits = logits_of(model(input_ids=ids[None], attention_mask=mask[None]))  # (1, C)
    return int(resolve_target(target, logits)[0])


def _check_lopardo(model: object, name: str) -> None:
    if not isinstance(model, LopardoClassifier):
        raise ImportanceInputError(
            f"{name} is specific to LopardoClassifier (its heads and W_ℓ), got "
            f"{type(model).__name__}; lime_text works for any classifier."
        )


# --------------------------------------------------------------------------- shared signature


def lime(
    model: nn.Module,
    inputs: Mapping[str, Any],
    target: Target = None,
    *,
    tokenizer: Any = None,
    replacement_id: int | None = None,
    output: Output = OUTPUT,
    n_samples: int = 5000,
    seeds: int | Sequence[int] = (0,),
    features: Features = "word",
    batch_size: int = 256,
) -> Tensor:
    """LIME token scores `(B, T)` with the shared signature (see `attnkit.importance.defaults`).

    Each example is explained by `lime_text` (its options), with the tokenizer's UNK as the
    replacement (`replacement_id=` overrides) and its non-special real tokens as the features;
    every other input (`token_type_ids`, ...) reaches the model. A token's score is its
    feature's coefficient, averaged over `seeds`; 0 at special tokens and padding.
    """
    kwargs = forward_inputs(inputs)
    input_ids = kwargs.pop("input_ids")
    attention_mask = kwargs.pop("attention_mask", None)
    mask = check_ids_and_mask(input_ids, attention_mask)  # (B, T) bool
    replacement_id = token_id(tokenizer, model, "unk") if replacement_id is None else replacement_id
    if replacement_id is None:
        raise ImportanceInputError(
            f"no UNK id for {type(model).__name__}: pass tokenizer= (its unk_token_id is used) "
            "or replacement_id=."
        )
    check_token_id(model, replacement_id, "replacement_id")
    scored = default_positions(inputs, input_ids, mask, tokenizer)  # (B, T) bool
    scores = torch.zeros(input_ids.shape, dtype=torch.float64)
    with evaluation(model), torch.no_grad():
        logits, read_at = first_pass(
            model, input_ids, {**kwargs, "attention_mask": mask.to(input_ids.dtype)}
        )
        targets = resolve_target(target, logits)  # (B,)
        for b in range(len(input_ids)):
            rows = {
                name: value[b : b + 1] if isinstance(value, Tensor) and value.dim() > 0 else value
                for name, value in kwargs.items()
            }

            def forward(ids: Tensor, keep: Tensor, rows=rows, b=b) -> Tensor:
                n = len(ids)
                extra = {
                    k: v.expand(n, *v.shape[1:]) if isinstance(v, Tensor) else v
                    for k, v in rows.items()
                }
                raw = model(input_ids=ids, attention_mask=keep.to(input_ids.dtype), **extra)
                at = None if read_at is None else read_at[b].expand(n)
                return scored_output(logits_of(raw, at), output)[:, targets[b]]

            explanation = lime_text(
                forward,
                input_ids[b],
                mask[b],
                n_samples=n_samples,
                seeds=seeds,
                features=features,
                replacement_id=replacement_id,
                batch_size=batch_size,
                scored=scored[b],
            )
            scores[b] = explanation.token_scores().mean(dim=0)
    return scores
