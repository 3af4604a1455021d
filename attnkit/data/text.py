"""Text normalisation and tokenisation shared by the readers."""

from __future__ import annotations

import re

# Words (with an internal apostrophe part such as "don't"), numbers, or single punctuation marks.
_RAW_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]", re.UNICODE)
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize_pretokenized(text: str) -> list[str]:
    """Lower-case and split on whitespace; for corpora that ship already tokenised (SST, Linzen)."""
    return text.lower().split()


def tokenize_raw(text: str) -> list[str]:
    """Lower-case and split raw prose into words and punctuation marks (IMDB, AG News).

    Whitespace splitting alone would glue punctuation to words ("film." vs "film"), which
    inflates the vocabulary and makes per-token explanations harder to read.
    """
    return _RAW_TOKEN.findall(text.lower())


def strip_html_breaks(text: str) -> str:
    """Replace the ``<br />`` tags of IMDB reviews by a space."""
    return _HTML_BREAK.sub(" ", text)
