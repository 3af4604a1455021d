"""Zhao et al. 2019, "Explicit Sparse Transformer: Concentrated Attention Through Explicit
Selection" (arXiv:1912.11637): the code of `notebooks/zhao2019_explicit_sparse`.

Top-k attention keeps each query's k largest scores and applies softmax over them. The abstract
claims results comparable to or better than sparsemax, at a much lower cost ("the inference
speed is twice that of sparsemax in Transformer model"). The authors' scripts use k = 8
(IWSLT14 De-En, fairseq) and k = 6 or k = ceil(n/4) (IWSLT15 En-Vi, tensor2tensor; their
`div = 4`). We train the ReLA notebook's encoder–decoder with top-k at several k and at
ceil(n/4) on the 2–3-sentence toy translation task (11–36 source words), against softmax and
sparsemax, and time the attention sublayer at the papers' lengths against the `entmax`
package's sparsemax, which is what the authors' module calls.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from attnkit.papers import zhang2021_rela as rela_paper
from attnkit.papers._sparse_seq2seq import Translator, train_translator

# The training sizes are the ReLA notebook's (its softmax and sparsemax models are shared
# through the trainer's cache); `ks`: the fixed k compared; the ceil(n/4) variant always runs.
SIZES: dict[str, dict[str, Any]] = {
    "smoke": rela_paper.SIZES["smoke"] | dict(ks=[2]),
    "quick": rela_paper.SIZES["quick"] | dict(ks=[2, 8]),
    "full": rela_paper.SIZES["full"] | dict(ks=[1, 2, 4, 6, 8]),
}
PAPER_K = 8  # IWSLT14 De-En (fairseq_deen_est.sh); "the paper recommends k = 8"
DIV = 4  # k = ceil(n / 4) (t2t_envi_est.sh)
SPEED_N = rela_paper.SPEED_N
PAPER_SPEEDUP = 2.0  # "the inference speed is twice that of sparsemax" (abstract)
SPEED_FACTOR = 1.5  # "about 2×": within a factor 1.5 either way, [1.33, 3]
TRAIN_SPEEDUP = 1.2  # "significantly reduces training time": at least 1.2× sparsemax's speed
BLEU_TOLERANCE = rela_paper.BLEU_TOLERANCE
SOURCE_ABSTRACT = "Zhao et al. 2019, abstract"
SOURCE_SCRIPTS = "Zhao et al. 2019, abstract; k from the authors' scripts (CLAIMS.md §6)"


def sizes(profile: str) -> dict[str, Any]:
    """The profile's sizes; a clear error for an unknown profile."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    return dict(SIZES[profile])


def ceil_div_k(n: int, div: float = DIV, min_k: int = 1) -> int:
    """k of the authors' `div` mode for n keys: max(ceil(n / div), min_k), capped at n."""
    if n < 1 or div <= 0:
        raise ValueError(f"ceil_div_k: need n >= 1 and div > 0, got n={n}, div={div}")
    return min(n, max(math.ceil(n / div), min_k))


def variants(size: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(name, normaliser, kwargs) for softmax, sparsemax, top-k per k and top-k at ceil(n/4)."""
    return (
        [("softmax", "softmax", None), ("sparsemax", "sparsemax", None)]
        + [(f"top-{k}", "topk", {"k": k}) for k in size["ks"]]
        + [(f"top-ceil(n/{DIV})", "topk", {"div": DIV})]
    )


def train_all(
    size: dict[str, Any], train, dev, *, seed: int, device: str = "cpu", progress: bool = True
) -> list[Translator]:
    """One translator per variant, the normaliser in every attention sublayer."""
    from tqdm.auto import tqdm

    return [
        train_translator(
            train,
            dev,
            normalizer,
            kwargs,
            name=name,
            seed=seed,
            device=device,
            progress=False,
            **rela_paper.model_sizes(size),
        )
        for name, normalizer, kwargs in tqdm(variants(size), desc="models", disable=not progress)
    ]


def lengths_table(test) -> pd.DataFrame:
    """Source length n of the test pairs and the k that ceil(n/4) keeps."""
    n = pd.Series([len(ex.src) for ex in test], name="n")
    k = n.map(ceil_div_k).rename("ceil(n/4)")
    return pd.concat([n, k], axis=1).describe().loc[["mean", "min", "max"]]


def figure_quality_vs_k(table: pd.DataFrame, ks: list[int], mean_k_div: float) -> Figure:
    """BLEU and sequence accuracy against k, the ceil(n/4) model at its mean k, softmax and
    sparsemax as reference lines."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, column in zip(axes, ("bleu", "sequence_accuracy"), strict=True):
        axis.plot(ks, table.loc[[f"top-{k}" for k in ks], column], "-o", label="top-k")
        axis.plot(
            [mean_k_div],
            [table.loc[f"top-ceil(n/{DIV})", column]],
            "D",
            color="C3",
            markersize=8,
            label=f"top-ceil(n/{DIV}) (mean k)",
        )
        for i, name in enumerate(["softmax", "sparsemax"]):
            axis.axhline(table.loc[name, column], linestyle="--", color=f"C{i + 1}", label=name)
        axis.set_xlabel("k")
        axis.set_ylabel(column.replace("_", " "))
        axis.set_xticks(ks)
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    return figure
