"""Sparse-attention studies: ReLA (Zhang et al. 2021), top-k (Zhao et al. 2019), Meister et al. 2021.

Translation part (ReLA, top-k): a small encoder–decoder (`attnkit.models.seq2seq`) trained on
the synthetic toy translation task, whose gold word alignment is known by construction, once
per attention normaliser; then quality (greedy sequence accuracy, teacher-forced token
accuracy, BLEU-4), cross-attention sparsity, null rate, AER per layer, head diversity, and
training / decoding time measured in one process, interleaved, as ratios to softmax.

Classification part (Meister et al.): `train_classifier`, `input_influence` and
`interpretability_row`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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
from attnkit.train import TrainConfig, TrainResult, evaluate, fit, set_seed

# Bump when the model or loss code changes in a way the trainer's cache key cannot see.
SEQ2SEQ_CODE_VERSION = 1


# --------------------------------------------------------------------------- data


def toy_translation_splits(
    n_train: int, n_dev: int, n_test: int, *, seed: int = 0
) -> tuple[AlignmentDataset, AlignmentDataset, AlignmentDataset]:
    """Train / dev / test sets of the toy translation task (gold alignments known).

    Drawn from one generator stream, so the splits are disjoint draws; dev and test sentences that
    also occur in train are dropped (the sets may then be slightly smaller than asked). Records
    the data use for the report (synthetic by design: there is no parallel training corpus here).
    """
    pool = make_toy_translation(n_train + 2 * (n_dev + n_test), seed=seed)
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


def _interleaved_medians(jobs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median wall time per job over `repeats` rounds, jobs run in turn each round (after one
    warm-up round), so load changes on a shared machine hit every job alike."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(repeats + 1):
        for name, job in jobs.items():
            started = time.perf_counter()
            job()
            if round_ > 0:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def speed_table(
    translators: Sequence[Translator],
    train: AlignmentDataset,
    test: AlignmentDataset,
    *,
    reference: str = "softmax",
    train_steps: int = 10,
    batch_size: int = 64,
    repeats: int = 3,
    threads: int | None = 1,
) -> pd.DataFrame:
    """Training and decoding time per normaliser, and speedups relative to `reference`.

    Training: `train_steps` AdamW steps (forward, backward, update) on the same batches, from a
    copy of each model. Decoding: greedy decoding of `test` in one batch for a fixed number of
    steps (the longest reference + EOS, no early stop: every model does the same work). Both
    measured in this process, interleaved, median of `repeats`; speedup = reference time / time
    (the papers' ×).
    """
    if reference not in {t.name for t in translators}:
        raise ValueError(f"speed_table: no translator named {reference!r} to compare against")
    # The translators share one training set, hence one vocabulary: the same batches fit all.
    batches = [
        translators[0].collate(
            _pairs(train.subset(range(i * batch_size, min((i + 1) * batch_size, len(train)))))
        )
        for i in range(max(1, min(train_steps, len(train) // batch_size)))
    ]

    def train_job(translator: Translator) -> Callable[[], None]:
        import copy

        def run() -> None:
            model = copy.deepcopy(translator.model).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            for step in range(train_steps):
                batch = batches[step % len(batches)]
                optimizer.zero_grad()
                translation_loss(model, batch).backward()
                optimizer.step()

        return run

    source = translators[0].collate(_pairs(test))
    steps = max(len(ex.tgt) for ex in test) + 1  # the longest reference and its EOS

    def decode_job(translator: Translator) -> Callable[[], None]:
        device = next(translator.model.parameters()).device
        src_ids, src_mask = source["src_ids"].to(device), source["src_mask"].to(device)
        return lambda: translator.model.greedy_decode(src_ids, src_mask, steps, stop_at_eos=False)

    with _threads(threads):
        train_times = _interleaved_medians({t.name: train_job(t) for t in translators}, repeats)
        decode_times = _interleaved_medians({t.name: decode_job(t) for t in translators}, repeats)
    rows = []
    for t in translators:
        rows.append(
            {
                "normalizer": t.name,
                "train_s_per_step": train_times[t.name] / train_steps,
                "decode_s": decode_times[t.name],
                "train_speedup": train_times[reference] / train_times[t.name],
                "decode_speedup": decode_times[reference] / decode_times[t.name],
            }
        )
    return pd.DataFrame(rows).set_index("normalizer")


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


# =========================================================================== Meister et al. 2021


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
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> Classifier:
    """Fit Meister et al.'s classifier: BiLSTM (`architecture="lstm"`, J&W's additive-attention
    model) or a `n_layer` transformer (`"transformer"`), with `normalizer` attention.

    Texts are truncated to `max_len` tokens. Cached by config, data and seed.
    """
    from attnkit.models.additive import AdditiveClassifier, AdditiveCollate, AdditiveConfig
    from attnkit.models.sparse_encoder import transformer_classifier
    from attnkit.train import accuracy, cross_entropy_loss

    if architecture not in ("lstm", "transformer"):
        raise ValueError(f"architecture must be 'lstm' or 'transformer', got {architecture!r}")
    vocab = Vocab.build(train.texts, min_count=min_count)
    n_classes = len(train.label_names)
    config = AdditiveConfig(
        vocab_size=len(vocab),
        embed_dim=embed_dim,
        hidden_size=hidden_size,
        encoder="lstm",
        normalizer=normalizer,
        n_classes=n_classes,
        head="sigmoid" if n_classes == 2 else "softmax",
    )
    set_seed(seed)
    if architecture == "lstm":
        model = AdditiveClassifier(config)
    else:
        model = transformer_classifier(config, n_layer=n_layer, n_head=n_head, max_len=max_len)
    result = fit(
        model,
        _truncated(train, max_len),
        _truncated(dev, max_len),
        loss_fn=cross_entropy_loss,
        metric_fn=accuracy,
        collate=AdditiveCollate(vocab, max_len),
        config=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=1e-5,
            patience=2,
            max_grad_norm=1.0,
            seed=seed,
            device=device,
        ),
        progress=progress,
    )
    return Classifier(
        f"{architecture}/{normalizer}", architecture, normalizer, model, vocab, max_len, result
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


def interpretability_row(
    classifier: Classifier, test: Any, *, n_probes: int = 8, seed: int = 0
) -> dict[str, float]:
    """Meister et al.'s measures for one trained classifier on `test`.

    accuracy; attention sparsity (share of exact zeros over real tokens); Kendall τ between
    attention and input-gradient importance (‖∂p(ŷ)/∂e_t‖) and leave-one-out importance
    (|Δp(ŷ)| when token t is replaced by UNK), mean over examples; co-indexed share (mean over
    real positions); normalised entropies H/ln n of attention and of the input-influence
    distribution on the attended context.
    """
    from attnkit.importance import blank_out, input_gradient
    from attnkit.metrics import entropy, kendall
    from attnkit.models.vocab import UNK_ID

    model = classifier.model
    ids, mask, labels = _encode(classifier, test)
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask)
    predicted = output.logits.argmax(-1)
    attention = output.attention.double()
    gradient = input_gradient(
        model, {"input_ids": ids, "attention_mask": mask}, predicted, reduce="l2"
    )
    loo = blank_out(model, ids, mask, predicted, UNK_ID, skip_first=False, absolute=True)
    influence = input_influence(classifier, ids, mask, n_probes=n_probes, seed=seed)
    lengths = mask.sum(-1).double()
    long_enough = lengths > 1
    log_n = lengths.log().clamp_min(1e-12)
    att_entropy = entropy(attention, mask, normalize=True) / log_n
    inf_entropy = entropy(influence["context"], mask, normalize=True) / log_n
    tau_grad = kendall(attention, gradient.double(), mask).tau
    tau_loo = kendall(attention, loo.double(), mask).tau

    def mean(x: Tensor) -> float:
        x = x[long_enough] if x.dim() == 1 else x
        return float(torch.nanmean(x.double()))

    return {
        "accuracy": float((predicted == labels).double().mean()),
        "attention_sparsity": float(sparsity(attention, mask)),
        "tau_gradient": mean(tau_grad),
        "tau_loo": mean(tau_loo),
        "coindexed_share": float(torch.nanmean(influence["coindexed"][mask].double())),
        "uniform_share": float((1 / lengths).mean()),
        "attention_entropy": mean(att_entropy),
        "influence_entropy": mean(inf_entropy),
    }
