"""A toy translation task whose gold word alignment is known by construction.

Source sentences ``the [adj] noun [really|just] verb the [adj] noun [adverb]`` are translated
word by word with :data:`TOY_LEXICON`, plus three phenomena that make alignment non-trivial:

* local reordering -- an adjective follows its noun in the target ("red car" -> "voiture rouge");
* one-to-many words -- e.g. "potato" -> "pomme de terre", "ate" -> "a mangé";
* unaligned words -- source fillers in :data:`DROPPED_SOURCE_WORDS` have no translation, and
  the target inserts :data:`INSERTED_TARGET_WORD` before an animate object (like Spanish
  personal "a"), which no source word aligns to.

Every target token produced from a source word is a sure link; ``possible == sure``.
"""

from __future__ import annotations

import random

from attnkit.data.types import AlignmentDataset, AlignmentExample, Link

DETERMINERS: dict[str, tuple[str, ...]] = {"the": ("le",), "a": ("un",)}
NOUNS: dict[str, tuple[str, ...]] = {
    "cat": ("chat",),
    "dog": ("chien",),
    "bird": ("oiseau",),
    "teacher": ("professeur",),
    "fireman": ("sapeur", "pompier"),
    "house": ("maison",),
    "car": ("voiture",),
    "potato": ("pomme", "de", "terre"),
    "book": ("livre",),
}
ANIMATE_NOUNS: frozenset[str] = frozenset({"cat", "dog", "bird", "teacher", "fireman"})
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "red": ("rouge",),
    "big": ("grand",),
    "small": ("petit",),
    "old": ("vieux",),
    "green": ("vert",),
}
VERBS: dict[str, tuple[str, ...]] = {
    "sees": ("voit",),
    "likes": ("aime",),
    "ate": ("a", "mangé"),
    "washes": ("lave",),
    "follows": ("suit",),
}
ADVERBS: dict[str, tuple[str, ...]] = {"quickly": ("vite",), "today": ("aujourd'hui",)}
DROPPED_SOURCE_WORDS: dict[str, tuple[str, ...]] = {"really": (), "just": ()}
INSERTED_TARGET_WORD = "à"

TOY_LEXICON: dict[str, tuple[str, ...]] = {
    **DETERMINERS,
    **NOUNS,
    **ADJECTIVES,
    **VERBS,
    **ADVERBS,
    **DROPPED_SOURCE_WORDS,
}
"""Source word -> its target tokens, in order; an empty tuple means the word is dropped."""


class _Builder:
    """Accumulates source tokens, target tokens and the links between them."""

    def __init__(self) -> None:
        self.src: list[str] = []
        self.tgt: list[str] = []
        self.links: set[Link] = set()

    def add_source(self, word: str) -> int:
        self.src.append(word)
        return len(self.src) - 1

    def emit_translation(self, source_index: int) -> None:
        for target_word in TOY_LEXICON[self.src[source_index]]:
            self.links.add((source_index, len(self.tgt)))
            self.tgt.append(target_word)

    def noun_phrase(self, rng: random.Random, *, is_object: bool) -> None:
        det = self.add_source(rng.choice(tuple(DETERMINERS)))
        adj = self.add_source(rng.choice(tuple(ADJECTIVES))) if rng.random() < 0.5 else None
        noun = self.add_source(rng.choice(tuple(NOUNS)))
        if is_object and self.src[noun] in ANIMATE_NOUNS:
            self.tgt.append(INSERTED_TARGET_WORD)  # unaligned: no source word produces it
        self.emit_translation(det)
        self.emit_translation(noun)  # noun before adjective: the local reordering
        if adj is not None:
            self.emit_translation(adj)


def _make_example(rng: random.Random) -> AlignmentExample:
    builder = _Builder()
    builder.noun_phrase(rng, is_object=False)
    if rng.random() < 0.3:
        builder.emit_translation(builder.add_source(rng.choice(tuple(DROPPED_SOURCE_WORDS))))
    builder.emit_translation(builder.add_source(rng.choice(tuple(VERBS))))
    builder.noun_phrase(rng, is_object=True)
    if rng.random() < 0.4:
        builder.emit_translation(builder.add_source(rng.choice(tuple(ADVERBS))))
    links = frozenset(builder.links)
    return AlignmentExample(
        src=tuple(builder.src), tgt=tuple(builder.tgt), sure=links, possible=links
    )


def _join(parts: list[AlignmentExample]) -> AlignmentExample:
    """Concatenate sentence pairs into one document pair, each link shifted by the lengths of
    the sentences before it (source and target words keep their own alignment)."""
    src: list[str] = []
    tgt: list[str] = []
    links: set[Link] = set()
    for part in parts:
        links.update((s + len(src), t + len(tgt)) for s, t in part.sure)
        src.extend(part.src)
        tgt.extend(part.tgt)
    joined = frozenset(links)
    return AlignmentExample(src=tuple(src), tgt=tuple(tgt), sure=joined, possible=joined)


def make_toy_translation(
    n: int, *, seed: int = 0, split: str = "", sentences: int | tuple[int, int] = 1
) -> AlignmentDataset:
    """Generate ``n`` pairs with gold alignment; the same seed gives the same pairs.

    ``sentences``: each pair is one sentence (1, the default: 5–12 source words), or that many
    sentences concatenated into one document, or a number drawn uniformly from the inclusive
    range ``(low, high)`` per pair, e.g. ``(3, 5)`` for 15–60 source words. Longer inputs make
    top-k with small k genuinely sparse (Zhao et al. 2019 translate whole sentences of 20–30
    words, against ≤ 12 here).
    """
    low, high = (sentences, sentences) if isinstance(sentences, int) else tuple(sentences)
    if (
        isinstance(low, bool)
        or isinstance(high, bool)
        or not isinstance(low, int)
        or not isinstance(high, int)
        or not 1 <= low <= high
    ):
        raise ValueError(
            f"make_toy_translation: sentences must be an int >= 1 or a range (low, high) with "
            f"1 <= low <= high, got {sentences!r}."
        )
    rng = random.Random(seed)
    if high == 1:  # one sentence per pair: no draw for the count (the historical stream)
        examples = [_make_example(rng) for _ in range(n)]
    else:
        examples = [
            _join([_make_example(rng) for _ in range(rng.randint(low, high))]) for _ in range(n)
        ]
    shape = "" if high == 1 else f", sentences={low}-{high}"
    return AlignmentDataset(
        examples=examples,
        origin=f"synthetic(toy_translation, seed={seed}, n={n}{shape})",
        synthetic=True,
        name="toy_translation",
        split=split,
    )
