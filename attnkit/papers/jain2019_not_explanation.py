"""Jain & Wallace (2019), "Attention is not Explanation" (NAACL, arXiv:1902.10186).

The notebook `notebooks/jain2019_not_explanation.ipynb` reproduces, on SST, IMDB and AG News
(World vs Business), with J&W's BiLSTM and "average" encoders and additive attention:

* Table 2: per-document Kendall τ between attention, gradients (attention detached) and
  leave-one-out, and the CorrGL difference τ(grad, LOO) − τ(att, LOO);
* Figs. 2–3: permuting the attention, binned by the document's largest attention weight;
* Figs. 6–7: per-instance adversarial attention (max JSD with |Δŷ| ≤ 0.05).

Everything shared with Wiegreffe & Pinter (data, training, importance) is in
`attnkit.recipes.explanation`; the paper's numbers are in this module, with their sources from
`shared/papers/CLAIMS.md` §2. Steps return plain results; figure functions return figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from attnkit.adversarial import AdversaryConfig, adversarial_attention_over, permutation_scores_over
from attnkit.recipes import explanation as ex

DATASETS = ("sst", "imdb", "agnews")
ENCODERS = ("lstm", "average")

#: Analysis sizes per profile (the trained models' sizes are `ex.BASE_SIZES`). `analysed`: test
#: documents per dataset for Kendall τ, permutations and adversaries (J&W: the whole test set);
#: `adversary_steps` (J&W: 500 Adam steps), `permutations` (J&W: 100).
SIZES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        analysed={"sst": 30, "imdb": 30, "agnews": 30}, adversary_steps=20, permutations=20
    ),
    "quick": dict(
        analysed={"sst": 200, "imdb": 60, "agnews": 120}, adversary_steps=150, permutations=100
    ),
    "full": dict(
        analysed={"sst": None, "imdb": None, "agnews": None}, adversary_steps=500, permutations=100
    ),
}

#: The paper's numbers, re-exported from the shared recipe (sources there and in CLAIMS.md §2):
#: Table 2 [3P], the repo's CorrStats files [READ-REPO], Table 1 F1 [3P] and repo accuracy.
PAPER_KENDALL = ex.JW_PAPER_KENDALL
REPO_KENDALL = ex.JW_REPO_KENDALL
REPO_ACCURACY = ex.JW_REPO_ACCURACY
PAPER_F1 = ex.JW_PAPER_F1
#: The gate: a BiLSTM within this distance of the repo's accuracy can test the claims.
ACCURACY_TOLERANCE = 0.05
#: The average encoder's gate, against the same repo BiLSTM accuracy: its own accuracy files
#: (`graph_outputs/evaluate/*+average+tanh.json`) were not transcribed, and a non-contextual
#: model is expected to trail the BiLSTM, so it gets twice the band (our choice).
AVERAGE_TOLERANCE = 0.10
#: J&W's adversarial thresholds (§4.2): JSD above 0.4 while |Δŷ| stays ≤ 0.05.
ADVERSARY_JSD, ADVERSARY_DELTA_Y = 0.4, 0.05
#: Max-attention bins of the permutation figure (J&W's Figs. 2–3 x-axis), and "peaked": the
#: upper three bins (on IMDB, ~130 tokens, 0.25 is ~30× the uniform weight; few reviews reach 0.5).
MAX_ATTENTION_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
PEAKED = 0.25


@dataclass
class Run:
    """One notebook run: profile, seed, device, sizes and the loaded splits."""

    profile: str
    seed: int
    device: str
    sizes: dict[str, Any]
    splits: dict[str, ex.Splits] = field(default_factory=dict)


def setup(
    profile: str,
    seed: int,
    data_dir: str | None,
    device: str = "cpu",
    require_data: bool = False,
    datasets=DATASETS,
) -> Run:
    """Load `datasets` (default: the three) at the profile's sizes."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    run = Run(profile, seed, device, SIZES[profile])
    for name in datasets:
        run.splits[name] = ex.base_splits(
            name, profile, data_dir=data_dir, require_data=require_data, seed=seed
        )
    return run


def analysed(run: Run, name: str):
    """The first `SIZES[...]["analysed"]` test documents of `name` (all when None)."""
    test = run.splits[name].test
    n = run.sizes["analysed"][name]
    return test if n is None or n >= len(test) else test.subset(list(range(n)))


def train_models(run: Run, encoders=ENCODERS) -> dict[tuple[str, str], ex.Classifier]:
    """J&W's classifiers per (dataset, encoder), trained (or loaded from the cache)."""
    return {
        (name, encoder): ex.train_base(
            run.splits[name],
            run.profile,
            encoder=encoder,
            seed=run.seed,
            device=run.device,
            progress=False,  # a bar frozen at 0 % on the page says nothing
        )
        for name in DATASETS
        for encoder in encoders
    }


def attention_peakedness(clf: ex.Classifier, data) -> dict[str, float]:
    """Mean largest attention weight over documents beside the mean of 2/n (twice uniform)."""
    weights = ex.attention_of(clf, data)
    return {
        "mean max attention": float(np.mean([max(w) for w in weights])),
        "mean 2/n": float(np.mean([2 / len(w) for w in weights])),
    }


def performance(run: Run, models: dict[tuple[str, str], ex.Classifier]) -> pd.DataFrame:
    """Test accuracy / macro-F1 per model beside the paper's and the repo's, the gate, and
    whether attention is peaked (mean max weight > mean 2/n)."""
    rows = []
    for (name, encoder), clf in models.items():
        scores = ex.evaluate(clf, run.splits[name].test)
        peak = attention_peakedness(clf, run.splits[name].test)
        repo = REPO_ACCURACY[name]
        band = ACCURACY_TOLERANCE if encoder == "lstm" else AVERAGE_TOLERANCE
        rows.append(
            {
                "dataset": name,
                "encoder": encoder,
                **run.splits[name].sizes(),
                "data": "synthetic" if run.splits[name].synthetic else "real",
                "test accuracy": scores["accuracy"],
                "test macro-F1": scores["f1"],
                "paper F1 (BiLSTM)": PAPER_F1[name],
                "repo accuracy (BiLSTM)": repo,
                "gate band": band,
                "within gate": abs(scores["accuracy"] - repo) <= band,
                **peak,
                "attention peaked": peak["mean max attention"] > peak["mean 2/n"],
                "trained in s": round(clf.training.train_time_s, 1),
                "from cache": clf.training.from_cache,
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "encoder"])


def gates(table: pd.DataFrame, encoder: str = "lstm") -> dict[str, bool]:
    """`requires=` preconditions for claims about `encoder`'s models on every dataset."""
    out = {}
    for name in DATASETS:
        row = table.loc[(name, encoder)]
        out[f"{name}: real data (not the synthetic stand-in)"] = row["data"] == "real"
        out[
            f"{name} {encoder} accuracy {row['test accuracy']:.3f} within "
            f"{row['gate band']:.2f} of the repo's BiLSTM {REPO_ACCURACY[name]:.3f}"
        ] = bool(row["within gate"])
        out[
            f"{name} {encoder} attention not uniform (mean max weight "
            f"{row['mean max attention']:.2f} > mean 2/n {row['mean 2/n']:.2f})"
        ] = bool(row["attention peaked"])
    return out


# --------------------------------------------------------------------------- Table 2


def explain_all(run: Run, models) -> dict[tuple[str, str], ex.Explanations]:
    """Attention, J&W's gradient and LOO (tokens deleted) on the analysed test documents."""
    return {
        key: ex.explain(clf, analysed(run, key[0]), loo_mode="delete")
        for key, clf in models.items()
    }


def kendall_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean τ per (dataset, encoder) × pair, beside the repo's values."""
    ours = table.pivot_table(index=["dataset", "encoder"], columns="pair", values="tau_mean")
    repo = pd.DataFrame(
        {pair: {key: REPO_KENDALL[(*key, pair)][0] for key in ours.index} for pair in ours.columns}
    )
    return pd.concat({"ours": ours, "repo": repo.loc[ours.index]}, axis=1)


def grad_minus_att_loo(explained) -> dict[str, np.ndarray]:
    """Per document, τ(grad, LOO) − τ(att, LOO) for the BiLSTM (the repo's CorrGL files)."""
    out = {}
    for (name, encoder), expl in explained.items():
        if encoder != "lstm":
            continue
        scores = ex.kendall_scores(expl)
        diff = (scores["gradient–loo"].tau - scores["attention–loo"].tau).numpy()
        out[name] = diff[~np.isnan(diff)]
    return out


def figure_kendall_histograms(explained) -> Figure:
    """Per-document τ for every pair and dataset, BiLSTM against the average encoder."""
    fig, axes = plt.subplots(
        len(ex.PAIRS), len(DATASETS), figsize=(12, 8), layout="constrained", sharex=True
    )
    scores = {key: ex.kendall_scores(e) for key, e in explained.items()}
    for row, (a, b) in enumerate(ex.PAIRS):
        pair = f"{a}–{b}"
        for col, name in enumerate(DATASETS):
            for encoder, color in (("lstm", "tab:blue"), ("average", "tab:orange")):
                if (name, encoder) not in scores:
                    continue
                tau = scores[name, encoder][pair].tau.numpy()
                axes[row, col].hist(
                    tau[~np.isnan(tau)],
                    bins=np.linspace(-1, 1, 31),
                    alpha=0.55,
                    color=color,
                    label="BiLSTM" if encoder == "lstm" else "Average",
                )
            axes[row, col].set_title(f"{name}: τ({pair})", fontsize=9)
    axes[0, 0].legend()
    for panel in axes[-1]:
        panel.set_xlabel("Kendall τ per test document")
    return fig


def figure_grad_minus_att_loo(differences: dict[str, np.ndarray]) -> Figure:
    """Histogram per dataset of τ(grad, LOO) − τ(att, LOO) per document (BiLSTM)."""
    fig, axes = plt.subplots(
        1,
        len(differences),
        figsize=(4 * len(differences), 3.2),
        layout="constrained",
        squeeze=False,
    )
    for panel, (name, diff) in zip(axes[0], differences.items(), strict=True):
        panel.hist(diff, bins=np.linspace(-1.5, 1.5, 31), color="tab:purple", alpha=0.8)
        panel.axvline(0, color="black", lw=0.8)
        panel.axvline(float(np.mean(diff)), color="red", ls="--", lw=1, label="mean")
        panel.set_title(name, fontsize=9)
        panel.set_xlabel("τ(grad, LOO) − τ(att, LOO)")
    axes[0, 0].legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- permutations


def permute_all(run: Run, models) -> dict[tuple[str, str], Any]:
    """J&W's permutations (encoder and decoder fixed) on the analysed test documents."""
    return {
        key: permutation_scores_over(
            clf.model,
            clf.examples(analysed(run, key[0])),
            clf.collate,
            n_permutations=run.sizes["permutations"],
            seed=run.seed,
        )
        for key, clf in models.items()
    }


def permutation_frame(run: Run, permuted) -> pd.DataFrame:
    """One row per analysed document: max attention, its bin, class, median |Δŷ|."""
    rows = []
    for (name, encoder), result in permuted.items():
        labels = analysed(run, name).labels
        for m, dy, y in zip(
            result.max_attention.numpy(), result.median_delta_y.numpy(), labels, strict=True
        ):
            rows.append(
                {
                    "dataset": name,
                    "encoder": encoder,
                    "max attention": m,
                    "median |Δŷ|": dy,
                    "class": int(y),
                }
            )
    frame = pd.DataFrame(rows)
    frame["max attention bin"] = pd.cut(frame["max attention"], MAX_ATTENTION_BINS)
    return frame


def permutation_by_bin(frame: pd.DataFrame) -> pd.DataFrame:
    """Median of the per-document median |Δŷ| and document count per max-attention bin."""
    return (
        frame.groupby(["dataset", "encoder", "max attention bin"], observed=True)["median |Δŷ|"]
        .agg(["median", "count"])
        .unstack("max attention bin")
    )


def peaked_permutation(frame: pd.DataFrame, encoder: str = "lstm") -> pd.DataFrame:
    """Per dataset, among documents with max attention ≥ `PEAKED`: how many, and the median of
    their median |Δŷ| (NaN when none)."""
    part = frame[(frame.encoder == encoder) & (frame["max attention"] >= PEAKED)]
    grouped = part.groupby("dataset")["median |Δŷ|"]
    table = pd.DataFrame({"documents": grouped.size(), "median |Δŷ|": grouped.median()})
    return table.reindex(list(DATASETS)).fillna({"documents": 0})


def figure_permutation_scatter(permuted) -> Figure:
    """Median |Δŷ| over permutations against max attention (J&W Figs. 2–3)."""
    fig, axes = plt.subplots(
        len(ENCODERS), len(DATASETS), figsize=(12, 6.5), layout="constrained", sharey=True
    )
    for row, encoder in enumerate(ENCODERS):
        for col, name in enumerate(DATASETS):
            result = permuted[name, encoder]
            axes[row, col].scatter(result.max_attention, result.median_delta_y, s=8, alpha=0.6)
            axes[row, col].set_title(f"{name}, {_encoder_name(encoder)}", fontsize=9)
            axes[row, col].set_xlim(0, 1)
    for panel in axes[-1]:
        panel.set_xlabel("max attention weight")
    for panel in axes[:, 0]:
        panel.set_ylabel("median |Δŷ| over permutations")
    return fig


def figure_permutation_densities(frame: pd.DataFrame, by: str) -> Figure:
    """Boxes of the BiLSTM's median |Δŷ| per `by` ("max attention bin" or "class"), a panel
    per dataset (J&W show these as densities per class and per max-attention range)."""
    part = frame[frame.encoder == "lstm"]
    fig, axes = plt.subplots(1, len(DATASETS), figsize=(12, 3.4), layout="constrained", sharey=True)
    for panel, name in zip(axes, DATASETS, strict=True):
        rows = part[part.dataset == name]
        groups = [g for g in sorted(rows[by].dropna().unique())]
        values = [rows.loc[rows[by] == g, "median |Δŷ|"].to_numpy() for g in groups]
        if values:
            panel.boxplot(values, showfliers=True)
            panel.set_xticks(range(1, len(groups) + 1), [str(g) for g in groups], fontsize=7)
        panel.set_title(f"{name}, BiLSTM", fontsize=9)
        panel.set_xlabel(by)
    axes[0].set_ylabel("median |Δŷ| over permutations")
    return fig


# --------------------------------------------------------------------------- adversaries


def adversaries_all(run: Run, models) -> dict[tuple[str, str], Any]:
    """J&W's per-instance adversary (K=5, Adam lr 0.01, their loss) on the analysed documents."""
    return {
        key: adversarial_attention_over(
            clf.model,
            clf.examples(analysed(run, key[0])),
            clf.collate,
            config=AdversaryConfig(steps=run.sizes["adversary_steps"], seed=run.seed),
        )
        for key, clf in models.items()
    }


def adversary_summary(adversaries) -> pd.DataFrame:
    """Per model: share found (|Δŷ| ≤ 0.05), share with JSD > 0.4 and found, median JSD."""
    rows = []
    for (name, encoder), r in adversaries.items():
        found = r.found
        rows.append(
            {
                "dataset": name,
                "encoder": encoder,
                "found (|Δŷ| ≤ 0.05)": float(found.float().mean()),
                "JSD > 0.4 and found": float((found & (r.jsd > ADVERSARY_JSD)).float().mean()),
                "median JSD (found)": float(r.jsd[found].median()) if found.any() else np.nan,
                "mean |Δŷ| (found)": float(r.delta_y[found].mean()) if found.any() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "encoder"])


def figure_adversary_scatter(adversaries) -> Figure:
    """Adversary JSD against max attention (J&W Figs. 6–7), found adversaries only."""
    fig, axes = plt.subplots(
        len(ENCODERS), len(DATASETS), figsize=(12, 6.5), layout="constrained", sharey=True
    )
    for row, encoder in enumerate(ENCODERS):
        for col, name in enumerate(DATASETS):
            r = adversaries[name, encoder]
            found = r.found.numpy()
            max_att = r.original_attention.max(dim=1).values.numpy()
            axes[row, col].scatter(max_att[found], r.jsd.numpy()[found], s=8, alpha=0.6)
            axes[row, col].axhline(ADVERSARY_JSD, color="red", lw=0.8, ls="--")
            axes[row, col].set_title(f"{name}, {_encoder_name(encoder)}", fontsize=9)
            axes[row, col].set_xlim(0, 1)
            axes[row, col].set_ylim(0, 0.7)
    for panel in axes[-1]:
        panel.set_xlabel("max attention weight")
    for panel in axes[:, 0]:
        panel.set_ylabel("max JSD with |Δŷ| ≤ 0.05")
    return fig


def figure_adversary_jsd_histogram(adversaries) -> Figure:
    """Histogram of the max adversarial JSD per document (J&W's Fig. 6 histograms), per
    dataset, BiLSTM against the average encoder; JSD ∈ [0, ln 2]."""
    fig, axes = plt.subplots(1, len(DATASETS), figsize=(12, 3.4), layout="constrained")
    for panel, name in zip(axes, DATASETS, strict=True):
        for encoder, color in (("lstm", "tab:blue"), ("average", "tab:orange")):
            if (name, encoder) not in adversaries:
                continue
            r = adversaries[name, encoder]
            panel.hist(
                r.jsd[r.found].numpy(),
                bins=np.linspace(0, 0.7, 29),
                alpha=0.55,
                color=color,
                label=_encoder_name(encoder),
            )
        panel.axvline(ADVERSARY_JSD, color="red", lw=0.8, ls="--")
        panel.set_title(name, fontsize=9)
        panel.set_xlabel("max JSD with |Δŷ| ≤ 0.05")
    axes[0].legend(fontsize=7)
    return fig


def figure_adversarial_example(result, tokens: list[str], index: int) -> Figure:
    """One document's attention beside its adversarial attention (J&W Fig. 1)."""
    n = len(tokens)
    fig, axes = plt.subplots(
        2, 1, figsize=(max(6, 0.45 * n), 4.5), layout="constrained", sharex=True
    )
    for panel, (label, weights, p) in zip(
        axes,
        [
            ("model", result.original_attention[index, :n], result.original_probs[index, 1]),
            ("adversary", result.attention[index, :n], result.probs[index, 1]),
        ],
        strict=True,
    ):
        panel.bar(range(n), weights.numpy())
        panel.set_title(f"{label} attention: ŷ = {float(p):.3f}", fontsize=9)
    axes[1].set_xticks(range(n), tokens, rotation=60, fontsize=8)
    fig.suptitle(f"JSD {float(result.jsd[index]):.2f} between the two")
    return fig


def most_divergent_short(result, max_tokens: int = 20) -> int:
    """Index of the found adversary with the largest JSD among documents of ≤ `max_tokens`."""
    candidates = result.found & (result.mask.sum(1) <= max_tokens)
    score = torch.where(candidates, result.jsd, torch.tensor(-1.0, dtype=result.jsd.dtype))
    return int(score.argmax())


def _encoder_name(encoder: str) -> str:
    return "BiLSTM" if encoder == "lstm" else "Average"
