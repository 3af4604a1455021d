"""A sentiment-like token classification task with known important tokens.

Each example is a sequence of neutral filler words with a few *signal* words mixed in; each
signal word belongs to one class. The label is the class with the most signal words (the
generator guarantees a strict majority). ``extra["signal_mask"]`` marks the signal tokens, so
an explanation method can be checked against ground-truth importance.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from attnkit.data.types import TextDataset

SENTIMENT_SIGNAL_WORDS: dict[str, tuple[str, ...]] = {
    "negative": ("bad", "awful", "terrible", "boring", "dull", "worst", "poor"),
    "positive": ("good", "great", "excellent", "wonderful", "superb", "best", "fine"),
}
"""Default classes in SST/IMDB order: label 0 = negative, 1 = positive."""

TOPIC_SIGNAL_WORDS: dict[str, tuple[str, ...]] = {
    "World": ("minister", "election", "treaty", "embassy", "parliament", "rebels"),
    "Sports": ("coach", "season", "goal", "tournament", "striker", "playoff"),
    "Business": ("shares", "profit", "market", "investors", "merger", "quarterly"),
    "Sci/Tech": ("software", "internet", "chip", "spacecraft", "genome", "browser"),
}
"""Signal words for a synthetic stand-in of AG News, keyed by AG class name."""

FILLER_WORDS: tuple[str, ...] = (
    "the",
    "a",
    "movie",
    "story",
    "it",
    "was",
    "and",
    "of",
    "this",
    "is",
    "film",
    "with",
    "plot",
    "actor",
    "scene",
    "to",
    "in",
    "that",
    "time",
    "some",
    "really",
    "very",
    "one",
    "director",
    "for",
    "but",
    "just",
    "about",
    "ending",
    "music",
    "they",
    "there",
)


def majority_signal_label(
    tokens: Sequence[str], signal_words: Mapping[str, Sequence[str]]
) -> int | None:
    """Index of the class with strictly most signal words in ``tokens``; None on a tie."""
    counts = [sum(token in set(words) for token in tokens) for words in signal_words.values()]
    best = max(counts)
    return counts.index(best) if counts.count(best) == 1 else None


def make_signal_task(
    n: int,
    *,
    seed: int = 0,
    signal_words: Mapping[str, Sequence[str]] = SENTIMENT_SIGNAL_WORDS,
    length: tuple[int, int] = (8, 24),
    max_signal: int = 3,
    split: str = "",
) -> TextDataset:
    """Generate ``n`` examples; the same arguments always give the same examples.

    Args:
        signal_words: class name -> its signal words; the key order defines the label ids.
        length: inclusive range of sequence lengths (raised if needed to fit the signal words).
        max_signal: most signal words of the label class in one example (at least 1).

    ``extra`` holds ``signal_mask`` (1 for signal tokens, else 0) and ``signal_class``
    (the class of each signal token, -1 for fillers).
    """
    label_names = tuple(signal_words)
    if len(label_names) < 2 or max_signal < 1:
        raise ValueError("need at least 2 classes and max_signal >= 1")
    if not 1 <= length[0] <= length[1]:
        raise ValueError(f"length must be (min, max) with 1 <= min <= max, got {length}")
    word_lists = [tuple(signal_words[name]) for name in label_names]
    rng = random.Random(seed)
    texts: list[list[str]] = []
    labels: list[int] = []
    masks: list[list[int]] = []
    classes: list[list[int]] = []
    for _ in range(n):
        label = rng.randrange(len(label_names))
        label_count = rng.randint(1, max_signal)
        # Other classes get strictly fewer signal words, so the label is the strict majority.
        counts = [
            label_count if c == label else rng.randint(0, label_count - 1)
            for c in range(len(label_names))
        ]
        signal_classes = [c for c, count in enumerate(counts) for _ in range(count)]
        size = max(rng.randint(*length), len(signal_classes))
        token_classes = signal_classes + [-1] * (size - len(signal_classes))
        rng.shuffle(token_classes)
        tokens = [
            rng.choice(FILLER_WORDS) if c < 0 else rng.choice(word_lists[c]) for c in token_classes
        ]
        texts.append(tokens)
        labels.append(label)
        masks.append([int(c >= 0) for c in token_classes])
        classes.append(token_classes)
    return TextDataset(
        texts=texts,
        labels=labels,
        label_names=label_names,
        origin=f"synthetic(signal_task, seed={seed}, n={n}, classes={','.join(label_names)})",
        synthetic=True,
        name="signal_task",
        split=split,
        extra={"signal_mask": masks, "signal_class": classes},
    )
