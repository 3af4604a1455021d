"""IMDB movie reviews (Maas et al. 2011) from ``imdb/{train,test}.csv.gz``.

The csv has a header ``id,label,rating,text``; label 1 = positive, 0 = negative; rating 1-10.
Each file has 25,000 reviews. The corpus ships no dev set, so ``dev`` is a seeded
:data:`~attnkit.data.splits.DEV_FRACTION` share of ``train.csv.gz`` and ``train`` the rest.
"""

from __future__ import annotations

from pathlib import Path

from attnkit.data.errors import DatasetFormatError
from attnkit.data.paths import require_files
from attnkit.data.readers._io import iter_csv_rows, parse_int
from attnkit.data.splits import derive_seed, subsample_indices, train_dev_indices
from attnkit.data.text import strip_html_breaks, tokenize_raw
from attnkit.data.types import TextDataset

IMDB_SPLITS = ("train", "dev", "test")
IMDB_LABEL_NAMES = ("negative", "positive")
IMDB_COLUMNS = ("id", "label", "rating", "text")
IMDB_FETCH_NAME = "imdb"


def _read_imdb_rows(path: Path) -> list[tuple[str, int, int, str]]:
    """Parse every row of an IMDB csv(.gz) into ``(id, label, rating, text)``."""
    rows: list[tuple[str, int, int, str]] = []
    column_of: dict[str, int] = {}
    n_fields = 0
    for line_number, row in iter_csv_rows(path):
        if not column_of:
            missing = [c for c in IMDB_COLUMNS if c not in row]
            if missing:
                raise DatasetFormatError(
                    path,
                    line_number,
                    f"header with columns {','.join(IMDB_COLUMNS)}",
                    f"{row[:6]} (missing {missing})",
                )
            column_of = {c: row.index(c) for c in IMDB_COLUMNS}
            n_fields = len(row)
            continue
        if len(row) != n_fields:
            raise DatasetFormatError(
                path, line_number, f"{n_fields} csv fields like the header", f"{len(row)} fields"
            )
        label = parse_int(path, line_number, row[column_of["label"]], "label")
        if label not in (0, 1):
            raise DatasetFormatError(
                path, line_number, "label 0 or 1", repr(row[column_of["label"]])
            )
        rating = parse_int(path, line_number, row[column_of["rating"]], "rating")
        rows.append((row[column_of["id"]], label, rating, row[column_of["text"]]))
    if not column_of:
        raise DatasetFormatError(
            path, 1, f"header with columns {','.join(IMDB_COLUMNS)}", "an empty file"
        )
    return rows


def read_imdb(
    data_dir: str | Path | None,
    split: str,
    *,
    limit: int | None = None,
    seed: int = 0,
) -> TextDataset:
    """Read one IMDB split; ``limit`` keeps a seeded random subset of that many reviews.

    The train/dev partition and the subsample both depend on ``seed`` only, so the same
    arguments always give the same reviews. Tokenisation runs only on the kept reviews.
    ``raw`` holds the review with ``<br />`` replaced by a space; ``extra`` has ``id``, ``rating``.
    """
    if split not in IMDB_SPLITS:
        raise ValueError(f"unknown IMDB split {split!r}; choose from {IMDB_SPLITS}")
    file_split = "test" if split == "test" else "train"
    (path,) = require_files("imdb", data_dir, [f"imdb/{file_split}.csv.gz"], IMDB_FETCH_NAME)
    rows = _read_imdb_rows(path)
    if split == "test":
        indices = list(range(len(rows)))
    else:
        indices = train_dev_indices(len(rows), derive_seed(seed, "imdb-dev"))[split]
    kept = [
        indices[i]
        for i in subsample_indices(len(indices), limit, derive_seed(seed, "imdb-limit", split))
    ]
    cleaned = [strip_html_breaks(rows[i][3]).strip() for i in kept]
    origin = f"{path} (split={split}, seed={seed}" + (
        f", limit={limit})" if limit is not None else ")"
    )
    return TextDataset(
        texts=[tokenize_raw(text) for text in cleaned],
        labels=[rows[i][1] for i in kept],
        label_names=IMDB_LABEL_NAMES,
        origin=origin,
        raw=cleaned,
        name="imdb",
        split=split,
        extra={"id": [rows[i][0] for i in kept], "rating": [rows[i][2] for i in kept]},
    )
