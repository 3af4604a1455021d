"""Every attribution method on the same two models, against the published correlations and AOPC.

Methods: raw attention, rollout and flow (Abnar & Zuidema 2020); GAE (Chefer, Gur & Wolf 2021,
ICCV) and vit-explain's gradient rollout; attention norm (Kobayashi et al. 2020) and its
residual + LayerNorm rollout ("norm", Kobayashi et al. 2021, as Ferrando et al. 2022 evaluate it);
GlobEnc (Modarressi et al. 2022); ALTI (Ferrando, Gállego & Costa-jussà 2022); value zeroing
(Mohebbi et al. 2023); and the post-hoc scores gradient, gradient × input, integrated gradients,
blank-out and LIME. AttnLRP is left out: `lxt` does not import beside transformers 5.

Models: all-MiniLM-L6-v2 fine-tuned (a) for subject–verb agreement, explained against blank-out,
and (b) on SST-2, explained against the input gradient (Ferrando et al.'s SST-2 reference) and
gradient × input; both are the Abnar & Zuidema notebook's models. For each method: Spearman
ρ per layer and at the top (CLS row), ERASER's AOPC comprehensiveness and sufficiency, run time.

The published numbers are Ferrando et al. 2022's repository results (mt-upc/transformer-
contributions, `data/<model>_<task>_correlations.json`): mean ± std over 500 examples of ρ between
the top layer's CLS (SST-2) or masked-verb (SVA) row and the reference, special tokens included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor
from tqdm.auto import tqdm

from attnkit.capture import capture
from attnkit.data.types import TextDataset
from attnkit.importance import (
    blank_out,
    gradient_x_input,
    input_gradient,
    integrated_gradients,
    lime_text,
)
from attnkit.metrics_correlation import correlation_table
from attnkit.metrics_faithfulness import aopc
from attnkit.papers import abnar2020_attention_flow as abnar
from attnkit.propagate import flow, rollout
from attnkit.relevance import (
    alti,
    attention_norm,
    contribution_rollout,
    gae,
    globenc,
    grad_rollout,
    value_zeroing,
)

# Sizes per profile. The two models are the Abnar & Zuidema notebook's (its sizes, so a report
# trains them once: the trainer caches by config, data and seed). Ferrando et al. explain 500
# examples per task.
SIZES = {
    "smoke": dict(n_explain=8, sst_explain=6, lime_samples=40, ig_steps=4),
    "quick": dict(n_explain=100, sst_explain=32, lime_samples=100, ig_steps=8),
    "full": dict(n_explain=500, sst_explain=500, lime_samples=1000, ig_steps=50),
}

# Ferrando et al. 2022, mt-upc/transformer-contributions data/<model>_<task>_correlations.json:
# (mean, std) of Spearman ρ over 500 examples at the top layer. "norm" is their rolled-out
# Kobayashi et al. 2021 norm (our "norm rollout"), "ours" their ALTI. SST-2 against the input
# gradient (L2 norm of the saliency), SVA against blank-out.
FERRANDO_2022 = {
    "sst2": {
        "BERT": {"raw": (0.290, 0.281), "rollout": (-0.034, 0.293), "norm rollout": (0.414, 0.259), "alti": (0.551, 0.186)},
        "DistilBERT": {"raw": (0.226, 0.247), "rollout": (0.234, 0.237), "norm rollout": (0.294, 0.261), "alti": (0.542, 0.174)},
        "RoBERTa": {"raw": (0.240, 0.274), "rollout": (0.014, 0.239), "norm rollout": (0.365, 0.211), "alti": (0.689, 0.168)},
    },
    "sva": {
        "BERT": {"raw": (0.244, 0.178), "rollout": (-0.022, 0.203), "norm rollout": (0.187, 0.195), "alti": (0.395, 0.155)},
        "DistilBERT": {"raw": (0.382, 0.180), "rollout": (0.232, 0.216), "norm rollout": (0.305, 0.196), "alti": (0.418, 0.170)},
        "RoBERTa": {"raw": (0.173, 0.196), "rollout": (-0.092, 0.220), "norm rollout": (0.084, 0.223), "alti": (0.434, 0.181)},
    },
}  # fmt: skip
FERRANDO_SOURCE = (
    "Ferrando, Gállego & Costa-jussà 2022 (EMNLP), repository mt-upc/transformer-contributions, "
    "data/{model}_{task}_correlations.json (bert_sst2, bert_sva, roberta_sva @ bc7f494; "
    "distilbert_sst2 @ 4c0759a; roberta_sst2, distilbert_sva @ a93be6e)"
)

# The per-layer methods (one map per layer); the others give one (top) map.
LAYERED = (
    "raw",
    "rollout",
    "flow",
    "attention norm",
    "norm rollout",
    "globenc",
    "alti",
    "value zeroing",
)
ATTRIBUTION = ("gae", "grad rollout")
POSTHOC = ("gradient", "gradient×input", "integrated gradients", "blank-out", "lime")  # fmt: skip


@dataclass
class Run:
    profile: str
    seed: int
    size: dict[str, Any]
    data_dir: str | None
    device: str
    require_data: bool


def setup(
    profile: str, seed: int, data_dir: str | None, device: str = "cpu", require_data: bool = False
) -> Run:
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    torch.manual_seed(seed)
    return Run(profile, seed, SIZES[profile], data_dir, device, require_data)


# --- the two models --------------------------------------------------------------------------


@dataclass
class Trained:
    """A fine-tuned MiniLM, its test set and the gate a claim on it requires."""

    tuned: abnar.FineTuned
    accuracy: float
    test: TextDataset
    requires: dict[str, bool]
    summary: pd.DataFrame


def _abnar_run(run: Run) -> abnar.Run:
    return abnar.setup(run.profile, run.seed, run.data_dir, run.device, run.require_data)


def _summary(model: str, n_train: int, test: TextDataset, accuracy: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"model": [model], "train": [n_train], "test": [len(test)],
         "accuracy": [round(accuracy, 3)], "data": ["synthetic" if test.synthetic else test.name]}
    )  # fmt: skip


def train_agreement(run: Run) -> Trained:
    """all-MiniLM-L6-v2 fine-tuned for verb number: the Abnar & Zuidema notebook's model that
    passes its gate (≥ 0.90 overall and without attractors), a BERT like Ferrando et al.'s."""
    arun = _abnar_run(run)
    data = abnar.agreement_data(arun)
    tuned = abnar.fine_tune_minilm_agreement(arun, data)
    predicted = abnar.predicted_classes(tuned, data.test)
    gate = abnar.agreement_gate(predicted, data.test.labels, abnar.n_attractors(data.test))
    n_train = min(arun.sizes["minilm"]["n_train"] or len(data.train), len(data.train))
    summary = _summary("all-MiniLM-L6-v2 + agreement head", n_train, data.test, gate.accuracy)
    return Trained(tuned, gate.accuracy, data.test, gate.requires("MiniLM"), summary)


def fine_tune_sst(run: Run) -> Trained:
    """all-MiniLM-L6-v2 fine-tuned on SST-2 (the Abnar & Zuidema notebook's Table 3 model)."""
    arun = _abnar_run(run)
    data = abnar.sst_data(arun)
    tuned = abnar.fine_tune_minilm_sst(arun, data)
    accuracy = abnar.test_accuracy(tuned, data.test)
    summary = _summary("all-MiniLM-L6-v2 + SST-2 head", len(data.train), data.test, accuracy)
    return Trained(tuned, accuracy, data.test, abnar.sst_requires(accuracy), summary)


# --- every method on one batch ---------------------------------------------------------------


@dataclass
class Explained:
    """Every method's token relevance for one batch, lined up with the tokens."""

    task: str  # "sva" | "sst2"
    inputs: dict[str, Tensor]
    target: Tensor  # (B,)
    relevance: dict[str, Tensor]  # name -> (L, B, T) or (B, T), CLS row
    seconds: dict[str, float]
    reference: str  # the importance score the others are correlated with
    score_mask: Tensor  # (B, T) tokens correlated over
    special_ids: list[int]
    tokens: list[list[str]]
    model: torch.nn.Module


def _timed(seconds: dict[str, float], name: str, compute: Callable[[], Tensor]) -> Tensor:
    """Run `compute`, keep its CPU seconds (process time: wall time on a shared machine mostly
    measures the neighbours), return its result as float32 on the CPU."""
    tic = time.process_time()
    value = compute()
    seconds[name] = time.process_time() - tic
    return value.detach().float().cpu()


def _attention_methods(model, inputs, target, seconds) -> dict[str, Tensor]:
    """CLS rows of every attention-based method: (L, B, T) per layer, (B, T) for GAE/gradient rollout."""
    mask = inputs["attention_mask"].bool()
    attn = capture(model, **inputs)
    L = attn.num_layers
    out = {
        "raw": _timed(seconds, "raw", lambda: attn.weights.mean(2)[:, :, 0] * mask),
        "rollout": _timed(seconds, "rollout", lambda: rollout(attn)[:, :, 0]),
        "flow": _timed(
            seconds, "flow",
            lambda: torch.stack([flow(attn, layer=layer, rows=[0])[:, 0] for layer in range(L)]),
        ),  # fmt: skip
        "gae": _timed(seconds, "gae", lambda: gae(model, inputs, target)[:, 0]),
        "grad rollout": _timed(seconds, "grad rollout", lambda: grad_rollout(model, inputs, target)[:, 0]),
        "attention norm": _timed(seconds, "attention norm", lambda: attention_norm(model, inputs)[:, :, 0]),
        "norm rollout": _timed(
            seconds, "norm rollout", lambda: globenc(model, inputs, second_layer_norm=False)[:, :, 0]
        ),
        "globenc": _timed(seconds, "globenc", lambda: globenc(model, inputs)[:, :, 0]),
        "alti": _timed(seconds, "alti", lambda: alti(model, inputs)[:, :, 0]),
        "value zeroing": _timed(
            seconds, "value zeroing",
            lambda: contribution_rollout(value_zeroing(model, inputs), mask, residual=0.0)[:, :, 0],
        ),  # fmt: skip
    }  # fmt: skip
    return out


def _lime(model, inputs, target, samples, replacement_id, seed) -> Tensor:
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    rows = []
    for b in tqdm(range(len(ids)), desc="LIME", leave=False):
        explanation = lime_text(
            model, ids[b], mask[b], int(target[b]), n_samples=samples, seeds=(seed,),
            replacement_id=replacement_id,
        )  # fmt: skip
        rows.append(explanation.token_scores()[0].abs())
    return torch.stack(rows)


def explain_agreement(run: Run, trained: Trained) -> Explained:
    """Every method on `n_explain` agreement test prefixes; reference: blank-out.

    As Abnar & Zuidema: the correct class is explained and blank-out is |Δp(correct)| when a token
    becomes [UNK]; as Ferrando et al.: every real token is correlated, [CLS] and [SEP] included.
    """
    texts = abnar.sentences(trained.test)[: run.size["n_explain"]]
    labels = torch.tensor(trained.test.labels[: len(texts)])
    unk_id = trained.tuned.tokenizer.unk_token_id
    return _explain(run, trained, texts, "sva", "blank-out", unk_id, labels)


def explain_sst(run: Run, trained: Trained) -> Explained:
    """Every method on `sst_explain` SST-2 test sentences; reference: the input gradient.

    As Ferrando et al.: the predicted class, the gradient's L2 norm at the embedding block's output
    (`model.bert.embeddings`), and every real token correlated, [CLS] and [SEP] included. Blank-out,
    LIME and the integrated-gradients baseline use [MASK].
    """
    texts = abnar.sentences(trained.test)[: run.size["sst_explain"]]
    mask_id = trained.tuned.tokenizer.mask_token_id
    return _explain(run, trained, texts, "sst2", "gradient", mask_id, None)


def _explain(
    run: Run,
    trained: Trained,
    texts: list[str],
    task: str,
    reference: str,
    replacement_id: int,
    target: Tensor | None,
) -> Explained:
    """Every method's CLS relevance for `texts`; `target` None explains the predicted class."""
    model, tokenizer = trained.tuned.model, trained.tuned.tokenizer
    inputs = dict(
        tokenizer(
            texts, padding=True, truncation=True, max_length=trained.tuned.max_len,
            return_tensors="pt",
        )
    )  # fmt: skip
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if target is not None:
        target = target.to(device)
    if target is None:
        with torch.no_grad():
            target = model(**inputs).logits.argmax(-1)  # (B,)
    block = model.base_model.embeddings
    seconds: dict[str, float] = {}
    relevance = _attention_methods(model, inputs, target, seconds)
    relevance["gradient"] = _timed(
        seconds,
        "gradient",
        lambda: input_gradient(model, inputs, target, embedding=block, reduce="l2"),
    )
    relevance["gradient×input"] = _timed(
        seconds, "gradient×input", lambda: gradient_x_input(model, inputs, target, embedding=block)
    )
    relevance["integrated gradients"] = _timed(
        seconds, "integrated gradients",
        lambda: integrated_gradients(
            model, inputs, target, embedding=block, baseline_id=replacement_id,
            n_steps=run.size["ig_steps"], absolute=True,
        ),
    )  # fmt: skip
    extra = {"token_type_ids": inputs["token_type_ids"]} if "token_type_ids" in inputs else None
    relevance["blank-out"] = _timed(
        seconds, "blank-out",
        lambda: blank_out(
            model, inputs["input_ids"], inputs["attention_mask"], target, replacement_id,
            skip_first=False, absolute=True, extra_inputs=extra,
        ),
    )  # fmt: skip
    relevance["lime"] = _timed(
        seconds, "lime",
        lambda: _lime(model, inputs, target, run.size["lime_samples"], replacement_id, run.seed),
    )  # fmt: skip
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in inputs["input_ids"].tolist()]
    score_mask = inputs["attention_mask"].bool().cpu()
    return Explained(
        task, inputs, target, relevance, seconds, reference, score_mask,
        list(tokenizer.all_special_ids), tokens, model,
    )  # fmt: skip


# --- tables --------------------------------------------------------------------------------


def correlations(explained: Explained, reference: str | None = None) -> pd.DataFrame:
    """Spearman ρ (mean, std over examples) of every method, every layer, against the reference."""
    reference = reference or explained.reference
    others = {k: v for k, v in explained.relevance.items() if k != reference}
    table, _ = correlation_table(others, explained.relevance[reference], explained.score_mask)
    return table


def top_layer(table: pd.DataFrame) -> pd.DataFrame:
    """Each method's row at its last layer, indexed by method."""
    return table.sort_values("layer").groupby("method").tail(1).set_index("method")


def side_by_side(table: pd.DataFrame, task: str) -> pd.DataFrame:
    """Top-layer ρ: ours beside Ferrando et al.'s published values where they have the method."""
    top = top_layer(table)
    published = FERRANDO_2022[task]
    frame = pd.DataFrame(
        {"ours": [f"{m:.2f} ± {s:.2f}" for m, s in zip(top["mean"], top["std"], strict=True)]},
        index=top.index,
    )
    for model, values in published.items():
        frame[f"{model} (published)"] = [
            f"{values[m][0]:.2f} ± {values[m][1]:.2f}" if m in values else "" for m in frame.index
        ]
    order = [m for m in (*LAYERED, *ATTRIBUTION, *POSTHOC) if m in frame.index]
    return frame.loc[order]


def faithfulness(explained: Explained, bins=(0.01, 0.05, 0.1, 0.2, 0.5)) -> pd.DataFrame:
    """AOPC comprehensiveness and sufficiency (ERASER) of every method's top-layer scores."""
    rows = []
    for name, scores in tqdm(explained.relevance.items(), desc="AOPC", leave=False):
        top = scores[-1] if scores.dim() == 3 else scores  # (B, T)
        row = {"method": name}
        for mode in ("comprehensiveness", "sufficiency"):
            values = aopc(
                explained.model, explained.inputs, top, explained.target, mode=mode, bins=bins,
                special=explained.special_ids,
            )  # fmt: skip
            row[mode] = float(values.mean())
        row["CPU seconds"] = explained.seconds[name]
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def rho(table: pd.DataFrame, method: str) -> float:
    """Top-layer mean ρ of a method."""
    return float(top_layer(table).loc[method, "mean"])


# --- figures -------------------------------------------------------------------------------


def figure_layers(table: pd.DataFrame, title: str) -> Figure:
    """Method × layer heat map of mean ρ (per-layer methods; the others at their one map)."""
    pivot = table.pivot(index="method", columns="layer", values="mean")
    order = [m for m in (*LAYERED, *ATTRIBUTION, *POSTHOC) if m in pivot.index]
    pivot = pivot.loc[order]
    fig, ax = plt.subplots(
        figsize=(1.0 + 0.7 * pivot.shape[1], 0.35 * len(pivot) + 1.2), layout="constrained"
    )
    image = ax.imshow(pivot.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), [f"L{c}" for c in pivot.columns])
    ax.set_yticks(range(len(pivot)), pivot.index)
    for (i, j), value in np.ndenumerate(pivot.to_numpy()):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="mean Spearman ρ")
    return fig


def figure_sentence(explained: Explained, example: int = 0) -> Figure:
    """One sentence: every method's top-layer relevance over its tokens, each row scaled to [0, 1]."""
    n = int(explained.inputs["attention_mask"][example].sum())
    names = [m for m in (*LAYERED, *ATTRIBUTION, *POSTHOC) if m in explained.relevance]
    rows = []
    for name in names:
        scores = explained.relevance[name]
        row = (scores[-1] if scores.dim() == 3 else scores)[example, :n].abs().numpy()
        rows.append(row / row.max() if row.max() > 0 else row)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2.0, 0.3 * len(names) + 1.2), layout="constrained")
    ax.imshow(np.stack(rows), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(n), explained.tokens[example][:n], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    return fig
