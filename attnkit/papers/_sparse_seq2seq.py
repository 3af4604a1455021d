"""The encoder–decoder side shared by the ReLA (Zhang et al. 2021) and top-k (Zhao et al. 2019)
notebooks: toy-translation splits, one trained `Translator` per attention normaliser, quality
(greedy sequence accuracy, teacher-forced token accuracy, BLEU-4), cross-attention statistics
(sparsity, null rate, AER per layer, head diversity), an untrained baseline, and the attention
speed benchmark at the papers' lengths (`attention_speed`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import entmax
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from attnkit.data.synthetic import make_toy_translation
from attnkit.data.types import AlignmentDataset
from attnkit.metrics import sparsity
from attnkit.metrics_alignment import corpus_bleu, cross_attention_aer, head_diversity, null_rate
from attnkit.models.seq2seq import (
    Seq2SeqConfig,
    Seq2SeqTransformer,
    TranslationCollate,
    seq2seq_vocab,
    strip_special,
    token_accuracy,
    translation_loss,
)
from attnkit.models.vocab import Vocab
from attnkit.normalizers import entmax15, rela_output_norm, sparsemax, topk
from attnkit.normalizers.topk import topk_reference
from attnkit.train import TrainConfig, TrainResult, evaluate, fit, set_seed

# Bump when the model or loss code changes in a way the trainer's cache key cannot see.
SEQ2SEQ_CODE_VERSION = 1


# --------------------------------------------------------------------------- data


def toy_translation_splits(
    n_train: int,
    n_dev: int,
    n_test: int,
    *,
    seed: int = 0,
    sentences: int | tuple[int, int] = 1,
) -> tuple[AlignmentDataset, AlignmentDataset, AlignmentDataset]:
    """Train / dev / test sets of the toy translation task (gold alignments known).

    `sentences`: sentences per pair (`make_toy_translation`), e.g. `(2, 3)` for 11–36 source
    words. Drawn from one generator stream, so the splits are disjoint draws; dev and test pairs
    that also occur in train are dropped (the sets may then be slightly smaller than asked).
    Records the data use for the report (synthetic by design: no parallel corpus here).
    """
    pool = make_toy_translation(n_train + 2 * (n_dev + n_test), seed=seed, sentences=sentences)
    train = pool.subset(range(n_train))
    seen = {(ex.src, ex.tgt) for ex in train}
    rest = [i for i in range(n_train, len(pool)) if (pool[i].src, pool[i].tgt) not in seen]
    dev, test = pool.subset(rest[:n_dev]), pool.subset(rest[n_dev : n_dev + n_test])
    train.split, dev.split, test.split = "train", "dev", "test"
    try:
        from attnkit.record import used_data

        used_data(
            name="toy_translation",
            origin=pool.origin,
            synthetic=True,
            warning="Synthetic toy translation task with known alignments (by design: the "
            "papers' WMT/IWSLT corpora are not used at this scale).",
        )
    except ImportError:  # pragma: no cover
        pass
    return train, dev, test


def _pairs(data: AlignmentDataset) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [(ex.src, ex.tgt) for ex in data]


# --------------------------------------------------------------------------- training


@dataclass
class Translator:
    """A trained seq2seq model with its vocabularies and training record."""

    name: str
    model: Seq2SeqTransformer
    src_vocab: Vocab
    tgt_vocab: Vocab
    training: TrainResult
    config: Seq2SeqConfig

    @property
    def collate(self) -> TranslationCollate:
        return TranslationCollate(self.src_vocab, self.tgt_vocab)


def seq2seq_config(
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    normalizer: str,
    normalizer_kwargs: dict[str, Any] | None = None,
    *,
    where: str = "all",
    **sizes: Any,
) -> Seq2SeqConfig:
    """Config with `normalizer` in every attention (`where="all"`) or only cross-attention."""
    if where not in ("all", "cross"):
        raise ValueError(f"where must be 'all' or 'cross', got {where!r}")
    return Seq2SeqConfig(
        src_vocab_size=len(src_vocab),
        tgt_vocab_size=len(tgt_vocab),
        self_normalizer=normalizer if where == "all" else "softmax",
        cross_normalizer=normalizer,
        normalizer_kwargs=dict(normalizer_kwargs or {}),
        **sizes,
    )


def train_translator(
    train: AlignmentDataset,
    dev: AlignmentDataset,
    normalizer: str,
    normalizer_kwargs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    where: str = "all",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    **sizes: Any,
) -> Translator:
    """Fit a `Seq2SeqTransformer` with `normalizer` (cached by config, data and seed).

    `sizes` go to `Seq2SeqConfig` (d_model, n_head, n_enc_layers, n_dec_layers, d_ff, dropout).
    Early stopping on dev token accuracy (patience 3), best epoch restored.
    """
    src_vocab = seq2seq_vocab(ex.src for ex in train)
    tgt_vocab = seq2seq_vocab(ex.tgt for ex in train)
    config = seq2seq_config(
        src_vocab, tgt_vocab, normalizer, normalizer_kwargs, where=where, **sizes
    )
    set_seed(seed)
    model = Seq2SeqTransformer(config)
    result = fit(
        model,
        _pairs(train),
        _pairs(dev),
        loss_fn=translation_loss,
        metric_fn=token_accuracy,
        collate=TranslationCollate(src_vocab, tgt_vocab),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer="adamw",
            weight_decay=0.01,
            patience=3,
            max_grad_norm=1.0,
            seed=seed,
            device=device,
        ),
        cache_key_extra={"seq2seq": SEQ2SEQ_CODE_VERSION},
        progress=progress,
    )
    label = name or (normalizer if not normalizer_kwargs else f"{normalizer}{normalizer_kwargs}")
    return Translator(label, model, src_vocab, tgt_vocab, result, config)


# --------------------------------------------------------------------------- evaluation


def translate(
    translator: Translator, data: AlignmentDataset, batch_size: int = 128
) -> list[list[str]]:
    """Greedy translations of `data` (tokens, EOS and padding removed)."""
    out: list[list[str]] = []
    device = next(translator.model.parameters()).device
    for start in range(0, len(data), batch_size):
        batch = translator.collate(
            _pairs(data.subset(range(start, min(start + batch_size, len(data)))))
        )
        ids = translator.model.greedy_decode(
            batch["src_ids"].to(device), batch["src_mask"].to(device)
        )
        out.extend(strip_special(row, translator.tgt_vocab) for row in ids)
    return out


def translation_quality(translator: Translator, data: AlignmentDataset) -> dict[str, float]:
    """Greedy sequence accuracy (exact match), BLEU-4 of greedy output, teacher-forced token accuracy."""
    hypotheses = translate(translator, data)
    references = [list(ex.tgt) for ex in data]
    exact = sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(data)
    _, tok = evaluate(
        translator.model,
        _pairs(data),
        loss_fn=translation_loss,
        metric_fn=token_accuracy,
        collate=translator.collate,
        batch_size=128,
    )
    return {
        "sequence_accuracy": exact,
        "token_accuracy": float(tok),
        "bleu": corpus_bleu(hypotheses, references),
    }


def cross_attention(translator: Translator, data: AlignmentDataset):
    """Teacher-forced `Seq2SeqAttentions` of `data` (one batch)."""
    batch = translator.collate(_pairs(data))
    device = next(translator.model.parameters()).device
    return translator.model.attentions(
        batch["src_ids"].to(device),
        batch["tgt_ids"].to(device),
        batch["src_mask"].to(device),
        batch["tgt_mask"].to(device),
    )


def attention_statistics(translator: Translator, data: AlignmentDataset) -> dict[str, Any]:
    """Cross-attention analyses of Zhang et al. on gold targets (teacher forcing).

    Sparsity rate (share of zero weights over real query–key pairs), null rate (share of real
    (query, head) pairs attending to nothing; the EOS-predicting query included), AER per layer
    (best head, head mean; argmax link per target word, none for an all-zero row), head
    diversity per layer (mean pairwise JSD), and the same sparsity for encoder self-attention.
    """
    attn = cross_attention(translator, data)
    cross = attn.cross
    tgt_lengths = [len(ex.tgt) for ex in data]
    src_lengths = [len(ex.src) for ex in data]
    scores = cross_attention_aer(
        cross.weights,
        src_lengths,
        tgt_lengths,
        [ex.sure for ex in data],
        [ex.possible for ex in data],
    )
    return {
        "sparsity": float(sparsity(cross)),
        "encoder_sparsity": float(sparsity(attn.encoder)),
        "null_rate": float(null_rate(cross.weights, cross.mask)),
        "null_rate_per_layer": null_rate(cross.weights, cross.mask, dim=(1, 2, 3)).tolist(),
        "aer_best_head": scores["best_head"].tolist(),
        "aer_head_mean": scores["head_mean"].tolist(),
        "aer_per_head": scores["per_head"],
        "head_diversity": head_diversity(cross.weights, cross.mask).tolist(),
        "attentions": attn,
    }


# --------------------------------------------------------------------------- tables


def translation_table(
    translators: Sequence[Translator], test: AlignmentDataset
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """One row per normaliser: quality and attention statistics; plus the full statistics."""
    rows, stats = [], {}
    for t in translators:
        quality = translation_quality(t, test)
        s = attention_statistics(t, test)
        stats[t.name] = s
        row = {
            "normalizer": t.name,
            **quality,
            "sparsity": s["sparsity"],
            "null_rate": s["null_rate"],
        }
        for layer, (best, mean) in enumerate(
            zip(s["aer_best_head"], s["aer_head_mean"], strict=True)
        ):
            row[f"aer_best_L{layer + 1}"] = best
            row[f"aer_mean_L{layer + 1}"] = mean
        row["head_diversity"] = float(pd.Series(s["head_diversity"]).mean())
        row["epochs"] = len(t.training.history)
        rows.append(row)
    return pd.DataFrame(rows).set_index("normalizer"), stats


# --------------------------------------------------------------------------- untrained baseline


def untrained_translator(
    train: AlignmentDataset,
    normalizer: str,
    normalizer_kwargs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    where: str = "all",
    seed: int = 0,
    **sizes: Any,
) -> Translator:
    """The model `train_translator` would start from: same vocabularies, config and seed, no
    training (`training` is None). Its attention is the chance level of any statistic: e.g. an
    untrained ReLU attention zeroes about half of the scores, which are symmetric around 0."""
    src_vocab = seq2seq_vocab(ex.src for ex in train)
    tgt_vocab = seq2seq_vocab(ex.tgt for ex in train)
    config = seq2seq_config(
        src_vocab, tgt_vocab, normalizer, normalizer_kwargs, where=where, **sizes
    )
    set_seed(seed)
    model = Seq2SeqTransformer(config).eval()
    label = name or f"untrained {normalizer}"
    return Translator(label, model, src_vocab, tgt_vocab, None, config)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- speed


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks up to 1 GiB in the heap instead of returning them to
    the OS; returns False where that cannot be set (not glibc: macOS, Windows, musl).

    Why: torch's CPU tensors come from malloc. By default glibc serves a block of 8 MB (one
    (32, 4, 128, 128) score tensor) either from fresh pages, which fault and are zeroed on first
    touch, or from reused heap, depending on the thresholds it has adapted to so far. So the
    same timed call cost 12 to 18 ms depending on what the process had allocated before, and
    the time of those page faults diluted the ratio between two normalisers differently in
    each run. With the thresholds fixed, every timed call after warm-up reuses heap memory.
    The setting stays for the rest of the process (glibc cannot return to its adaptive
    thresholds); the cost is that freed memory up to 1 GiB stays resident.
    """
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    )


def _package_topk(scores: Tensor, k: int | None = None, div: float | None = None) -> Tensor:
    """Zhao et al.'s top-k as their code computes it: `torch.topk` for the k-th largest score,
    scores below it to −inf, softmax (`topk_reference`, torch operations only)."""
    attend = torch.ones_like(scores, dtype=torch.bool)
    return topk_reference(scores, attend, -1, k, div, 1)


# name -> (normaliser f(scores) -> weights, whose implementation it is)
SPEED_ROWS: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    "softmax": (lambda s: torch.softmax(s, dim=-1), "torch"),
    "rela": (torch.relu, "torch"),
    "top-k (k=8)": (lambda s: _package_topk(s, k=8), "torch.topk, as Zhao et al.'s code"),
    "top-k (ceil(n/4))": (lambda s: _package_topk(s, div=4), "torch.topk, as Zhao et al.'s code"),
    "sparsemax": (lambda s: entmax.sparsemax(s, dim=-1), "entmax package (sort)"),
    "1.5-entmax": (lambda s: entmax.entmax15(s, dim=-1), "entmax package (sort)"),
    "sparsemax (attnkit)": (lambda s: sparsemax(s), "attnkit fused numba kernel (ours)"),
    "1.5-entmax (attnkit)": (lambda s: entmax15(s), "attnkit fused numba kernel (ours)"),
    "top-k (k=8) (attnkit)": (lambda s: topk(s, k=8), "attnkit fused numba kernel (ours)"),
}
"""The normalisers timed by `attention_speed`. The first six are what the papers compared (torch's
softmax and ReLU, top-k by `torch.topk`, sparsemax / 1.5-entmax from the `entmax` package that
Zhao et al.'s module and the ReLA comparison call); the `(attnkit)` rows are our own kernels."""


def _attention_job(
    name: str, n: int, batch: int, heads: int, d_head: int, train: bool, seed: int
) -> Callable[[], None]:
    """One attention sublayer call: W = f(Q Kᵀ/√d) `(B, H, n, n)`, O = W V, heads combined
    `(B, n, H·d)`, ReLA's gated RMS norm on O for `rela`; backward of O.sum() when `train`."""
    normalise, _ = SPEED_ROWS[name]
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, d_head, generator=generator) for _ in range(3))
    scale, gate = torch.ones(heads * d_head), torch.randn(heads * d_head, generator=generator)
    if train:
        for x in (q, k, v, scale, gate):
            x.requires_grad_(True)

    def run() -> None:
        with torch.set_grad_enabled(train):
            weights = normalise(q @ k.transpose(-1, -2) / math.sqrt(d_head))  # (B, H, n, n)
            out = (weights @ v).transpose(1, 2).reshape(batch, n, heads * d_head)  # (B, n, D)
            if name == "rela":
                out = rela_output_norm(out, scale, gate)
            if train:
                out.sum().backward()

    return run


def attention_speed(
    lengths: Sequence[int] = (64, 128),
    *,
    batch: int = 32,
    heads: int = 4,
    d_head: int = 16,
    repeats: int = 15,
    blocks: int = 1,
    rows: Sequence[str] | None = None,
    threads: int | None = 1,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Seconds per attention-sublayer call for each normaliser in `SPEED_ROWS`, and speedups.

    Per key length n: a (B, H, n, n) self-attention block (`_attention_job`) timed for training
    (forward + backward) and inference (forward, no gradients). A block builds every row's
    inputs afresh (seed `seed + block`), runs each row once to warm up, then `repeats` rounds in
    which each row runs once in turn (interleaved). A row's speedup is the median over all
    `blocks × repeats` rounds of softmax's time / the row's time *in the same round* (the
    papers' ×, > 1 = faster than softmax): load from other work on a shared machine slows the
    calls of one round alike and cancels in their ratio. `*_ms`: the median time per call.
    Timing runs with glibc keeping freed memory (`keep_freed_memory`, a setting that stays for
    the rest of the process). Returns one row per (n, normaliser).

    Why blocks and the allocator setting: at n = 128 on the 2-core CPU we develop on, ReLA's
    training ratio from one block of 15 rounds ranged over 0.79–0.97 between runs of the same
    code; 300 rounds in one block still gave 0.85–0.98, because the spread came from the
    process (which memory the inputs and temporaries got, whether they page-faulted), not from
    too few rounds. With the allocator fixed and another busy process beside it, one block of
    120 rounds gave 0.83–0.89 over 5 runs; 24 fresh blocks of 20 rounds (the ReLA notebook's
    setting for that claim) gave 0.82–0.86 over 8 runs, 4 of them beside a busy process.
    """
    from tqdm.auto import tqdm

    names = list(rows or SPEED_ROWS)
    unknown = sorted(set(names) - set(SPEED_ROWS))
    if unknown or "softmax" not in names:
        raise ValueError(
            f"attention_speed: rows must include 'softmax' and come from {list(SPEED_ROWS)}; "
            f"unknown: {unknown}"
        )
    if min(batch, heads, d_head, repeats, blocks) < 1 or any(n < 2 for n in lengths):
        raise ValueError(
            "attention_speed: batch, heads, d_head, repeats, blocks >= 1 and lengths >= 2"
        )
    records = []
    keep_freed_memory()
    with _threads(threads):
        for n in tqdm(list(lengths), desc="lengths", disable=not progress):
            row = {
                name: {"n": n, "normalizer": name, "implementation": SPEED_ROWS[name][1]}
                for name in names
            }
            for mode, train in (("train", True), ("inference", False)):
                per_block = []
                for block in range(blocks):
                    jobs = {
                        name: _attention_job(name, n, batch, heads, d_head, train, seed + block)
                        for name in names
                    }
                    per_block.append(_interleaved_rounds(jobs, repeats))
                    del jobs  # free this block's inputs before the next block allocates its own
                # name -> (blocks · repeats,) seconds
                times = {name: np.concatenate([t[name] for t in per_block]) for name in names}
                for name in names:
                    row[name][f"{mode}_ms"] = 1e3 * float(np.median(times[name]))
                    row[name][f"{mode}_speedup"] = float(np.median(times["softmax"] / times[name]))
            records.extend(row.values())
    return pd.DataFrame(records).set_index(["n", "normalizer"])


def _interleaved_rounds(jobs: dict[str, Callable[[], None]], repeats: int) -> dict[str, np.ndarray]:
    """Seconds of each job in each of `repeats` rounds (after one warm-up round); the jobs of a
    round run in turn, so a load change on a shared machine hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(repeats + 1):
        for name, job in jobs.items():
            started = time.perf_counter()
            job()
            if round_ > 0:
                times[name].append(time.perf_counter() - started)
    return {name: np.asarray(values) for name, values in times.items()}


def speed_at(speed: pd.DataFrame, n: int) -> tuple[int, pd.DataFrame]:
    """The rows of an `attention_speed` table at key length `n`, or at the longest length timed
    when `n` was not (the smoke profile); returns (the length used, its rows by normaliser)."""
    lengths = list(speed.index.get_level_values("n").unique())
    used = n if n in lengths else max(lengths)
    return int(used), speed.xs(used, level="n")
