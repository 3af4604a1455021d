"""Jain & Wallace (2019) and Wiegreffe & Pinter (2019): the shared experimental steps.

Both papers train J&W's additive-attention classifier (`attnkit.models.AdditiveClassifier`, a
BiLSTM or the non-contextual "average" encoder) on binary text classification and then ask how
much its attention explains. This module holds what both notebooks repeat:

* `load_splits`: train / dev / test of one dataset (`"sst"`, `"imdb"`, `"agnews"` = AG News
  World vs Business), at the sizes a profile asks for, without empty or over-long documents;
* `train_classifier`: fit the classifier (learned, uniform or imposed attention; cached);
* `evaluate`: accuracy and macro-F1, optionally with imposed attention;
* `explain`: attention, J&W's gradient (attention detached) and leave-one-out per token;
* `leave_one_out`: J&W's LOO, |Δŷ| when a token is *deleted* (or replaced by UNK);
* `kendall_scores` / `kendall_table`: per-instance Kendall τ between the three, summarised;
* `attention_of`: a model's attention per example, to impose on another model (W&P §3.3);
* `imposed`: examples carrying imposed attention for `AdditiveCollate`.

The papers' own numbers used for comparison live here too (`JW_PAPER_KENDALL`,
`JW_REPO_KENDALL`, `JW_REPO_ACCURACY`), with their provenance from `shared/papers/CLAIMS.md`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from attnkit import metrics
from attnkit.data.types import TextDataset
from attnkit.importance.jw_gradient import jw_gradient
from attnkit.importance.leave_one_out import leave_one_out, model_device
from attnkit.metrics import macro_f1
from attnkit.models import AdditiveClassifier, AdditiveCollate, AdditiveConfig, Vocab
from attnkit.models.vocab import labelled_examples
from attnkit.models.word_vectors import vocabulary_vectors
from attnkit.train import TrainConfig, TrainResult, predict, train_model

# Moved to attnkit.importance / attnkit.metrics; kept importable from here.
__reexported__ = (jw_gradient, leave_one_out, macro_f1)

# Bump when this module's training changes in a way the trainer's cache key cannot see.
RECIPE_VERSION = 2

#: Our dataset names -> (`attnkit.data.load` name, load options).
DATASETS: dict[str, tuple[str, dict[str, Any]]] = {
    "sst": ("sst2", {}),
    "imdb": ("imdb", {}),
    "agnews": ("ag_news", {"classes": ("World", "Business")}),
}

#: The pairs of token scores J&W correlate (their Table 2 and the repo's CorrStats files).
PAIRS: tuple[tuple[str, str], ...] = (
    ("attention", "gradient"),
    ("attention", "loo"),
    ("gradient", "loo"),
)

#: J&W Table 2 [3P transcription, CLAIMS.md §2.2]: mean τ (class 0, class 1) and the
#: fraction significant at p ≤ 0.05. "loo/average" is [NOT FOUND].
JW_PAPER_KENDALL: dict[tuple[str, str, str], tuple[float, float]] = {
    ("sst", "lstm", "attention–gradient"): (0.40, 0.38),
    ("sst", "average", "attention–gradient"): (0.69, 0.69),
    ("sst", "lstm", "attention–loo"): (0.34, 0.33),
    ("imdb", "lstm", "attention–gradient"): (0.37, 0.37),
    ("imdb", "average", "attention–gradient"): (0.65, 0.66),
    ("imdb", "lstm", "attention–loo"): (0.30, 0.31),
    ("agnews", "lstm", "attention–gradient"): (0.42, 0.35),
    ("agnews", "average", "attention–gradient"): (0.77, 0.75),
    ("agnews", "lstm", "attention–loo"): (0.35, 0.32),
}

#: The authors' repository, `graph_outputs/CorrStats_kendalltau` (commit 425a89a) [READ-REPO,
#: CLAIMS.md §2.3]: mean τ over the test set (sig. frac.). Labels already untangled from the
#: repo's `ag`/`al` naming trap.
JW_REPO_KENDALL: dict[tuple[str, str, str], tuple[float, float]] = {
    ("sst", "lstm", "attention–gradient"): (0.351, 0.49),
    ("sst", "lstm", "attention–loo"): (0.291, 0.36),
    ("sst", "lstm", "gradient–loo"): (0.656, 0.91),
    ("sst", "average", "attention–gradient"): (0.606, 0.85),
    ("sst", "average", "attention–loo"): (0.623, 0.88),
    ("sst", "average", "gradient–loo"): (0.558, 0.73),
    ("imdb", "lstm", "attention–gradient"): (0.437, 1.00),
    ("imdb", "lstm", "attention–loo"): (0.341, 0.99),
    ("imdb", "lstm", "gradient–loo"): (0.517, 1.00),
    ("imdb", "average", "attention–gradient"): (0.675, 1.00),
    ("imdb", "average", "attention–loo"): (0.576, 1.00),
    ("imdb", "average", "gradient–loo"): (0.639, 1.00),
    ("agnews", "lstm", "attention–gradient"): (0.389, 0.86),
    ("agnews", "lstm", "attention–loo"): (0.367, 0.80),
    ("agnews", "lstm", "gradient–loo"): (0.612, 0.99),
    ("agnews", "average", "attention–gradient"): (0.770, 1.00),
    ("agnews", "average", "attention–loo"): (0.507, 0.97),
    ("agnews", "average", "gradient–loo"): (0.494, 0.94),
}

#: BiLSTM test accuracy: repo `graph_outputs/evaluate/*+lstm+tanh.json` [READ-REPO] and the
#: paper's Table 1 F1 [3P] (CLAIMS.md §2.4).
JW_REPO_ACCURACY = {"sst": 0.808, "imdb": 0.898, "agnews": 0.958}
JW_PAPER_F1 = {"sst": 0.81, "imdb": 0.88, "agnews": 0.96}

#: Wiegreffe & Pinter's eight seeds (`sarahwie/attention`, `seeds.txt`).
WP_SEEDS = (50, 257, 500231, 100078, 12504, 90754789, 8988812, 2)


# --------------------------------------------------------------------------- data


@dataclass
class Splits:
    """Train / dev / test of one dataset. `dropped` counts documents left out per split
    (empty, or longer than `max_tokens`)."""

    name: str
    train: TextDataset
    dev: TextDataset
    test: TextDataset
    dropped: dict[str, int]

    @property
    def synthetic(self) -> bool:
        return bool(self.train.synthetic or self.dev.synthetic or self.test.synthetic)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)}


def _take(dataset: TextDataset, n: int | None, max_tokens: int | None, seed: int):
    keep = [
        i
        for i, tokens in enumerate(dataset.texts)
        if len(tokens) >= 2 and (max_tokens is None or len(tokens) <= max_tokens)
    ]
    dropped = len(dataset) - len(keep)
    if n is not None and len(keep) > n:
        chosen = np.random.default_rng(seed).choice(len(keep), size=n, replace=False)
        keep = [keep[i] for i in sorted(chosen.tolist())]
    return dataset.subset(keep), dropped


def load_splits(
    name: str,
    *,
    n_train: int | None,
    n_dev: int | None,
    n_test: int | None,
    max_tokens: int | None = None,
    data_dir: str | None = None,
    require_data: bool = False,
    seed: int = 0,
) -> Splits:
    """Load `name` ("sst", "imdb" or "agnews") and cut it to the profile's sizes.

    Documents with fewer than 2 tokens (Kendall τ needs two) or more than `max_tokens` are
    dropped (J&W also cap lengths); then a seeded subset of `n_*` documents is kept (None: all).
    Missing files fall back to synthetic data with a warning (`attnkit.data.load`).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    from attnkit.data import load

    source, options = DATASETS[name]
    parts, dropped = {}, {}
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        data = load(
            source, split, data_dir=data_dir, require_data=require_data, seed=seed, **options
        )
        parts[split], dropped[split] = _take(data, n, max_tokens, seed)
        if len(parts[split]) == 0:
            raise ValueError(
                f"{name}/{split} has no documents of 2..{max_tokens} tokens; raise max_tokens."
            )
    return Splits(name, parts["train"], parts["dev"], parts["test"], dropped)


def imposed(data: TextDataset, weights: Sequence[Sequence[float]]) -> list[tuple]:
    """`(tokens, label, weights)` triples: `AdditiveCollate` hands the weights to the model as
    imposed attention (Wiegreffe & Pinter §3.3). One weight per token."""
    pairs = labelled_examples(data)
    if len(weights) != len(pairs):
        raise ValueError(f"{len(weights)} attention rows for {len(pairs)} documents")
    return [(tokens, label, tuple(w)) for (tokens, label), w in zip(pairs, weights, strict=True)]


# --------------------------------------------------------------------------- models


@dataclass
class Classifier:
    """A trained `AdditiveClassifier` with its vocabulary, collate and training record."""

    model: AdditiveClassifier
    vocab: Vocab
    collate: AdditiveCollate
    training: TrainResult
    dataset: str
    encoder: str
    attention: str  # "learned", "uniform" or "imposed"

    def examples(self, data: TextDataset) -> list[tuple]:
        return labelled_examples(data)


def train_classifier(
    splits: Splits,
    *,
    encoder: str = "lstm",
    attention: str = "learned",
    imposed_train: Sequence[Sequence[float]] | None = None,
    imposed_dev: Sequence[Sequence[float]] | None = None,
    profile: str = "quick",
    embed_dim: int | None = None,
    hidden_size: int | None = None,
    epochs: int = 8,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    patience: int | None = 3,
    min_count: int = 2,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    pretrained: bool = False,
) -> Classifier:
    """Fit J&W's classifier on `splits.train`, early-stopping on dev accuracy (cached).

    `encoder`: "lstm" or "average". `attention`: "learned" (J&W), "uniform" (W&P §3.1) or
    "imposed": trained and selected with the given per-document weights (`imposed_train`,
    `imposed_dev`), W&P's diagnostic. Sizes come from `AdditiveConfig.for_profile(profile)`
    unless `embed_dim` / `hidden_size` are given. J&W train with Adam, weight decay 1e-5,
    batch 32. The vocabulary keeps train tokens seen `min_count` times; the rest are UNK.
    `pretrained`: initialise the embeddings with MiniLM's word vectors
    (`attnkit.models.word_vectors`, our stand-in for J&W's fastText) and keep them frozen.
    """
    if attention not in ("learned", "uniform", "imposed"):
        raise ValueError(f"attention must be learned, uniform or imposed, got {attention!r}")
    if (attention == "imposed") != (imposed_train is not None and imposed_dev is not None):
        raise ValueError("attention='imposed' needs imposed_train and imposed_dev (and only it)")
    vocab = Vocab.build(splits.train.texts, min_count=min_count)
    overrides: dict[str, Any] = {"encoder": encoder}
    if attention == "uniform":
        overrides["attention"] = "uniform"
    if embed_dim is not None:
        overrides["embed_dim"] = embed_dim
    if hidden_size is not None:
        overrides["hidden_size"] = hidden_size
    vectors = vocabulary_vectors(vocab.itos) if pretrained else None
    if vectors is not None:
        overrides.update(embed_dim=vectors.shape[1], freeze_embeddings=True)
    config = AdditiveConfig.for_profile(profile, len(vocab), **overrides)

    def build(vocab: Vocab) -> AdditiveClassifier:
        model = AdditiveClassifier(config)
        return model if vectors is None else model.load_embeddings(vectors)

    if attention == "imposed":
        train_examples = imposed(splits.train, imposed_train)
        dev_examples = imposed(splits.dev, imposed_dev)
    else:
        train_examples, dev_examples = (
            labelled_examples(splits.train),
            labelled_examples(splits.dev),
        )
    trained = train_model(
        build,
        train_examples,
        dev_examples,
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
        ),
        seed=seed,
        device=device,
        vocab=vocab,
        cache_key_extra={"recipe": "explanation", "version": RECIPE_VERSION},
        progress=progress,
    )
    return Classifier(
        trained.model, vocab, trained.collate, trained.training, splits.name, encoder, attention
    )


def _check_texts(texts: Sequence[Sequence[str]]) -> None:
    empty = [i for i, tokens in enumerate(texts) if len(tokens) == 0]
    if empty:
        raise ValueError(
            f"documents {empty[:10]} are empty: the classifier attends over a document's "
            "tokens and an empty one has none. Drop them first (load_splits does)."
        )


def predict_proba(
    clf: Classifier,
    data: TextDataset | Sequence[Sequence[str]],
    attention: Sequence[Sequence[float]] | None = None,
    batch_size: int = 128,
) -> Tensor:
    """Class probabilities `(N, C)` for a dataset or a list of token lists; `attention`
    imposes one weight row per document. Empty documents raise a clear `ValueError`."""
    if isinstance(data, TextDataset):
        texts, labels = data.texts, data.labels
    else:
        texts, labels = list(data), [0] * len(data)
    _check_texts(texts)
    examples: list[tuple] = [(tuple(t), int(y)) for t, y in zip(texts, labels, strict=True)]
    if attention is not None:
        examples = [(t, y, tuple(w)) for (t, y), w in zip(examples, attention, strict=True)]
    logits = predict(clf.model, examples, collate=clf.collate, batch_size=batch_size)  # (N, C)
    return torch.softmax(logits, dim=-1)


def evaluate(
    clf: Classifier, data: TextDataset, attention: Sequence[Sequence[float]] | None = None
) -> dict[str, float]:
    """`{"accuracy", "f1"}` (macro-F1) on `data`, with imposed `attention` if given."""
    predicted = predict_proba(clf, data, attention).argmax(dim=-1).tolist()
    labels = list(data.labels)
    return {
        "accuracy": float(np.mean(np.asarray(predicted) == np.asarray(labels))),
        "f1": macro_f1(predicted, labels),
    }


def attention_of(clf: Classifier, data: TextDataset, batch_size: int = 128) -> list[list[float]]:
    """The model's own attention over each document's tokens (one list per document)."""
    _check_texts(data.texts)

    def forward(model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return list(zip(out.attention, batch["attention_mask"].bool(), strict=True))

    rows: list[list[float]] = []
    for part in predict(
        clf.model, labelled_examples(data), clf.collate, batch_size=batch_size, forward=forward
    ):
        rows.extend(weights[mask].tolist() for weights, mask in part)
    return rows


# --------------------------------------------------------------------------- importance


@dataclass
class Explanations:
    """Token scores for N documents (padded to T): attention, gradient and LOO `(N, T)`,
    mask `(N, T)` bool, probs `(N, C)`, labels `(N,)`."""

    attention: Tensor
    gradient: Tensor
    loo: Tensor
    mask: Tensor
    probs: Tensor
    labels: Tensor

    def __getitem__(self, name: str) -> Tensor:
        return getattr(self, name)


def _pad_cat(parts: list[Tensor]) -> Tensor:
    longest = max(p.shape[-1] for p in parts)
    return torch.cat([torch.nn.functional.pad(p, (0, longest - p.shape[-1])) for p in parts])


def explain(
    clf: Classifier,
    data: TextDataset,
    *,
    batch_size: int = 32,
    loo_mode: str = "delete",
) -> Explanations:
    """Attention, J&W's gradient and leave-one-out for every document of `data`."""
    _check_texts(data.texts)
    examples = labelled_examples(data)
    parts: dict[str, list[Tensor]] = {k: [] for k in ("attention", "gradient", "loo", "mask")}
    probs, labels = [], []
    model = clf.model
    model.eval()
    device = model_device(model)
    for start in range(0, len(examples), batch_size):
        batch = clf.collate(examples[start : start + batch_size])  # CPU tensors
        ids, mask = batch["input_ids"], batch["attention_mask"]
        with torch.no_grad():
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device))
        parts["attention"].append(out.attention.double().cpu())
        parts["gradient"].append(jw_gradient(model, ids, mask))  # back on the inputs' device
        parts["loo"].append(leave_one_out(model, ids, mask, mode=loo_mode))
        parts["mask"].append(mask.bool())
        probs.append(torch.softmax(out.logits, -1).cpu())
        labels.append(batch["labels"])
    joined = {k: _pad_cat(v) for k, v in parts.items()}
    return Explanations(**joined, probs=torch.cat(probs), labels=torch.cat(labels))


def kendall_scores(expl: Explanations) -> dict[str, metrics.KendallResult]:
    """Per-document Kendall τ-b and p-value for each pair in `PAIRS`, keyed "a–b"."""
    return {f"{a}–{b}": metrics.kendall(expl[a], expl[b], expl.mask) for a, b in PAIRS}


def kendall_table(explained: dict[tuple[str, str], Explanations]) -> pd.DataFrame:
    """One row per (dataset, encoder, pair): mean ± std of τ, the fraction of documents with
    p ≤ 0.05 (J&W's "sig. frac."), mean τ per class, and the paper's and repo's values."""
    rows = []
    for (dataset, encoder), expl in explained.items():
        for pair, result in kendall_scores(expl).items():
            summary = metrics.mean_std(result.tau)
            per_class = [metrics.mean_std(result.tau[expl.labels == c]).mean for c in (0, 1)]
            paper = JW_PAPER_KENDALL.get((dataset, encoder, pair))
            repo = JW_REPO_KENDALL.get((dataset, encoder, pair))
            rows.append(
                {
                    "dataset": dataset,
                    "encoder": encoder,
                    "pair": pair,
                    "tau_mean": summary.mean,
                    "tau_std": summary.std,
                    "sig_frac": metrics.fraction_significant(result.p_value),
                    "tau_class0": per_class[0],
                    "tau_class1": per_class[1],
                    "n": summary.n,
                    "paper_class0/1": f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "–",
                    "repo_tau (sig)": f"{repo[0]:.3f} ({repo[1]:.2f})" if repo else "–",
                }
            )
    return pd.DataFrame(rows)


def tau_of(table: pd.DataFrame, dataset: str, encoder: str, pair: str) -> float:
    """Mean τ of one cell of `kendall_table`."""
    hit = table[(table.dataset == dataset) & (table.encoder == encoder) & (table.pair == pair)]
    return float(hit["tau_mean"].iloc[0])


# --------------------------------------------------------------------------- profiles


#: Data and training sizes of the base models per notebook profile, shared by both notebooks
#: so that Wiegreffe & Pinter's notebook reuses Jain & Wallace's trained models from the
#: trainer's cache. Per dataset: (n_train, max_tokens); n_dev / n_test are common. Embeddings:
#: MiniLM's word vectors, frozen (`pretrained`; J&W: fastText / word2vec). `quick` trains on
#: the full SST and AG News (World vs Business) training sets and 4,000 IMDB reviews of ≤ 180
#: tokens, 2 epochs (3 for IMDB; dev accuracy peaks by then), 64 LSTM units per direction
#: (J&W: 128). `epochs` is a number or one per dataset.
#: `full`: all data, J&W's 128 units, 20 epochs.
BASE_SIZES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        n_train={"sst": 200, "imdb": 200, "agnews": 200},
        max_tokens={"sst": 40, "imdb": 60, "agnews": 40},
        n_dev=50,
        n_test=30,
        epochs=1,
        hidden=16,
        pretrained=True,
    ),
    "quick": dict(
        n_train={"sst": None, "imdb": 4000, "agnews": None},
        max_tokens={"sst": None, "imdb": 180, "agnews": None},
        n_dev=500,
        n_test=500,
        epochs={"sst": 2, "imdb": 3, "agnews": 2},
        hidden=64,
        pretrained=True,
    ),
    "full": dict(
        n_train={"sst": None, "imdb": None, "agnews": None},
        max_tokens={"sst": None, "imdb": 400, "agnews": None},
        n_dev=None,
        n_test=None,
        epochs=20,
        hidden=128,
        pretrained=True,
    ),
}


def base_splits(
    name: str, profile: str, *, data_dir: str | None, require_data: bool, seed: int
) -> Splits:
    """`load_splits` at `BASE_SIZES[profile]`."""
    size = BASE_SIZES[profile]
    return load_splits(
        name,
        n_train=size["n_train"][name],
        n_dev=size["n_dev"],
        n_test=size["n_test"],
        max_tokens=size["max_tokens"][name],
        data_dir=data_dir,
        require_data=require_data,
        seed=seed,
    )


def train_base(
    splits: Splits,
    profile: str,
    *,
    encoder: str = "lstm",
    attention: str = "learned",
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    **imposed_attention: Any,
) -> Classifier:
    """`train_classifier` with `BASE_SIZES[profile]`'s epochs, width and embeddings."""
    size = BASE_SIZES[profile]
    epochs = size["epochs"]
    return train_classifier(
        splits,
        encoder=encoder,
        attention=attention,
        profile=profile,
        epochs=epochs[splits.name] if isinstance(epochs, dict) else epochs,
        hidden_size=size["hidden"],
        pretrained=size["pretrained"],
        patience=None,
        seed=seed,
        device=device,
        progress=progress,
        **imposed_attention,
    )


def as_classifier(model: AdditiveClassifier, like: Classifier, attention: str) -> Classifier:
    """Wrap another model that reads `like`'s vocabulary (a seed run, an adversary)."""
    return Classifier(
        model, like.vocab, like.collate, like.training, like.dataset, like.encoder, attention
    )


def consistent_adversaries(
    base: Classifier,
    splits: Splits,
    lams: Sequence[float],
    *,
    epochs: int,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    eval_data: TextDataset | None = None,
):
    """Wiegreffe & Pinter's model-consistent adversaries (`train_consistent_adversary`), one
    per λ, trained on `splits.train` against `base` and measured on `eval_data` (default
    `splits.test`). Each starts from the base model's frozen pretrained embeddings."""
    from attnkit.adversarial import train_consistent_adversary

    def fresh_model() -> AdditiveClassifier:
        # Same architecture and the same (frozen) pretrained embeddings as the base model.
        model = AdditiveClassifier(base.model.config)
        return model.load_embeddings(base.model.embedding.weight.detach().cpu())

    return train_consistent_adversary(
        base.model,
        base.examples(splits.train),
        list(lams),
        collate=base.collate,
        model_factory=fresh_model,
        config=TrainConfig(
            epochs=epochs, batch_size=32, lr=1e-3, weight_decay=1e-5, seed=seed, device=device
        ),
        eval_data=base.examples(splits.test if eval_data is None else eval_data),
        progress=progress,
    )


def pick_adversary(adversaries: Sequence[Any], max_tvd: float = 0.05) -> Any | None:
    """The consistent adversary with the largest mean JSD among those with mean TVD ≤ `max_tvd`
    (J&W's |Δŷ| ≤ 0.05, the same budget as the per-instance adversary); None when none
    qualifies (the caller reports "inconclusive", never a stand-in)."""
    close = [a for a in adversaries if a.mean_tvd <= max_tvd]
    return max(close, key=lambda a: a.mean_jsd) if close else None
