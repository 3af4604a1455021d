"""Exceptions raised by :mod:`attnkit.data`.

Each error message names the file involved and says how to fix the problem, because the
person reading it is usually running a notebook, not reading this code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnkit.errors import AttnkitError

DATA_DIR_ENV = "ATTNKIT_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file (or the data directory itself) is missing.

    Attributes:
        dataset: the dataset name the caller asked for (e.g. ``"sst2"``).
        missing: every expected path that does not exist (empty when no data directory is set).
        fetch_name: the registry name to pass to ``attnkit data fetch``.
    """

    def __init__(
        self,
        dataset: str,
        missing: Sequence[Path],
        fetch_name: str,
        *,
        data_dir: Path | None = None,
    ) -> None:
        self.dataset = dataset
        self.missing = [Path(p) for p in missing]
        self.fetch_name = fetch_name
        self.data_dir = data_dir
        if self.missing:
            files = ", ".join(str(p) for p in self.missing)
            what = f"expected file(s) not found: {files}"
        else:
            what = f"no data directory given (no data_dir argument and ${DATA_DIR_ENV} is unset)"
        target = f" --data-dir {data_dir}" if data_dir is not None else " --data-dir DIR"
        message = (
            f"dataset {dataset!r}: {what}. Fix: run `attnkit data fetch {fetch_name}{target}`, "
            f"or point ${DATA_DIR_ENV} (or --data-dir / data_dir=) at a folder with the "
            f"layout of shared/data."
        )
        super().__init__(message)
        # OSError keeps .filename for tools that show it; the first missing file is the useful one.
        self.filename = str(self.missing[0]) if self.missing else None

    def __str__(self) -> str:
        return str(self.args[0])


class DatasetFormatError(AttnkitError):
    """A dataset file exists but does not have the expected format (truncated, wrong columns, ...).

    Attributes:
        path: the offending file.
        line: 1-based line number where the problem was found (None when not line-specific).
        expected: what the reader expected to find there.
    """

    def __init__(self, path: Path | str, line: int | None, expected: str, found: str = "") -> None:
        self.path = Path(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        message = f"{where}: expected {expected}"
        if found:
            message += f", found {found}"
        message += (
            ". The file is truncated or not in the expected format; re-fetch it with "
            "`attnkit data fetch <dataset> --force` (`attnkit data list` shows whether its checksum is wrong)."
        )
        super().__init__(message)


class ChecksumError(AttnkitError):
    """A downloaded (or present) file does not have the sha256 recorded in the registry."""

    def __init__(self, path: Path | str, expected: str, actual: str, url: str = "") -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.url = url
        source = f" downloaded from {url}" if url else ""
        super().__init__(
            f"checksum mismatch for {self.path}{source}: expected sha256 {expected}, "
            f"got {actual}. The download was discarded (any file already at the target is "
            f"untouched). Fix: retry the fetch; if it persists the source changed or a "
            f"mirror/proxy altered the file, so get the file from the original source."
        )


class DownloadError(OSError):
    """A download failed for a reason other than the checksum (HTTP error, network error)."""


class SyntheticDataWarning(UserWarning):
    """Real data was missing, so synthetic data is used instead."""


class DataQualityWarning(UserWarning):
    """Some lines of a real dataset file were skipped (bad or undecidable lines)."""
