"""Build ``imdb/{train,test}.csv.gz`` from the Stanford ``aclImdb_v1.tar.gz`` archive.

The registry's digests are those of files built exactly this way, so a fetch can verify them:

* rows: ``id,label,rating,text`` header, then every ``aclImdb/<split>/pos/<n>_<rating>.txt``
  by increasing ``n``, then ``neg`` likewise; ``id = <split>_<pos|neg>_<n>``, label 1 = pos;
  ``text`` is the file's UTF-8 content unchanged;
* CSV: Python's csv module defaults (minimal quoting, ``\\r\\n`` line ends);
* gzip: level 9, mtime 0, original file name ``<split>.csv`` (so the bytes are reproducible).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tarfile
from pathlib import Path

IMDB_COLUMNS = ("id", "label", "rating", "text")
_REVIEW_MEMBER = re.compile(r"^aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")

# (split, polarity) -> {review number: (rating, text)}
Reviews = dict[tuple[str, str], dict[int, tuple[int, str]]]


def collect_reviews(archive: Path) -> Reviews:
    """Read every labelled review of the archive (unlabelled ``unsup`` reviews are ignored)."""
    reviews: Reviews = {(s, p): {} for s in ("train", "test") for p in ("pos", "neg")}
    # Streaming mode reads the archive once, front to back, without an index.
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            match = _REVIEW_MEMBER.match(member.name)
            if match is None or not member.isfile():
                continue
            split, polarity, number, rating = match.groups()
            handle = tar.extractfile(member)
            if handle is None:
                continue
            reviews[(split, polarity)][int(number)] = (int(rating), handle.read().decode("utf-8"))
    return reviews


def write_imdb_csv_gz(reviews: Reviews, split: str, destination: Path) -> None:
    """Write one split as a reproducible csv.gz (see the module docstring for the exact format)."""
    with open(destination, "wb") as raw:
        with gzip.GzipFile(
            filename=f"{split}.csv", mode="wb", fileobj=raw, compresslevel=9, mtime=0
        ) as compressed:
            with io.TextIOWrapper(compressed, encoding="utf-8", newline="") as text:
                writer = csv.writer(text)
                writer.writerow(IMDB_COLUMNS)
                for polarity, label in (("pos", 1), ("neg", 0)):
                    for number, (rating, review) in sorted(reviews[(split, polarity)].items()):
                        writer.writerow([f"{split}_{polarity}_{number}", label, rating, review])
