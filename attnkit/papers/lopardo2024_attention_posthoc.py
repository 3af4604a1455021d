"""Lopardo, Precioso & Garreau (2024), "Attention Meets Post-hoc Interpretability: A
Mathematical Perspective" (ICML 2024, arXiv:2402.03485).

The paper takes a single layer of H independent CLS-attention heads with linear read-outs
(`attnkit.models.lopardo.LopardoClassifier`), trained on IMDB, and derives in closed form what
two post-hoc explanations compute on it:

* the gradient of the logit w.r.t. each token embedding (`lopardo_gradient`): α_t times a term
  that also carries the values, the query and the classifier, so it is not proportional to
  attention; reduced per token by the mean over dimensions, the L1 and L2 norms, gradient × input;
* LIME for text with UNK masking (`lime_text`) and its attention-based approximation
  (`lime_approximation`, the authors' Eq. (19)); LIME is additive over heads.

`notebooks/lopardo2024_attention_posthoc.ipynb` reproduces Figs. 1, 3, 4, 5, the approximation
error as documents grow, the additivity and the rank agreement of attention with LIME and the
gradient. The paper's numbers and their sources are in `shared/papers/CLAIMS.md` §7.

Two padding conventions are trained side by side (`PADDINGS`): the authors' (`"unk"`: every
document padded to MAX_LEN with UNK that takes part in attention) and ours (`"masked"`). Every
step moves its inputs to the model's device and returns CPU tensors, so `device="cuda"` works.
Every explanation is of the *logit* of the explained class (the paper explains raw logits), by
default the predicted class. Steps return plain results; figure functions return figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from attnkit.data import load
from attnkit.data.types import TextDataset
from attnkit.importance import (
    lime_approximation,
    lime_text,
    lopardo_gradient,
)
from attnkit.metrics import kendall, mean_std, spearman
from attnkit.models.lopardo import (
    PROFILES,
    LopardoClassifier,
    LopardoConfig,
    Padding,
    lopardo_collate,
    pad_to_max_len,
)
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.train import TrainConfig, TrainResult, accuracy, cross_entropy_loss, evaluate
from attnkit.train import train_model as fit_model

# --------------------------------------------------------------------------- sizes and numbers

#: Sizes per profile. `full` is the authors' `params.py`: 20k / 5k / 25k IMDB reviews, MAX_LEN
#: 256, 6 heads, d_in 128, d_attn = d_out 64, AdamW lr 1e-4, batch 16, 10 epochs, the whole
#: vocabulary, LIME 5 runs × 5000 samples. `quick` keeps the architecture and MAX_LEN and the
#: 20k training reviews, with a 20k-word vocabulary, lr 1e-3 for 6 epochs instead of 1e-4 for 10,
#: 5k test reviews and fewer LIME samples. `smoke` is for CI.
SIZES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        model="smoke",
        n_train=300,
        n_dev=60,
        n_test=60,
        epochs=1,
        lr=1e-3,
        batch_size=32,
        max_vocab=2000,
        n_agree=6,
        lime_runs=5,
        lime_samples=300,
        agree_runs=1,
        agree_samples=300,
        n_length_docs=3,
        lengths=[4, 8, 16, 31],
        length_samples=300,
        additivity_samples=300,
    ),
    "quick": dict(
        model="full",
        n_train=20000,
        n_dev=500,
        n_test=5000,
        epochs=6,
        lr=1e-3,
        batch_size=32,
        max_vocab=20000,
        n_agree=40,
        lime_runs=5,
        lime_samples=2000,
        agree_runs=1,
        agree_samples=1000,
        n_length_docs=10,
        lengths=[8, 32, 128, 255],
        length_samples=1000,
        additivity_samples=2000,
    ),
    "full": dict(
        model="full",
        n_train=None,
        n_dev=None,
        n_test=None,
        epochs=10,
        lr=1e-4,
        batch_size=16,
        max_vocab=None,
        n_agree=500,
        lime_runs=5,
        lime_samples=5000,
        agree_runs=5,
        agree_samples=5000,
        n_length_docs=100,
        lengths=[8, 16, 32, 64, 128, 255],
        length_samples=5000,
        additivity_samples=5000,
    ),
}

#: The authors' saved IMDB model's test accuracy [READ-REPO
#: models/saved/IMDB/multi_head_e/model/info.json, CLAIMS.md §7].
PAPER_ACCURACY = 0.8019
#: The gate: claims that need a trained model require this test accuracy (within 0.03 of the
#: paper's); the accuracy claim itself allows ±0.03 around the paper's.
ACCURACY_TOLERANCE = 0.03
GATE_ACCURACY = round(PAPER_ACCURACY - ACCURACY_TOLERANCE, 4)
#: Fig. 1's sentence and the authors' values for it [READ-REPO notebook output, CLAIMS.md §7].
FIG1_SENTENCE = "attention based explanations are popular but questionable".split()
PAPER_FIG1 = {
    "attention (mean)": {"popular": 0.138, "questionable": 0.104},
    "LIME": {"questionable": -1.01, "popular": 0.24},
    "gradient (L2)": {"questionable": 1.33},
}
#: The padding conventions, the paper's first: the authors' UNK padding, then ours.
PADDINGS: tuple[Padding, ...] = ("unk", "masked")
PADDING_NAMES = {"unk": "authors' (UNK padding, attended)", "masked": "ours (padding masked)"}
#: The reductions of the gradient the paper's Fig. 1 shows, in its order.
GRADIENT_SCORES = ("gradient (mean)", "gradient (L1)", "gradient (L2)", "gradient × input")


# --------------------------------------------------------------------------- setup and training


@dataclass
class Run:
    """One notebook run: profile, seed, device, the sizes and the IMDB splits."""

    profile: str
    seed: int
    device: str
    sizes: dict[str, Any]
    train: TextDataset
    dev: TextDataset
    test: TextDataset


def setup(
    profile: str,
    seed: int,
    data_dir: str | None = None,
    device: str = "cpu",
    require_data: bool = False,
) -> Run:
    """Load IMDB train / dev / test at the profile's sizes (synthetic if the files are absent)."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    sizes = SIZES[profile]
    splits = {
        split: load(
            "imdb",
            split,
            data_dir=data_dir,
            require_data=require_data,
            seed=seed,
            limit=sizes[f"n_{split}"],
        )
        for split in ("train", "dev", "test")
    }
    return Run(profile, seed, device, sizes, **splits)


@dataclass
class LopardoModel:
    """A trained classifier with the vocabulary it reads and its padding convention."""

    model: LopardoClassifier
    vocab: Vocab
    training: TrainResult

    @property
    def max_len(self) -> int:
        return self.model.config.max_len

    @property
    def padding(self) -> Padding:
        return self.model.config.padding

    def encode(self, token_lists: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """`(ids (B, T), mask (B, T))` on the CPU, CLS first, the mask marking the document's
        tokens. Documents longer than `max_len` keep their first tokens with a warning (as the
        paper's `process_text`); unknown words become UNK; an empty document is a `ValueError`.
        With the authors' padding every row is padded to `max_len` (T = max_len)."""
        ids, mask = self.vocab.encode(token_lists, self.max_len, truncate=True)
        if self.padding == "unk":
            ids, mask = pad_to_max_len(ids, mask, self.max_len)
        return ids, mask


def train_model(
    train: TextDataset,
    dev: TextDataset,
    *,
    profile: str = "quick",
    padding: Padding = "unk",
    epochs: int = 10,
    lr: float = 1e-4,
    batch_size: int = 16,
    weight_decay: float = 0.01,
    max_vocab: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> LopardoModel:
    """Fit `LopardoClassifier` with the sizes of `LopardoConfig.profile(profile)` and `padding`.

    Defaults are the authors' (`params.py`): AdamW with torch's weight decay 0.01, lr 1e-4,
    batch 16, 10 epochs, vocabulary = every training word (`max_vocab` keeps the most frequent;
    the rest read as UNK). Training documents are truncated to `max_len` as the paper does. The
    optimizer runs torch's fused AdamW kernel (same update, ~8x faster on CPU). Cached by
    config, data and seed.
    """
    vocab = Vocab.build(train.texts, max_size=max_vocab)
    model_config = {"n_classes": len(train.label_names), "padding": padding}
    trained = fit_model(
        lambda v: LopardoClassifier(LopardoConfig.profile(profile, len(v), **model_config)),
        [ex for ex in labelled_examples(train) if ex[0]],
        [ex for ex in labelled_examples(dev) if ex[0]],
        vocab=vocab,
        collate_factory=lambda v: _quiet(lopardo_collate(v, PROFILES[profile]["max_len"], padding)),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer="adamw",
            weight_decay=weight_decay,
            fused=True,
        ),
        seed=seed,
        device=device,
        # The collate's max_len is not in the trainer's key (nor in the weights' shapes).
        cache_key_extra={"profile": profile, "max_vocab": max_vocab, "padding": padding},
        progress=progress,
    )
    return LopardoModel(trained.model, vocab, trained.training)


def train_both(run: Run, progress: bool = True) -> dict[Padding, LopardoModel]:
    """The authors' convention and ours, trained with the same data, sizes and seed."""
    s = run.sizes
    return {
        padding: train_model(
            run.train,
            run.dev,
            profile=s["model"],
            padding=padding,
            epochs=s["epochs"],
            lr=s["lr"],
            batch_size=s["batch_size"],
            max_vocab=s["max_vocab"],
            seed=run.seed,
            device=run.device,
            progress=progress,
        )
        for padding in PADDINGS
    }


class _quiet:
    """A collate that truncates long documents without a warning per batch (training reads
    thousands of long reviews; the truncation is stated once in the notebook)."""

    def __init__(self, collate) -> None:
        self.collate = collate

    def __call__(self, examples):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*exceed max_len.*")
            return self.collate(examples)

    def __repr__(self) -> str:  # part of the trainer's cache key
        return repr(self.collate)


def evaluate_accuracy(trained: LopardoModel, data: TextDataset, batch_size: int = 64) -> float:
    """Accuracy on `data` (documents truncated to `max_len` as in training)."""
    examples = [ex for ex in labelled_examples(data) if ex[0]]
    collate = _quiet(lopardo_collate(trained.vocab, trained.max_len, trained.padding))
    _, metric = evaluate(
        trained.model,
        examples,
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=collate,
        batch_size=batch_size,
    )
    return float(metric)


def model_table(run: Run, models: dict[Padding, LopardoModel]) -> pd.DataFrame:
    """Test accuracy, training time and the gate per padding convention."""
    rows = []
    for padding, trained in models.items():
        acc = evaluate_accuracy(trained, run.test)
        rows.append(
            dict(
                padding=PADDING_NAMES[padding],
                test_accuracy=acc,
                paper=PAPER_ACCURACY,
                passes_gate=acc >= GATE_ACCURACY,
                best_epoch=trained.training.best_epoch,
                train_time_s=trained.training.train_time_s,
                from_cache=trained.training.from_cache,
            )
        )
    return pd.DataFrame(rows, index=pd.Index(list(models), name="convention"))


# --------------------------------------------------------------------------- device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _on_model(model: torch.nn.Module, *tensors: Tensor) -> tuple[Tensor, ...]:
    device = model_device(model)
    return tuple(t.to(device) for t in tensors)


# --------------------------------------------------------------------------- gradient


@dataclass
class GradientCheck:
    """The closed-form gradient against autograd's, `(B, T, d_in)` each, on the CPU.

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
    """∇_{e_t} of the target logit in closed form (`lopardo_gradient`) and by autograd through
    the model (w.r.t. `inputs_embeds`, every position: under the authors' padding the attended
    UNK padding has a gradient too). The positions are added to the token embeddings, so both
    are the gradient w.r.t. e_t = E[w_t] + p_t."""
    model = trained.model
    ids, mask = _on_model(model, input_ids, attention_mask)
    with torch.no_grad():
        logits = model(ids, mask).logits
    target = logits.argmax(-1) if target is None else target.to(ids.device)
    closed = lopardo_gradient(model, ids, mask, target).cpu()  # (B, T, d)
    config = model.config
    read_ids = (
        ids if config.padding == "masked" else ids.masked_fill(ids == config.pad_id, config.unk_id)
    )
    with torch.enable_grad():
        embeddings = model.tok_emb(read_ids).detach().requires_grad_()  # (B, T, d)
        chosen = model(inputs_embeds=embeddings, attention_mask=mask).logits.gather(
            1, target[:, None]
        )
        (auto,) = torch.autograd.grad(chosen.sum(), embeddings)
    auto = auto.cpu()
    return GradientCheck(
        closed_form=closed,
        autograd=auto,
        max_abs_difference=(closed - auto).abs().amax(dim=(1, 2)),
        max_abs_gradient=auto.abs().amax(dim=(1, 2)),
    )


def gradient_scores(
    model: LopardoClassifier, input_ids: Tensor, gradient: Tensor
) -> dict[str, Tensor]:
    """The four per-token reductions of ∇_{e_t} f `(B, T, d)` the paper shows, each `(B, T)` on
    the CPU: mean over dimensions (signed), L1 and L2 norms, and gradient × input
    Σ_d g_{t,d} e_{t,d} (signed) with e_t = E[w_t] + p_t, the vector the gradient is taken of."""
    (ids,) = _on_model(model, input_ids)
    with torch.no_grad():
        e = model.embed(ids).cpu()  # (B, T, d)
    gradient = gradient.cpu()
    return {
        "gradient (mean)": gradient.mean(dim=-1),
        "gradient (L1)": gradient.abs().sum(dim=-1),
        "gradient (L2)": gradient.norm(dim=-1),
        "gradient × input": (gradient * e).sum(dim=-1),
    }


def proportional_residual(
    trained: LopardoModel, input_ids: Tensor, attention_mask: Tensor, target: Tensor | None = None
) -> Tensor:
    """How far the gradient is from being proportional to attention, `(B,)` in [0, 1].

    Per head, ∇_{e_t} f_h = α_t^h B_t^h with B_t^h = (u_t − f_h) q W_kᵀ/√d + w W_vᵀ (the paper's
    gradient theorem). Were the gradient proportional to attention, B_t^h would be one vector
    c^h for every word. The best such fit c^h = Σ_t α_t G_t / Σ_t α_t² (least squares over the
    document's words t ≥ 1) leaves the relative residual

        r^h = ‖G − α c^h‖_F / ‖G‖_F      (G: (words, d_in), the head's gradient)

    0: proportional; 1: nothing of the gradient is explained by attention times a constant.
    Returned: the mean over heads of r^h per document (CLS, whose gradient has the extra query
    term, and padding are left out).
    """
    model = trained.model
    ids, mask = _on_model(model, input_ids, attention_mask)
    with torch.no_grad():
        out = model(ids, mask)
    target = out.logits.argmax(-1) if target is None else target.to(ids.device)
    grad = lopardo_gradient(model, ids, mask, target, per_head=True).double()  # (B, H, T, d)
    alpha = out.attention.double()  # (B, H, T)
    words = mask.bool().clone()
    words[:, 0] = False
    w = words[:, None, :].double()  # (B, 1, T)
    grad, alpha = grad * w[..., None], alpha * w  # words only
    c = torch.einsum("bht,bhtd->bhd", alpha, grad) / (alpha**2).sum(-1, keepdim=True)
    residual = grad - alpha[..., None] * c[:, :, None, :]  # (B, H, T, d)
    r = residual.flatten(2).norm(dim=-1) / grad.flatten(2).norm(dim=-1)  # (B, H)
    return r.mean(dim=1).cpu()


# --------------------------------------------------------------------------- all explanations


@dataclass
class Explained:
    """Every explanation of a batch of documents, `(B, T)` each, lined up with the tokens.

    scores: "attention (mean)", "attention (max)" over heads, "LIME" (mean over runs of the
        coefficient of each position's word), "LIME approximation" (β̂ of each position's word),
        and the four `GRADIENT_SCORES`. CLS (position 0) and padding are 0 in LIME's scores.
    attention: `(B, H, T)` per head; lime_runs: per document the `(R, D)` coefficients;
    lime_approx: per document β̂ `(D,)`; feature_tokens: per document the word of each feature.
    mask: `(B, T)` the document's tokens; target: `(B,)` explained class; gradient: the check.
    Everything on the CPU.
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
    ids, mask = _on_model(model, input_ids, attention_mask.bool())
    with torch.no_grad():
        out = model(ids, mask)
    target = out.logits.argmax(-1)  # (B,)
    attention = out.attention.cpu()  # (B, H, T)
    check = gradient_check(trained, ids, mask, target)
    scores = {
        "attention (mean)": attention.mean(dim=1),
        "attention (max)": attention.amax(dim=1),
    }
    lime_scores = torch.zeros(ids.shape, dtype=torch.float64)
    approx_scores = torch.zeros(ids.shape, dtype=torch.float64)
    runs, approx, words = [], [], []
    seeds = [seed * 1000 + r for r in range(lime_runs)]
    for b in tqdm(range(ids.size(0)), desc="LIME", disable=not progress):
        c = int(target[b])
        explanation = lime_text(
            model,
            ids[b],
            mask[b],
            target=c,
            n_samples=lime_samples,
            seeds=seeds,
            batch_size=lime_batch_size,
        )
        # The class as a tensor on the model's device (an int would become a tensor there).
        beta_hat = lime_approximation(model, ids[b], mask[b], target=target[b], factor=factor)
        beta_hat = beta_hat.double().cpu()
        lime_scores[b] = explanation.token_scores().mean(dim=0).cpu()
        where = explanation.feature_of_position.cpu()
        approx_scores[b] = beta_hat[where.clamp(min=0)] * (where >= 0)
        runs.append(explanation.coefficients.cpu())
        approx.append(beta_hat)
        words.append(_feature_words(trained.vocab, input_ids[b].cpu(), where))
    scores["LIME"] = lime_scores
    scores["LIME approximation"] = approx_scores
    scores.update(gradient_scores(model, ids, check.closed_form))
    return Explained(
        input_ids=ids.cpu(),
        mask=mask.cpu(),
        target=target.cpu(),
        attention=attention,
        scores=scores,
        gradient=check,
        lime_runs=runs,
        lime_approx=approx,
        feature_tokens=words,
    )


def _feature_words(vocab: Vocab, ids: Tensor, feature_of_position: Tensor) -> list[str]:
    """The word of each LIME feature (its first position's token), from CPU ids `(T,)`."""
    n_features = int(feature_of_position.max()) + 1
    first = [int((feature_of_position == j).nonzero()[0]) for j in range(n_features)]
    return vocab.decode(ids[first])


def explanation_frame(explained: Explained, index: int, vocab: Vocab) -> pd.DataFrame:
    """One document's explanations as a table: one row per real token after CLS."""
    m = explained.mask[index].clone()
    m[0] = False
    tokens = vocab.decode(explained.input_ids[index][m])
    return pd.DataFrame(
        {name: values[index][m].double().numpy() for name, values in explained.scores.items()},
        index=pd.Index(tokens, name="token"),
    )


def top_tokens(frame: pd.DataFrame) -> dict[str, str]:
    """The token each explanation ranks first: the largest weight for attention, the largest
    |score| for the signed and post-hoc explanations (as the paper reads Fig. 1)."""
    return {
        name: str(
            frame[name].idxmax() if name.startswith("attention") else frame[name].abs().idxmax()
        )
        for name in frame.columns
    }


def attention_peakedness(explained: Explained) -> float:
    """Mean over documents of max_t mean_h α_t × n, n the number of attended positions: the
    largest head-averaged weight in units of the uniform 1/n (1 = uniform attention)."""
    attended = explained.attention.sum(dim=1) > 0  # (B, T): positions with any weight
    n = attended.sum(dim=1).double()  # (B,)
    top = explained.scores["attention (mean)"].amax(dim=1).double()  # (B,)
    return float((top * n).mean())


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
    length, factor): `relative_error` = ‖β - β̂‖₂ / ‖β‖₂ (β averaged over the runs; scale-free:
    LIME coefficients shrink as attention spreads over more words), `mean_abs_error` =
    mean_j |β_j - β̂_j|, `correlation` (Pearson over the document's words), `slope`
    (least-squares s in β ≈ s β̂), and the number of distinct words. The class explained is
    the one predicted for the full (truncated to `max_len`) document.
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
            full_ids, full_mask = _on_model(model, *trained.encode([tokens[:limit]]))
            with torch.no_grad():
                predicted = model(full_ids, full_mask).logits.argmax(-1)[0]  # on the device
            target = int(predicted)
            for length in lengths:
                ids, mask = _on_model(model, *trained.encode([tokens[:length]]))
                explanation = lime_text(
                    model,
                    ids[0],
                    mask[0],
                    target=target,
                    n_samples=lime_samples,
                    seeds=seeds,
                    batch_size=lime_batch_size,
                )
                beta = explanation.coefficients.mean(dim=0).cpu()  # (D,)
                for factor in factors:
                    beta_hat = (
                        lime_approximation(model, ids[0], mask[0], target=predicted, factor=factor)
                        .double()
                        .cpu()
                    )
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
    its words (CLS and padding left out), then mean ± std over documents.

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


# --------------------------------------------------------------------------- figures


def figure_fig1(table: pd.DataFrame, title: str) -> Figure:
    """Fig. 1: one sentence's explanations, one row per explainer, coloured by value / max |value|
    per row, the values written in the cells."""
    names = list(table.columns)
    values = table.to_numpy().T  # (explanations, tokens)
    scaled = values / np.abs(values).max(axis=1, keepdims=True).clip(1e-12)
    fig = Figure(figsize=(1.1 * len(table) + 2.5, 0.5 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.imshow(scaled, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(table)), table.index, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title)
    return fig


def figure_fig5(check: GradientCheck, tokens: list[str], doc: int = 0, dims: int = 80) -> Figure:
    """Fig. 5: closed-form and autograd gradients (tokens × first `dims` dimensions) of one
    document and their difference."""
    n = len(tokens)
    dims = min(dims, check.closed_form.size(-1))
    closed = check.closed_form[doc, :n, :dims].numpy()
    auto = check.autograd[doc, :n, :dims].numpy()
    limit = float(np.abs(auto).max())
    fig = Figure(figsize=(16, 0.16 * n + 2.5), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for panel, matrix, title in [
        (axes[0], closed, "closed form (Lopardo et al.)"),
        (axes[1], auto, "autograd"),
        (axes[2], closed - auto, "difference"),
    ]:
        vmax = limit if title != "difference" else max(float(np.abs(closed - auto).max()), 1e-12)
        image = panel.imshow(
            matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest"
        )
        panel.set_title(title)
        panel.set_xlabel(f"embedding dimension (first {dims})")
        fig.colorbar(image, ax=panel, shrink=0.7)
    axes[0].set_yticks(range(n), tokens, fontsize=6)
    fig.suptitle("Fig. 5: ∇ of the logit w.r.t. each token embedding, one test review")
    return fig


def figure_fig4(explained: Explained, index: int = 0, top: int = 10) -> Figure:
    """Fig. 4: box plots of the LIME runs for the `top` words with the largest mean |β|, β̂
    (factor 3/2, the paper's) as red ×, β̂ with factor 1 as blue +."""
    runs = explained.lime_runs[index].numpy()  # (R, D)
    beta_hat = explained.lime_approx[index].numpy()  # (D,)
    words = explained.feature_tokens[index]
    order = np.argsort(-np.abs(runs.mean(axis=0)))[:top]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ax.boxplot([runs[:, j] for j in order], positions=range(len(order)))
    x = range(len(order))
    ax.scatter(x, beta_hat[order], marker="x", color="red", s=60, zorder=3, label="β̂ (factor 3/2)")
    ax.scatter(
        x, beta_hat[order] / 1.5, marker="+", color="tab:blue", s=60, zorder=3, label="β̂, factor 1"
    )
    ax.set_xticks(range(len(order)), [words[j] for j in order], rotation=30, ha="right")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("LIME coefficient")
    n_words = int(explained.mask[index].sum()) - 1
    ax.set_title(f"Fig. 4: {runs.shape[0]} LIME runs, one test review ({n_words} words)")
    ax.legend()
    return fig


def figure_lime_by_length(frames: dict[str, pd.DataFrame]) -> Figure:
    """Relative error, mean |β − β̂| and correlation against document length, per padding
    convention (colour) and factor (marker), mean ± std over documents."""
    fig = Figure(figsize=(15, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    columns = ["relative_error", "mean_abs_error", "correlation"]
    titles = ["‖β − β̂‖ / ‖β‖", "mean |β − β̂|", "corr(β, β̂)"]
    for (name, frame), colour in zip(frames.items(), ["tab:red", "tab:blue"], strict=False):
        for factor, style in [(1.5, "o-"), (1.0, "s--")]:
            rows = frame[frame.factor == factor].groupby("length")
            for panel, column in zip(axes, columns, strict=True):
                mean, std = rows[column].mean(), rows[column].std()
                label = f"{name}, factor {factor:g}"
                panel.errorbar(
                    mean.index, mean, yerr=std, fmt=style, color=colour, capsize=3, label=label
                )
    for panel, title in zip(axes, titles, strict=True):
        panel.set_xscale("log", base=2)
        panel.set_xlabel("document length (words)")
        panel.set_title(title)
    axes[0].legend(fontsize=7)
    return fig


def figure_additivity(mean_of_heads: Tensor, model_coefficients: Tensor) -> Figure:
    """LIME of the model against the mean of LIME run on each head, with the diagonal."""
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(mean_of_heads, model_coefficients, s=10)
    lo, hi = float(model_coefficients.min()), float(model_coefficients.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xlabel("mean over heads of LIME(head)")
    ax.set_ylabel("LIME(model)")
    ax.set_title("LIME additivity over heads")
    return fig


def figure_agreement(rhos: dict[str, dict[str, Tensor]]) -> Figure:
    """Box plots of the per-document Spearman ρ with mean attention, one panel per convention."""
    fig = Figure(figsize=(6 * len(rhos), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(rhos), sharey=True))
    for ax, (name, rho) in zip(axes, rhos.items(), strict=True):
        names = list(rho)
        ax.boxplot([rho[n][~rho[n].isnan()].numpy() for n in names], positions=range(len(names)))
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(name)
    axes[0].set_ylabel("Spearman ρ with mean attention")
    return fig


__all__ = [
    "ACCURACY_TOLERANCE",
    "GATE_ACCURACY",
    "GRADIENT_SCORES",
    "PADDINGS",
    "PAPER_ACCURACY",
    "SIZES",
    "Explained",
    "GradientCheck",
    "LopardoModel",
    "Run",
    "agreement_table",
    "attention_peakedness",
    "evaluate_accuracy",
    "explain_documents",
    "explanation_frame",
    "gradient_check",
    "gradient_scores",
    "lime_error_by_length",
    "model_device",
    "model_table",
    "proportional_residual",
    "setup",
    "top_tokens",
    "train_both",
    "train_model",
]
