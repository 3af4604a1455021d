"""Alignment and translation metrics for encoder–decoder attention (Zhang et al. 2021's analyses).

* `alignments_from_attention`: the word alignment a cross-attention head induces: each target
  position links to its highest-weighted source word; a query that attends to nothing (ReLA's
  all-zero row) or whose top weight is below `threshold` gives no link.
* `aer`: alignment error rate (Och & Ney 2003), 1 − (|A∩S| + |A∩P|) / (|A| + |S|), pooled
  over a corpus.
* `cross_attention_aer`: AER per layer and head of a batch of cross-attention maps, with the
  best head and the head average per layer (the solid / dashed lines of Zhang et al.'s AER
  figure).
* `null_rate`: share of (real query, head) pairs whose weights are all zero (ReLA "switches
  off"); `head_diversity`: mean pairwise Jensen–Shannon divergence between the heads of a layer.
* `corpus_bleu`: BLEU-4 with brevity penalty (Papineni et al. 2002), whitespace tokens, one
  reference per hypothesis, no smoothing; for when sacrebleu is not installed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from attnkit.errors import AttnkitError
from attnkit.metrics import jsd


class AlignmentInputError(AttnkitError):
    """Alignment or translation inputs that do not line up; the message says which."""


Link = tuple[int, int]  # (source index, target index)


def aer(
    predicted: Iterable[Iterable[Link]],
    sure: Iterable[Iterable[Link]],
    possible: Iterable[Iterable[Link]] | None = None,
) -> float:
    """Corpus alignment error rate, 1 − (|A∩S| + |A∩P|) / (|A| + |S|), counts summed over sentences.

    Each argument holds one link set per sentence; `possible` defaults to `sure` and is
    extended by it (S ⊆ P). Returns NaN when there are no predicted and no sure links.
    """
    predicted, sure = [set(a) for a in predicted], [set(s) for s in sure]
    possible = sure if possible is None else [set(p) for p in possible]
    if not len(predicted) == len(sure) == len(possible):
        raise AlignmentInputError(
            f"aer: need one link set per sentence in each argument, got {len(predicted)} "
            f"predicted, {len(sure)} sure, {len(possible)} possible."
        )
    hits_sure = hits_possible = n_predicted = n_sure = 0
    for a, s, p in zip(predicted, sure, possible, strict=True):
        p = p | s
        hits_sure += len(a & s)
        hits_possible += len(a & p)
        n_predicted += len(a)
        n_sure += len(s)
    if n_predicted + n_sure == 0:
        return float("nan")
    return 1.0 - (hits_sure + hits_possible) / (n_predicted + n_sure)


def alignments_from_attention(
    weights: Tensor,
    src_len: int,
    tgt_len: int,
    *,
    threshold: float = 0.0,
) -> set[Link]:
    """Links of one head for one sentence: target i → argmax_j weights[i, j].

    Args:
        weights: `(T, S)` cross-attention of one head (rows = target positions).
        src_len, tgt_len: real lengths; rows ≥ tgt_len and columns ≥ src_len are ignored.
        threshold: no link when the row's largest weight is ≤ threshold (0: only all-zero rows,
            i.e. queries that attend to nothing, give no link).
    """
    if weights.dim() != 2:
        raise AlignmentInputError(
            f"alignments_from_attention: weights must be (T, S), got {tuple(weights.shape)}"
        )
    block = weights[:tgt_len, :src_len]
    top, where = block.max(dim=-1)
    return {
        (int(j), i)
        for i, (value, j) in enumerate(zip(top.tolist(), where.tolist(), strict=True))
        if value > threshold
    }


def cross_attention_aer(
    weights: Tensor,
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int],
    sure: Sequence[Iterable[Link]],
    possible: Sequence[Iterable[Link]] | None = None,
    *,
    threshold: float = 0.0,
) -> dict[str, Tensor]:
    """AER of every cross-attention head against gold alignments.

    Args:
        weights: `(L, B, H, T, S)` cross-attention, query i = the decoder position that predicts
            target word i (teacher forcing on the reference).
        src_lengths, tgt_lengths: real source / target word counts per sentence.
        sure, possible: gold links `(source index, target index)` per sentence.

    Returns:
        `{"per_head": (L, H), "best_head": (L,), "head_mean": (L,)}` AER values; best = lowest.
    """
    layers, batch, heads = weights.shape[:3]
    if not len(src_lengths) == len(tgt_lengths) == len(sure) == batch:
        raise AlignmentInputError(
            f"cross_attention_aer: weights have {batch} sentences but got {len(src_lengths)} "
            f"source lengths, {len(tgt_lengths)} target lengths and {len(sure)} gold sets."
        )
    per_head = torch.empty(layers, heads, dtype=torch.float64)
    weights = weights.detach().cpu()
    for layer in range(layers):
        for head in range(heads):
            predicted = [
                alignments_from_attention(
                    weights[layer, b, head], src_lengths[b], tgt_lengths[b], threshold=threshold
                )
                for b in range(batch)
            ]
            per_head[layer, head] = aer(predicted, sure, possible)
    return {
        "per_head": per_head,
        "best_head": per_head.min(dim=1).values,
        "head_mean": per_head.mean(dim=1),
    }


def _query_mask(weights: Tensor, query_mask: Tensor | None) -> Tensor:
    """(L, B, H, T) bool of real queries."""
    if query_mask is None:
        return torch.ones(weights.shape[:-1], dtype=torch.bool, device=weights.device)
    return query_mask.bool()[None, :, None, :].expand(weights.shape[:-1])


def null_rate(
    weights: Tensor, query_mask: Tensor | None = None, *, dim: int | tuple[int, ...] | None = None
) -> Tensor:
    """Share of (real query, head) pairs whose attention row is all zeros.

    Args:
        weights: `(L, B, H, T, S)`; padding keys must already be 0 (attnkit normalisers do that).
        query_mask: `(B, T)` real queries; None means all.
        dim: None for one share overall; e.g. `(1, 3)` for a share per (layer, head).
    """
    real = _query_mask(weights, query_mask)
    null = weights.eq(0).all(dim=-1) & real
    if dim is None:
        return null.double().sum() / real.double().sum()
    return null.double().sum(dim) / real.double().sum(dim)


def head_diversity(weights: Tensor, query_mask: Tensor | None = None) -> Tensor:
    """Mean pairwise Jensen–Shannon divergence (nats, ≤ ln 2) between a layer's heads, per layer.

    Each head's row is renormalised to sum to 1 (ReLA's rows are unnormalised); a pair of heads
    counts at a query only when both attend to something there. Returns `(L,)`, NaN for a layer
    with no such pair (or a single head).
    """
    layers, _, heads = weights.shape[:3]
    real = _query_mask(weights, query_mask)  # (L, B, H, T)
    active = weights.sum(-1).gt(0) & real
    # All-zero rows become uniform so `jsd` can normalise them; they are left out of the mean.
    rows = torch.where(active[..., None], weights.double(), 1.0)
    sums = torch.zeros(layers, dtype=torch.float64)
    counts = torch.zeros(layers, dtype=torch.float64)
    for a in range(heads):
        for b in range(a + 1, heads):
            both = active[:, :, a] & active[:, :, b]  # (L, B, T)
            value = jsd(rows[:, :, a], rows[:, :, b], normalize=True)  # (L, B, T)
            sums += (value * both).sum((1, 2))
            counts += both.double().sum((1, 2))
    return sums / counts


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """Corpus BLEU in [0, 100] (Papineni et al. 2002): clipped n-gram precisions p_1..p_N pooled
    over the corpus, geometric mean, brevity penalty exp(1 − r/c) when c < r. Tokens are given
    (no tokenisation), one reference each, no smoothing: 0 when some n-gram order has no match.
    """
    if len(hypotheses) != len(references):
        raise AlignmentInputError(
            f"corpus_bleu: {len(hypotheses)} hypotheses but {len(references)} references"
        )
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, r[g]) for g, count in h.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * brevity * math.exp(log_precision)
