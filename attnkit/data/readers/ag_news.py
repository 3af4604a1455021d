"""AG News topic classification (Zhang et al. 2015) from ``ag_news/``.

Files and the splits built from them:

* ``test.csv`` -- the original AG test set, 7,600 rows ``"class","title","description"`` with
  class 1-4 = World, Sports, Business, Sci/Tech. Split ``test`` (text = title + description).
* ``alps_dev.tsv`` -- 10,001 rows ``text<TAB>labelname`` that forest-snow/alps sampled from the
  AG *training* set. There is no full AG train file here, so ``train`` and ``dev`` are a seeded
  90/10 partition of this file.
* ``alps_test.tsv`` -- the same 7,600 test articles (description only) as ``text<TAB>labelname``.
  Split ``test_alps``.

``classes=("World", "Business")`` keeps only those classes and numbers them in that order:
the two-class task of Jain & Wallace (2019). By default all four classes are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from attnkit.data.errors import DatasetFormatError
from attnkit.data.paths import require_files
from attnkit.data.readers._io import iter_csv_rows, parse_int, read_lines
from attnkit.data.splits import derive_seed, train_dev_indices
from attnkit.data.text import tokenize_raw
from attnkit.data.types import TextDataset

AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
AG_NEWS_SPLITS = ("train", "dev", "test", "test_alps")
AG_NEWS_FETCH_NAME = "ag_news"
AG_NEWS_FILES = {
    "train": "ag_news/alps_dev.tsv",
    "dev": "ag_news/alps_dev.tsv",
    "test": "ag_news/test.csv",
    "test_alps": "ag_news/alps_test.tsv",
}
# AG text has HTML entities with the '&' turned into a space (" #39;" for an apostrophe).
_MANGLED_ENTITY = re.compile(r" ?#(\d{2,4});")


def clean_ag_text(text: str) -> str:
    """Undo AG News escaping: ``" #39;"``-style entities and backslashes standing for newlines."""
    text = _MANGLED_ENTITY.sub(lambda match: chr(int(match.group(1))), text)
    return " ".join(text.replace("\\", " ").split())


def _read_class_csv(path: Path) -> list[tuple[str, str]]:
    """Rows of the original AG csv as ``(text, class name)``."""
    rows: list[tuple[str, str]] = []
    for line_number, row in iter_csv_rows(path):
        if len(row) != 3:
            raise DatasetFormatError(
                path,
                line_number,
                "3 csv fields: class (1-4), title, description",
                f"{len(row)} fields",
            )
        class_index = parse_int(path, line_number, row[0], "class index 1-4")
        if not 1 <= class_index <= len(AG_NEWS_CLASSES):
            raise DatasetFormatError(path, line_number, "class index 1-4", repr(row[0]))
        rows.append((f"{row[1]} {row[2]}", AG_NEWS_CLASSES[class_index - 1]))
    return rows


def _read_alps_tsv(path: Path) -> list[tuple[str, str]]:
    """Rows of an alps tsv as ``(text, class name)``."""
    rows: list[tuple[str, str]] = []
    for line_number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        text, tab, class_name = line.rpartition("\t")
        if not tab or not text.strip():
            raise DatasetFormatError(path, line_number, "'text<TAB>labelname'", repr(line[:60]))
        if class_name not in AG_NEWS_CLASSES:
            raise DatasetFormatError(
                path, line_number, f"a label name in {AG_NEWS_CLASSES}", repr(class_name)
            )
        rows.append((text, class_name))
    return rows


def read_ag_news(
    data_dir: str | Path | None,
    split: str,
    *,
    classes: Sequence[str] | None = None,
    seed: int = 0,
) -> TextDataset:
    """Read one AG News split (see the module docstring for which file feeds which split).

    Args:
        classes: class names to keep, numbered in the given order; None keeps all four.
        seed: picks the train/dev partition of ``alps_dev.tsv``.
    """
    if split not in AG_NEWS_SPLITS:
        raise ValueError(f"unknown AG News split {split!r}; choose from {AG_NEWS_SPLITS}")
    label_names = tuple(classes) if classes is not None else AG_NEWS_CLASSES
    unknown = [c for c in label_names if c not in AG_NEWS_CLASSES]
    if unknown or len(set(label_names)) != len(label_names) or len(label_names) < 2:
        raise ValueError(
            f"classes must be 2+ distinct names from {AG_NEWS_CLASSES}, got {label_names}"
        )
    (path,) = require_files("ag_news", data_dir, [AG_NEWS_FILES[split]], AG_NEWS_FETCH_NAME)
    rows = _read_class_csv(path) if path.suffix == ".csv" else _read_alps_tsv(path)
    if split in ("train", "dev"):
        rows = [
            rows[i] for i in train_dev_indices(len(rows), derive_seed(seed, "ag_news-dev"))[split]
        ]
    kept = [
        (clean_ag_text(text), label_names.index(name)) for text, name in rows if name in label_names
    ]
    return TextDataset(
        texts=[tokenize_raw(text) for text, _ in kept],
        labels=[label for _, label in kept],
        label_names=label_names,
        origin=f"{path} (split={split}, classes={','.join(label_names)}, seed={seed})",
        raw=[text for text, _ in kept],
        name="ag_news",
        split=split,
    )
