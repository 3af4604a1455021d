"""Low-level file reading that turns decoding/truncation problems into DatasetFormatError."""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from attnkit.data.errors import DatasetFormatError

# gzip signals a file cut short with EOFError, a corrupt stream with BadGzipFile/zlib.error.
_STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def read_lines(path: Path) -> list[str]:
    """Read a UTF-8 text file as a list of lines without their line endings.

    A final newline does not produce an extra empty line; blank lines inside the file are kept
    so that line numbers (and line-aligned companion files) stay in step.
    """
    lines: list[str] = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line in handle:
                lines.append(line.rstrip("\r\n"))
    except UnicodeDecodeError as error:
        raise DatasetFormatError(
            path, len(lines) + 1, "UTF-8 text", f"undecodable bytes ({error.reason})"
        ) from error
    return lines


def read_line_aligned(text_path: Path, gold_path: Path) -> tuple[list[str], list[str]]:
    """The lines of a text file and of its line-aligned gold file (line i annotates line i).

    Raises:
        DatasetFormatError: the two files have different numbers of lines (names the gold file
            and the first line that has no partner).
    """
    texts, golds = read_lines(text_path), read_lines(gold_path)
    if len(texts) != len(golds):
        raise DatasetFormatError(
            gold_path,
            min(len(texts), len(golds)) + 1,
            f"as many lines as {text_path.name} ({len(texts)})",
            f"{len(golds)} lines",
        )
    return texts, golds


def _open_text(path: Path) -> IO[str]:
    """Open ``path`` for text reading, transparently decompressing ``*.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_csv_rows(path: Path, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, row)`` for each CSV record of ``path`` (``.gz`` allowed).

    The line number is the physical line where the record ends (records may span lines).

    Raises:
        DatasetFormatError: on a truncated/corrupt gzip stream, undecodable text or
            malformed CSV (e.g. an unterminated quote), naming the line reached.
    """
    handle = _open_text(path)
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        with handle:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                yield reader.line_num, row
    except _STREAM_ERRORS as error:
        raise DatasetFormatError(
            path, reader.line_num + 1, "a complete gzip stream", f"{type(error).__name__}: {error}"
        ) from error
    except UnicodeDecodeError as error:
        raise DatasetFormatError(
            path, reader.line_num + 1, "UTF-8 text", f"undecodable bytes ({error.reason})"
        ) from error
    except csv.Error as error:
        raise DatasetFormatError(path, reader.line_num, "well-formed CSV", str(error)) from error
    except OSError as error:
        # e.g. "Not a gzipped file" raised before any row is read.
        raise DatasetFormatError(
            path, reader.line_num + 1, "a readable gzip/CSV file", str(error)
        ) from error


def parse_int(path: Path, line: int, value: str, what: str) -> int:
    """Parse ``value`` as an int or raise DatasetFormatError saying which field was wrong."""
    try:
        return int(value)
    except ValueError:
        raise DatasetFormatError(path, line, f"an integer {what}", repr(value)) from None
