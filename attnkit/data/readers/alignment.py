"""Gold word alignments from awesome-align's examples: ``alignment/awesome_align/<pair>.*``.

* ``<pair>.src-tgt`` -- ``source tokens ||| target tokens`` per line, already tokenised.
* ``<pair>.gold`` -- links per line, **1-indexed** ``i-j`` (sure) or ``ipj`` (possible; ``i-p-j``
  is accepted too), where ``i`` indexes the source and ``j`` the target.

Returned links are 0-indexed ``(source, target)`` pairs and ``possible`` includes ``sure``.
Tokens are split on ASCII spaces only: the jaen file contains the ideographic space U+3000 as
a token of its own, which ``str.split()`` would swallow and shift every later index.
Tokens keep their case (alignment is evaluated on the given tokens).
"""

from __future__ import annotations

import re
from pathlib import Path

from attnkit.data.errors import DatasetFormatError
from attnkit.data.paths import require_files
from attnkit.data.readers._io import read_line_aligned
from attnkit.data.types import AlignmentDataset, AlignmentExample, Link

ALIGNMENT_PAIRS = ("enfr", "roen", "jaen", "zhen")
ALIGNMENT_FETCH_NAME = "alignment"
_LINK = re.compile(r"^(\d+)(-|p|-p-)(\d+)$")


def alignment_relative_paths(pair: str) -> list[str]:
    """The two files for a language pair, relative to the data directory."""
    if pair not in ALIGNMENT_PAIRS:
        raise ValueError(f"unknown alignment pair {pair!r}; choose from {ALIGNMENT_PAIRS}")
    return [f"alignment/awesome_align/{pair}.src-tgt", f"alignment/awesome_align/{pair}.gold"]


def _split_ascii_spaces(text: str) -> tuple[str, ...]:
    return tuple(token for token in text.split(" ") if token)


def _parse_pair(path: Path, line_number: int, line: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    parts = line.split("|||")
    if len(parts) != 2:
        raise DatasetFormatError(
            path, line_number, "'source ||| target'", f"{len(parts) - 1} '|||' separators"
        )
    src, tgt = _split_ascii_spaces(parts[0]), _split_ascii_spaces(parts[1])
    if not src or not tgt:
        raise DatasetFormatError(
            path, line_number, "tokens on both sides of '|||'", repr(line[:60])
        )
    return src, tgt


def _parse_links(
    path: Path, line_number: int, line: str, n_src: int, n_tgt: int
) -> tuple[set[Link], set[Link]]:
    """Parse one gold line into 0-indexed (sure, possible-only) link sets, checking bounds."""
    sure: set[Link] = set()
    possible: set[Link] = set()
    for field in line.split():
        match = _LINK.match(field)
        if match is None:
            raise DatasetFormatError(
                path, line_number, "links like '3-4' (sure) or '3p4' (possible)", repr(field)
            )
        i, j = int(match.group(1)) - 1, int(match.group(3)) - 1
        if not (0 <= i < n_src and 0 <= j < n_tgt):
            raise DatasetFormatError(
                path,
                line_number,
                f"1-indexed link within {n_src} source x {n_tgt} target tokens",
                repr(field),
            )
        (sure if match.group(2) == "-" else possible).add((i, j))
    return sure, possible


def read_alignment(data_dir: str | Path | None, pair: str) -> AlignmentDataset:
    """Read the gold alignment set for ``pair`` (one of :data:`ALIGNMENT_PAIRS`).

    Raises:
        DatasetNotFoundError: a file is missing.
        DatasetFormatError: line counts differ, a malformed line, or a link out of range.
    """
    text_path, gold_path = require_files(
        f"alignment_{pair}", data_dir, alignment_relative_paths(pair), ALIGNMENT_FETCH_NAME
    )
    pairs, golds = read_line_aligned(text_path, gold_path)
    examples: list[AlignmentExample] = []
    for line_number, (pair_line, gold_line) in enumerate(zip(pairs, golds, strict=True), start=1):
        src, tgt = _parse_pair(text_path, line_number, pair_line)
        sure, possible_only = _parse_links(gold_path, line_number, gold_line, len(src), len(tgt))
        examples.append(
            AlignmentExample(
                src=src,
                tgt=tgt,
                sure=frozenset(sure),
                possible=frozenset(sure | possible_only),
                line=line_number,
            )
        )
    return AlignmentDataset(
        examples=examples,
        origin=f"{text_path} + {gold_path}",
        name=f"alignment_{pair}",
        split="test",
    )
