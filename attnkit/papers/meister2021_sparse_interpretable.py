"""Meister, Lazov, Augenstein & Cotterell 2021, "Is Sparse Attention more Interpretable?"
(ACL 2021 short, arXiv:2106.01087): the code of `notebooks/meister2021_sparse_interpretable`.

Text classifiers (Jain & Wallace's BiLSTM with additive attention, and a 1-layer Transformer
encoder under the same attention) trained with softmax, sparsemax and 1.5-entmax; per model:
accuracy, attention sparsity, Kendall τ between attention and input importance (over all tokens,
within the attention's support, and for the 0/1 support indicator), the co-indexed share of
input influence on each hidden state (anchored between chance 1/n and 1), and the entropy of
attention against the entropy of input influence on the attended context.

The paper's tables, datasets and α values were not available (CLAIMS.md §4: abstract,
introduction and a third-party summary only), so its claims are the abstract's, in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from attnkit.data import load
from attnkit.metrics import entropy, kendall, sparsity
from attnkit.models.vocab import Vocab
from attnkit.train import TrainConfig, TrainResult

NORMALIZERS = ("softmax", "sparsemax", "entmax15")
SPARSE = ("sparsemax", "entmax15")
# AG News at CPU scale: the World-vs-Business pair (binary, like SST-2 and IMDB).
DATA_OPTIONS = {"ag_news": {"classes": ("World", "Business")}}

# Sizes per profile. The paper's model sizes were not found; `full` uses J&W's BiLSTM sizes
# (128 hidden) on the whole training sets with texts cut to 200 tokens. n_test: examples for
# accuracy (enough that test-set noise alone does not decide the ±0.05 gate); n_explain: the
# first test examples for the Jacobian-based measures. `pretrained`: MiniLM's input embeddings,
# frozen, as the pretrained word vectors (the Jain & Wallace notebook's stand-in for fastText).
SIZES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        datasets=["sst2"],
        architectures=["lstm", "transformer"],
        n_train=120,
        n_dev=30,
        n_test=40,
        n_explain=12,
        epochs=1,
        batch_size=32,
        lr=3e-3,
        max_len=24,
        hidden=16,
        n_probes=2,
        pretrained=True,
    ),
    "quick": dict(
        datasets=["sst2", "imdb", "ag_news"],
        architectures=["lstm", "transformer"],
        n_train=4000,
        n_dev=100,
        n_test=1000,
        n_explain=40,
        epochs=5,
        batch_size=64,
        lr=3e-3,
        max_len=32,
        hidden=32,
        n_probes=2,
        pretrained=True,
    ),
    "full": dict(
        datasets=["sst2", "imdb", "ag_news"],
        architectures=["lstm", "transformer"],
        n_train=None,
        n_dev=None,
        n_test=None,
        n_explain=500,
        epochs=8,
        batch_size=32,
        lr=1e-3,
        max_len=200,
        hidden=128,
        n_probes=16,
        pretrained=True,
    ),
}

# The paper's statements (abstract; no numbers were found).
PAPER_WEAK_COINDEXED = (
    "'only a weak relationship between inputs and co-indexed intermediate representations — "
    "under sparse attention and otherwise' (no numbers found)"
)
PAPER_NO_SPARSE_INFLUENCE = (
    "no 'plausible mappings from sparse attention distributions to a sparse set of influential "
    "inputs' (no numbers found)"
)
PAPER_TAU = (
    "'increasing sparsity tends to reduce the correlation between attention and input feature "
    "importance' (no numbers found)"
)
SOURCE_ABSTRACT = "Meister et al. 2021, abstract"
SOURCE_TAU = "Meister et al. 2021, abstract and third-party summary (CLAIMS.md §4)"

# Gates: the claims need models that learned their task, and sparse models as good as softmax.
MIN_ACCURACY = 0.65  # every model of a pair: 0.15 above chance on the balanced binary tasks
MAX_GAP_TO_SOFTMAX = 0.05  # |sparse − softmax twin| test accuracy (the gate)
MIN_SHARE_PASSING = 0.5  # of the (dataset, architecture) pairs, for the claims to be tested


def sizes(profile: str) -> dict[str, Any]:
    """The profile's sizes; a clear error for an unknown profile."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    return dict(SIZES[profile])


@dataclass
class Classifier:
    """A trained text classifier (BiLSTM or transformer + additive attention) with its vocabulary."""

    name: str
    architecture: str
    normalizer: str
    model: torch.nn.Module
    vocab: Vocab
    max_len: int
    training: TrainResult


def train_classifier(
    train: Any,
    dev: Any,
    *,
    architecture: str = "lstm",
    normalizer: str = "softmax",
    embed_dim: int = 32,
    hidden_size: int = 32,
    n_layer: int = 1,
    n_head: int = 2,
    max_len: int = 64,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 2e-3,
    min_count: int = 2,
    pretrained: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> Classifier:
    """Fit Meister et al.'s classifier: BiLSTM (`architecture="lstm"`, J&W's additive-attention
    model) or a `n_layer` transformer (`"transformer"`), with `normalizer` attention.

    Texts are truncated to `max_len` tokens. `pretrained`: MiniLM's input embeddings, frozen,
    as the stand-in for pretrained word vectors (as in the Jain & Wallace notebook); `embed_dim`
    is then theirs (384). Trained with `attnkit.train.train_model`, cached by config, data and seed.
    """
    from attnkit.models.additive import AdditiveClassifier, AdditiveCollate, AdditiveConfig
    from attnkit.models.sparse_encoder import transformer_classifier
    from attnkit.models.word_vectors import vocabulary_vectors
    from attnkit.train import train_model

    if architecture not in ("lstm", "transformer"):
        raise ValueError(f"architecture must be 'lstm' or 'transformer', got {architecture!r}")
    vocab = Vocab.build(train.texts, min_count=min_count)
    vectors = vocabulary_vectors(vocab.itos) if pretrained else None
    n_classes = len(train.label_names)
    config = AdditiveConfig(
        vocab_size=len(vocab),
        embed_dim=embed_dim if vectors is None else vectors.shape[1],
        hidden_size=hidden_size,
        encoder="lstm",
        normalizer=normalizer,
        n_classes=n_classes,
        head="sigmoid" if n_classes == 2 else "softmax",
        freeze_embeddings=vectors is not None,
    )

    def build(vocab: Vocab) -> AdditiveClassifier:
        if architecture == "lstm":
            model = AdditiveClassifier(config)
        else:
            model = transformer_classifier(config, n_layer=n_layer, n_head=n_head, max_len=max_len)
        return model if vectors is None else model.load_embeddings(vectors)

    trained = train_model(
        build,
        _truncated(train, max_len),
        _truncated(dev, max_len),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=1e-5,
            patience=2,
            max_grad_norm=1.0,
        ),
        seed=seed,
        device=device,
        vocab=vocab,
        collate_factory=lambda vocab: AdditiveCollate(vocab, max_len),
        progress=progress,
    )
    return Classifier(
        f"{architecture}/{normalizer}",
        architecture,
        normalizer,
        trained.model,
        vocab,
        max_len,
        trained.training,
    )


def _truncated(data: Any, max_len: int) -> list[tuple[tuple[str, ...], int]]:
    """`(tokens, label)` pairs with each text cut to its first `max_len` tokens (on purpose: the
    CPU profiles read only the start of long reviews), empty texts dropped."""
    return [
        (tuple(tokens[:max_len]), label)
        for tokens, label in zip(data.texts, data.labels, strict=True)
        if len(tokens) > 0
    ]


def _encode(classifier: Classifier, data: Any) -> tuple[Tensor, Tensor, Tensor]:
    pairs = _truncated(data, classifier.max_len)
    ids, mask = classifier.vocab.encode([t for t, _ in pairs], add_cls=False)
    device = next(classifier.model.parameters()).device
    labels = torch.tensor([y for _, y in pairs], device=device)
    return ids.to(device), mask.to(device).bool(), labels


def input_influence(
    classifier: Classifier, ids: Tensor, mask: Tensor, *, n_probes: int | None = 8, seed: int = 0
) -> dict[str, Tensor]:
    """How hidden states and the attended context depend on the input embeddings.

    * `coindexed` `(B, T)`: for each real position t, the share of ‖∂h_t/∂e_t‖ in Σ_s ‖∂h_t/∂e_s‖
      (Frobenius norms of the Jacobian blocks);
    * `context` `(B, T)`: ‖∂c/∂e_s‖ normalised over s, for the attended context c = Σ_t α_t h_t
      with α held fixed (the model's own attention, detached): the input-influence distribution.

    Jacobian norms are estimated with `n_probes` Gaussian probes u: E‖uᵀJ‖² = ‖J‖²_F (unbiased
    for the squared norm; the same probes for every model); `n_probes=None` computes them exactly
    (one probe per hidden unit). Gradients flow through the encoder only.
    """
    model = classifier.model
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    try:
        with torch.no_grad():
            attention = model.attend(model.encode(model.embed(ids), mask), mask)  # (B, T)
        embeds = model.embed(ids).detach().requires_grad_(True)  # (B, T, E)
        hidden = model.encode(embeds, mask)  # (B, T, H)
        B, T, H = hidden.shape
        if n_probes is None:
            probes = torch.eye(H, device=hidden.device)  # exact: ‖J‖²_F = Σ_j ‖e_jᵀJ‖²
        else:
            probes = torch.randn(n_probes, H, generator=generator).to(hidden.device)  # (K, H)
        n_probes = probes.shape[0]
        blocks = torch.zeros(B, T, T, dtype=torch.float64, device=hidden.device)  # [b, t, s]
        for t in range(T):
            for k in range(n_probes):
                (grad,) = torch.autograd.grad(
                    (hidden[:, t] @ probes[k]).sum(), embeds, retain_graph=True
                )  # (B, T, E)
                blocks[:, t] += grad.pow(2).sum(-1).double()
        norms = (blocks / n_probes).sqrt()  # ‖∂h_t/∂e_s‖, (B, T, T)
        real_pair = mask[:, :, None] & mask[:, None, :]
        norms = norms * real_pair
        diagonal = torch.diagonal(norms, dim1=1, dim2=2)  # (B, T)
        coindexed = diagonal / norms.sum(-1).clamp_min(1e-30)
        context = hidden.mul(attention.detach()[..., None]).sum(1)  # (B, H)
        squared = torch.zeros(B, T, dtype=torch.float64, device=hidden.device)
        for k in range(n_probes):
            (grad,) = torch.autograd.grad((context @ probes[k]).sum(), embeds, retain_graph=True)
            squared += grad.pow(2).sum(-1).double()
        influence = squared.sqrt() * mask
        influence = influence / influence.sum(-1, keepdim=True).clamp_min(1e-30)
    finally:
        model.train(was_training)
    return {
        "coindexed": coindexed.masked_fill(~mask, float("nan")),
        "context": influence,
        "attention": attention.double(),
    }


# --------------------------------------------------------------------------- measures


def kendall_within_support(attention: Tensor, importance: Tensor, mask: Tensor) -> Tensor:
    """Kendall τ-b between attention and importance over the attention's support, `(B,)`.

    The support is the real tokens with attention > 0 (all real tokens under softmax). Under
    sparse attention τ-b over all tokens is dominated by the many zero-attention tokens, which
    tie with one another: it then mostly says whether important tokens are in the support
    (`support_indicator_tau`), not whether attention ranks them as importance does. Ties: τ-b,
    corrected for ties in both rankings (`scipy.stats.kendalltau`'s default); NaN where the
    support has fewer than 2 tokens or either ranking is constant on it.
    """
    support = mask.bool() & (attention > 0)  # (B, T)
    return kendall(attention, importance, support).tau


def support_indicator_tau(attention: Tensor, importance: Tensor, mask: Tensor) -> Tensor:
    """Kendall τ-b over real tokens between the 0/1 support indicator 1[α_t > 0] and importance,
    `(B,)`: the τ a sparse attention gets from its support alone. NaN where the indicator is
    constant (full support, e.g. softmax, or a single kept token with n = 1)."""
    indicator = (attention > 0).double()
    return kendall(indicator, importance, mask).tau


def anchored_share(share: Tensor, lengths: Tensor) -> Tensor:
    """A share on the scale from chance to all: (s − 1/n) / (1 − 1/n) per example.

    `share` `(B, T)` (e.g. the co-indexed share), `lengths` `(B,)` real tokens n. 0 = what a
    state depending on all n inputs alike gets, 1 = a state depending only on its own input;
    negative = below chance. NaN for n ≤ 1 (no chance level to anchor to).
    """
    n = lengths.double()[:, None]  # (B, 1)
    chance = 1.0 / n
    anchored = (share.double() - chance) / (1.0 - chance)
    return anchored.masked_fill(n <= 1, float("nan"))


def interpretability_row(
    classifier: Classifier,
    test: Any,
    *,
    n_explain: int | None = None,
    n_probes: int = 8,
    seed: int = 0,
) -> dict[str, float]:
    """Meister et al.'s measures for one trained classifier.

    accuracy on all of `test`; on its first `n_explain` examples: attention sparsity (share of
    exact zeros over real tokens); Kendall τ-b of attention against input-gradient importance
    (‖∂p(ŷ)/∂e_t‖) and leave-one-out importance (|Δp(ŷ)|, token t replaced by UNK), over all
    tokens (`tau_*_all`), within the support (`tau_*`, `kendall_within_support`) and for the
    support indicator (`tau_*_indicator`), each a mean over examples where defined, with the
    share of examples where the within-support τ is defined; the co-indexed share (mean over
    real positions), its chance level 1/n and the anchored share; normalised entropies H/ln n of
    attention and of the input-influence distribution of the attended context.
    """
    from attnkit.importance import blank_out, input_gradient
    from attnkit.models.vocab import UNK_ID

    model = classifier.model
    ids, mask, labels = _encode(classifier, test)
    with torch.no_grad():
        predicted_all = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
    accuracy = float((predicted_all == labels).double().mean())
    keep = slice(0, n_explain)
    ids, mask, predicted = ids[keep], mask[keep], predicted_all[keep]
    with torch.no_grad():
        attention = model(input_ids=ids, attention_mask=mask).attention.double()  # (B, T)
    inputs = {"input_ids": ids, "attention_mask": mask}
    gradient = input_gradient(model, inputs, predicted, reduce="l2").double()
    loo = blank_out(model, ids, mask, predicted, UNK_ID, skip_first=False, absolute=True)
    influence = input_influence(classifier, ids, mask, n_probes=n_probes, seed=seed)
    lengths = mask.sum(-1)
    long_enough = lengths > 1
    log_n = lengths.double().log().clamp_min(1e-12)
    att_entropy = entropy(attention, mask, normalize=True) / log_n
    inf_entropy = entropy(influence["context"], mask, normalize=True) / log_n

    def mean(x: Tensor) -> float:
        return float(torch.nanmean(x[long_enough].double()))

    row = {"accuracy": accuracy, "attention_sparsity": float(sparsity(attention, mask))}
    for label, importance in (("gradient", gradient), ("loo", loo.double())):
        within = kendall_within_support(attention, importance, mask)
        row[f"tau_{label}"] = mean(within)
        row[f"tau_{label}_all"] = mean(kendall(attention, importance, mask).tau)
        row[f"tau_{label}_indicator"] = mean(support_indicator_tau(attention, importance, mask))
        row[f"tau_{label}_defined"] = float((~within[long_enough].isnan()).double().mean())
    coindexed = influence["coindexed"]
    row.update(
        coindexed_share=float(torch.nanmean(coindexed[mask].double())),
        uniform_share=float((1 / lengths.double()).mean()),
        coindexed_anchored=float(torch.nanmean(anchored_share(coindexed, lengths)[mask])),
        attention_entropy=mean(att_entropy),
        influence_entropy=mean(inf_entropy),
    )
    return row


# --------------------------------------------------------------------------- steps


def load_splits(
    size: dict[str, Any], seed: int, data_dir: Any = None, require_data: bool = False
) -> dict[str, tuple[Any, Any, Any]]:
    """{dataset: (train, dev, test)}: seeded subsets of the real files (synthetic stand-ins with
    a warning when absent)."""
    splits = {}
    for dataset in size["datasets"]:
        options = DATA_OPTIONS.get(dataset, {})
        splits[dataset] = tuple(
            load(
                dataset,
                split,
                data_dir=data_dir,
                require_data=require_data,
                seed=seed,
                limit=limit,
                **options,
            )
            for split, limit in (
                ("train", size["n_train"]),
                ("dev", size["n_dev"]),
                ("test", size["n_test"]),
            )
        )
    return splits


def run_models(
    size: dict[str, Any],
    splits: dict[str, tuple[Any, Any, Any]],
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Train every (dataset, architecture, normaliser) model and measure it
    (`interpretability_row`); one row each, indexed by (dataset, model, normalizer)."""
    from tqdm.auto import tqdm

    jobs = [(d, a, n) for d in size["datasets"] for a in size["architectures"] for n in NORMALIZERS]
    rows = []
    for dataset, architecture, normalizer in tqdm(jobs, desc="models", disable=not progress):
        train, dev, test = splits[dataset]
        classifier = train_classifier(
            train,
            dev,
            architecture=architecture,
            normalizer=normalizer,
            embed_dim=size["hidden"],
            hidden_size=size["hidden"],
            max_len=size["max_len"],
            epochs=size["epochs"],
            batch_size=size["batch_size"],
            lr=size["lr"],
            pretrained=size.get("pretrained", False),
            seed=seed,
            device=device,
        )
        row = interpretability_row(
            classifier, test, n_explain=size["n_explain"], n_probes=size["n_probes"], seed=seed
        )
        rows.append({"dataset": dataset, "model": architecture, "normalizer": normalizer, **row})
    return pd.DataFrame(rows).set_index(["dataset", "model", "normalizer"])


def quality_gates(results: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Per (dataset, architecture) pair: each normaliser's accuracy, each sparse model's gap to
    its softmax twin, and whether the pair passes (every model ≥ `MIN_ACCURACY`, every gap
    within ±`MAX_GAP_TO_SOFTMAX`); and the precondition the claims require, as `requires=`
    wants it: at least `MIN_SHARE_PASSING` of the pairs pass (the claims use those, `gated`)."""
    accuracy = results["accuracy"].unstack("normalizer")[list(NORMALIZERS)]
    table = accuracy.copy()
    for name in SPARSE:
        table[f"{name} − softmax"] = accuracy[name] - accuracy["softmax"]
    gaps = table[[f"{name} − softmax" for name in SPARSE]].abs()
    table["passes"] = (accuracy.min(axis=1) >= MIN_ACCURACY) & (
        gaps.max(axis=1) <= MAX_GAP_TO_SOFTMAX
    )
    passing = [f"{d}/{m}" for (d, m), ok in table["passes"].items() if ok]
    requires = {
        f"at least {MIN_SHARE_PASSING:.0%} of the (dataset, architecture) pairs have every model "
        f"≥ {MIN_ACCURACY} test accuracy and each sparse model within {MAX_GAP_TO_SOFTMAX} of its "
        f"softmax twin (passing: {', '.join(passing) or 'none'} of {len(table)})": bool(
            len(passing) >= MIN_SHARE_PASSING * len(table) and passing
        )
    }
    return table, requires


def gated(results: pd.DataFrame, gate_table: pd.DataFrame) -> pd.DataFrame:
    """The rows of `results` whose (dataset, architecture) pair passes its quality gates."""
    keep = gate_table.index[gate_table["passes"]]
    pairs = results.index.droplevel("normalizer")
    return results[pairs.isin(keep)]


def finite(value: float) -> float | None:
    """`value` when it is a finite number, else None (a claim whose rule could not be computed,
    e.g. on no passing pair, passes None with the failed precondition in `requires`)."""
    return value if value == value and abs(value) != float("inf") else None


def tau_table(results: pd.DataFrame) -> pd.DataFrame:
    """Kendall τ per model and normaliser (mean over datasets): over all tokens, within the
    support, and of the support indicator alone, for gradient and leave-one-out importance."""
    columns = [
        f"tau_{imp}{kind}"
        for imp in ("gradient", "loo")
        for kind in ("_all", "_indicator", "", "_defined")
    ]
    return results.groupby(["model", "normalizer"], sort=False)[columns].mean()


def tau_gain(results: pd.DataFrame) -> float:
    """Mean over (dataset, model) of: the better sparse normaliser's τ within the support minus
    softmax's τ (its support is every token), τ averaged over gradient and leave-one-out.
    NaN for an empty table (no pair passed its gates)."""
    if results.empty:
        return float("nan")
    tau = results[["tau_gradient", "tau_loo"]].mean(axis=1).unstack("normalizer")
    return float((tau[list(SPARSE)].max(axis=1) - tau["softmax"]).mean())


def entropy_drops(results: pd.DataFrame) -> tuple[float, float]:
    """(attention, input influence): mean normalised-entropy drop from softmax to the sparse
    normalisers, averaged over datasets and models; NaN for an empty table."""
    if results.empty:
        return float("nan"), float("nan")
    table = results[["attention_entropy", "influence_entropy"]].unstack("normalizer")
    drops = []
    for column in ("attention_entropy", "influence_entropy"):
        sparse_mean = table[[(column, name) for name in SPARSE]].mean(axis=1)
        drops.append(float((table[(column, "softmax")] - sparse_mean).mean()))
    return drops[0], drops[1]


# --------------------------------------------------------------------------- figures


def figure_tau(taus: pd.DataFrame) -> Figure:
    """Kendall τ (gradient, LOO) per model and normaliser: all tokens, support indicator alone,
    within the support."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for axis, importance in zip(axes, ("gradient", "loo"), strict=True):
        part = taus[[f"tau_{importance}_all", f"tau_{importance}_indicator", f"tau_{importance}"]]
        part.columns = ["τ-b, all tokens", "τ-b, support indicator", "τ-b within support"]
        part.index = [f"{m}/{n}" for m, n in part.index]
        part.plot.bar(ax=axis, rot=30)
        axis.set_title(f"attention vs {'leave-one-out' if importance == 'loo' else importance}")
        axis.axhline(0, color="black", linewidth=0.5)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def figure_coindexed(results: pd.DataFrame) -> Figure:
    """Anchored co-indexed share per (dataset, model) and normaliser, with the 0.5 line."""
    figure, axis = plt.subplots(figsize=(6.5, 3.2))
    part = results["coindexed_anchored"].unstack("normalizer")[list(NORMALIZERS)]
    part.index = [f"{d}/{m}" for d, m in part.index]
    part.plot.bar(ax=axis, rot=20)
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    axis.axhline(0, color="black", linewidth=0.5)
    axis.set_ylabel("(share − 1/n) / (1 − 1/n)")
    axis.set_ylim(min(-0.1, float(part.min().min()) - 0.05), 1)
    figure.tight_layout()
    return figure


def figure_entropy(results: pd.DataFrame) -> Figure:
    """Normalised entropy of attention against that of input influence, per normaliser."""
    figure, axis = plt.subplots(figsize=(4.5, 4))
    for i, normalizer in enumerate(NORMALIZERS):
        part = results.xs(normalizer, level="normalizer")
        axis.scatter(
            part["attention_entropy"], part["influence_entropy"], label=normalizer, color=f"C{i}"
        )
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    axis.set_xlabel("attention entropy (normalised)")
    axis.set_ylabel("input-influence entropy (normalised)")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.legend()
    return figure
