"""Linzen et al. (2016) subject-verb agreement set, colorlessgreenRNNs line-aligned layout.

Files under ``agreement/linzen_testset/``:

* ``subj_agr_filtered.text`` -- one tokenised sentence per line, ending in ``<eos>``.
* ``subj_agr_filtered.gold`` -- tab-separated: 0-indexed verb position, correct verb form,
  wrong verb form, number of attractors.

The file is a single set of 7,489 sentences; :func:`split_agreement` divides it into
train/dev/test by seed (the Abnar & Zuidema reproduction trains on it).

Label (verb number) rule, decided from the two verb forms only:

1. ``is/was/has`` are singular and ``are/were/have`` plural (whichever of the pair they are);
2. otherwise the form that is the other plus an ``-s``/``-es`` suffix (or ``y`` -> ``-ies``)
   is singular ("includes"/"include", "passes"/"pass", "carries"/"carry");
3. otherwise the form ending in ``s`` where the other does not is singular;
4. otherwise the number is undecidable (e.g. "lie"/"lie" -- 4 such lines in the real file);
   those lines are always skipped, counted and reported with a DataQualityWarning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnkit.data.errors import DataQualityWarning, DatasetFormatError
from attnkit.data.paths import require_files
from attnkit.data.readers._io import read_line_aligned
from attnkit.data.splits import partition_indices
from attnkit.data.types import AGREEMENT_LABEL_NAMES, AgreementExample, TextDataset

LINZEN_TEXT = "agreement/linzen_testset/subj_agr_filtered.text"
LINZEN_GOLD = "agreement/linzen_testset/subj_agr_filtered.gold"
AGREEMENT_FETCH_NAME = "agreement"
AGREEMENT_SPLITS = ("train", "dev", "test")
AGREEMENT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
EOS_TOKEN = "<eos>"

_SINGULAR_AUXILIARIES = {"is", "was", "has"}
_PLURAL_AUXILIARIES = {"are", "were", "have"}


def _is_inflected_singular(form: str, other: str) -> bool:
    """True when ``form`` is ``other`` with a 3rd-person-singular suffix."""
    return form in (other + "s", other + "es") or (
        other.endswith("y") and form == other[:-1] + "ies"
    )


def verb_number(correct: str, wrong: str) -> int | None:
    """0 if ``correct`` is the singular form, 1 if plural, None if undecidable (module docstring)."""
    correct, wrong = correct.lower(), wrong.lower()
    if correct in _SINGULAR_AUXILIARIES or wrong in _PLURAL_AUXILIARIES:
        return 0
    if correct in _PLURAL_AUXILIARIES or wrong in _SINGULAR_AUXILIARIES:
        return 1
    if _is_inflected_singular(correct, wrong):
        return 0
    if _is_inflected_singular(wrong, correct):
        return 1
    if correct.endswith("s") != wrong.endswith("s"):
        return 0 if correct.endswith("s") else 1
    return None


@dataclass
class LinzenAgreement:
    """Result of :func:`read_linzen_agreement`.

    Attributes:
        examples: the usable items, in file order.
        skipped: ``(line number, reason)`` for each line left out.
        origin: the two file paths read.
    """

    examples: list[AgreementExample]
    origin: str
    skipped: list[tuple[int, str]] = field(default_factory=list)


class _BadLine(Exception):
    """Internal: a line that ``skip_bad`` may skip; carries what was expected and found."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(expected, found)
        self.expected = expected
        self.found = found


def _parse_item(line_number: int, sentence_line: str, gold_line: str) -> AgreementExample | None:
    """Build one example; None when the verb number is undecidable; _BadLine when malformed."""
    tokens = sentence_line.split()
    if tokens and tokens[-1] == EOS_TOKEN:
        tokens = tokens[:-1]
    columns = gold_line.split("\t")
    if len(columns) != 4:
        raise _BadLine(
            "4 tab-separated gold columns (position, correct, wrong, attractors)",
            f"{len(columns)} columns",
        )
    position_field, correct, wrong, attractors_field = columns
    try:
        position, n_attractors = int(position_field), int(attractors_field)
    except ValueError:
        raise _BadLine(
            "integer verb position and attractor count", f"{position_field!r}, {attractors_field!r}"
        ) from None
    if not 0 <= position < len(tokens):
        raise _BadLine(
            f"verb position inside the {len(tokens)}-token sentence", f"position {position}"
        )
    if position == 0:
        raise _BadLine("a non-empty prefix before the verb", "verb position 0")
    if tokens[position].lower() != correct.lower():
        raise _BadLine(
            f"the correct form {correct!r} at position {position}", repr(tokens[position])
        )
    label = verb_number(correct, wrong)
    if label is None:
        return None
    return AgreementExample(
        prefix=tuple(t.lower() for t in tokens[:position]),
        label=label,
        n_attractors=n_attractors,
        verb_index=position,
        correct_verb=correct.lower(),
        wrong_verb=wrong.lower(),
        sentence=tuple(t.lower() for t in tokens),
        line=line_number,
    )


def read_linzen_agreement(
    data_dir: str | Path | None, *, skip_bad: bool = False
) -> LinzenAgreement:
    """Read the whole Linzen agreement set (not split; see :func:`split_agreement`).

    Args:
        skip_bad: skip malformed lines (verb position beyond the sentence, empty prefix, gold
            verb not found at its position, wrong column count) with a warning instead of raising.

    Raises:
        DatasetNotFoundError: a file is missing.
        DatasetFormatError: the two files differ in line count, or a malformed line with
            ``skip_bad=False`` (names the gold file and line).
    """
    text_path, gold_path = require_files(
        "agreement", data_dir, [LINZEN_TEXT, LINZEN_GOLD], AGREEMENT_FETCH_NAME
    )
    sentences, golds = read_line_aligned(text_path, gold_path)
    examples: list[AgreementExample] = []
    skipped: list[tuple[int, str]] = []
    undecidable = 0
    for line_number, (sentence_line, gold_line) in enumerate(
        zip(sentences, golds, strict=True), start=1
    ):
        try:
            example = _parse_item(line_number, sentence_line, gold_line)
        except _BadLine as bad:
            if not skip_bad:
                raise DatasetFormatError(gold_path, line_number, bad.expected, bad.found) from None
            skipped.append((line_number, f"expected {bad.expected}, found {bad.found}"))
            continue
        if example is None:
            undecidable += 1
            skipped.append(
                (line_number, f"verb number undecidable from {gold_line.split(chr(9))[1:3]}")
            )
            continue
        examples.append(example)
    if skipped:
        malformed = len(skipped) - undecidable
        warnings.warn(
            f"{gold_path}: skipped {len(skipped)} of {len(golds)} lines ({malformed} malformed, "
            f"{undecidable} with undecidable verb number), first at line {skipped[0][0]}: {skipped[0][1]}",
            DataQualityWarning,
            stacklevel=2,
        )
    return LinzenAgreement(examples=examples, origin=f"{text_path} + {gold_path}", skipped=skipped)


def split_agreement(
    examples: Sequence[AgreementExample],
    seed: int,
    fractions: Sequence[float] = AGREEMENT_SPLIT_FRACTIONS,
) -> dict[str, list[AgreementExample]]:
    """Partition examples into ``train``/``dev``/``test`` (default 80/10/10) by seed."""
    parts = partition_indices(len(examples), fractions, seed)
    return {
        name: [examples[i] for i in part]
        for name, part in zip(AGREEMENT_SPLITS, parts, strict=True)
    }


def agreement_dataset(
    examples: Sequence[AgreementExample],
    origin: str,
    *,
    name: str = "agreement",
    split: str = "",
    synthetic: bool = False,
) -> TextDataset:
    """Turn agreement examples into a TextDataset whose texts are the prefixes.

    ``extra`` carries ``n_attractors``, ``verb_index``, ``correct_verb``, ``wrong_verb``,
    ``sentence`` (full token list) and ``line``.
    """
    return TextDataset(
        texts=[list(e.prefix) for e in examples],
        labels=[e.label for e in examples],
        label_names=AGREEMENT_LABEL_NAMES,
        origin=origin,
        synthetic=synthetic,
        name=name,
        split=split,
        extra={
            "n_attractors": [e.n_attractors for e in examples],
            "verb_index": [e.verb_index for e in examples],
            "correct_verb": [e.correct_verb for e in examples],
            "wrong_verb": [e.wrong_verb for e in examples],
            "sentence": [list(e.sentence) for e in examples],
            "line": [e.line for e in examples],
        },
    )
