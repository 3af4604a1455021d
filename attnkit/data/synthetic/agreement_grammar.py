"""A tiny subject-verb agreement grammar with attractors (Linzen et al. 2016 style).

Sentences look like ``the key to the cabinets that the men own is old .``: a subject noun
phrase, a chain of prepositional-phrase and object-relative-clause modifiers (each adding one
intervening noun), the main verb and a short continuation. The model sees the prefix up to the
verb and predicts the verb's number. As in Linzen et al., ``n_attractors`` counts the
intervening nouns whose number differs from the subject's. Relative-clause verbs agree with
their own noun, so they are attractor-number cues too -- the hard case the papers study.
"""

from __future__ import annotations

import random

from attnkit.data.readers.agreement import agreement_dataset
from attnkit.data.types import AgreementExample, TextDataset

# (singular, plural); a few irregular plurals so number is not just a trailing "s".
NOUN_PAIRS: tuple[tuple[str, str], ...] = (
    ("key", "keys"),
    ("cabinet", "cabinets"),
    ("door", "doors"),
    ("author", "authors"),
    ("book", "books"),
    ("table", "tables"),
    ("dog", "dogs"),
    ("child", "children"),
    ("man", "men"),
    ("woman", "women"),
    ("painting", "paintings"),
    ("student", "students"),
    ("teacher", "teachers"),
    ("house", "houses"),
    ("box", "boxes"),
    ("city", "cities"),
)
PREPOSITIONS: tuple[str, ...] = ("to", "near", "of", "behind", "beside", "under", "with")
# Relative-clause verbs (singular, plural), used as "that the <noun> <verb>".
RELATIVE_VERB_PAIRS: tuple[tuple[str, str], ...] = (
    ("likes", "like"),
    ("sees", "see"),
    ("owns", "own"),
    ("paints", "paint"),
)
# Main verbs (singular, plural) and words that may follow them.
MAIN_VERB_PAIRS: tuple[tuple[str, str], ...] = (
    ("is", "are"),
    ("was", "were"),
    ("has", "have"),
    ("seems", "seem"),
    ("remains", "remain"),
)
_CONTINUATIONS = {
    "is": ("old", "red", "here", "broken", "small"),
    "was": ("old", "red", "there", "broken", "new"),
    "has": ("arrived", "vanished", "changed"),
    "seems": ("old", "strange", "happy", "small"),
    "remains": ("closed", "open", "hidden", "quiet"),
}
NOUN_NUMBER: dict[str, int] = {
    form: number for pair in NOUN_PAIRS for number, form in enumerate(pair)
}
"""Every noun form mapped to 0 (singular) or 1 (plural)."""


def _make_example(rng: random.Random, max_attractors: int, max_modifiers: int) -> AgreementExample:
    subject_number = rng.randrange(2)
    n_attractors = rng.randint(0, max_attractors)
    n_modifiers = rng.randint(n_attractors, max(n_attractors, max_modifiers))
    mismatching = set(rng.sample(range(n_modifiers), n_attractors))
    prefix = ["the", rng.choice(NOUN_PAIRS)[subject_number]]
    for k in range(n_modifiers):
        number = 1 - subject_number if k in mismatching else subject_number
        noun = rng.choice(NOUN_PAIRS)[number]
        if rng.random() < 0.3:
            prefix += ["that", "the", noun, rng.choice(RELATIVE_VERB_PAIRS)[number]]
        else:
            prefix += [rng.choice(PREPOSITIONS), "the", noun]
    singular_verb, plural_verb = rng.choice(MAIN_VERB_PAIRS)
    correct, wrong = (
        (singular_verb, plural_verb) if subject_number == 0 else (plural_verb, singular_verb)
    )
    sentence = [*prefix, correct, rng.choice(_CONTINUATIONS[singular_verb]), "."]
    return AgreementExample(
        prefix=tuple(prefix),
        label=subject_number,
        n_attractors=n_attractors,
        verb_index=len(prefix),
        correct_verb=correct,
        wrong_verb=wrong,
        sentence=tuple(sentence),
    )


def make_agreement_examples(
    n: int, *, seed: int = 0, max_attractors: int = 3, max_modifiers: int = 4
) -> list[AgreementExample]:
    """Generate ``n`` agreement items; the same seed always gives the same items.

    Labels are balanced in expectation; ``n_attractors`` is uniform over ``0..max_attractors``.
    """
    if max_modifiers < max_attractors:
        raise ValueError(
            "max_modifiers must be >= max_attractors (each attractor is one modifier noun)"
        )
    rng = random.Random(seed)
    return [_make_example(rng, max_attractors, max_modifiers) for _ in range(n)]


def make_agreement_dataset(
    n: int, *, seed: int = 0, max_attractors: int = 3, max_modifiers: int = 4, split: str = ""
) -> TextDataset:
    """:func:`make_agreement_examples` as a TextDataset (prefix tokens, labels and metadata)."""
    examples = make_agreement_examples(
        n, seed=seed, max_attractors=max_attractors, max_modifiers=max_modifiers
    )
    origin = f"synthetic(agreement_grammar, seed={seed}, n={n}, max_attractors={max_attractors})"
    return agreement_dataset(examples, origin, name="agreement", split=split, synthetic=True)
