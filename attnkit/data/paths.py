"""Where the real data lives: the data directory and the check that needed files exist."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from attnkit.data.errors import DATA_DIR_ENV, DatasetNotFoundError


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """Return the data directory: the explicit argument, else ``$ATTNKIT_DATA_DIR``, else None.

    An empty environment variable counts as unset. The directory is not required to exist;
    readers report missing files themselves (with the fix) when they look inside it.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return None


def require_files(
    dataset: str,
    data_dir: str | Path | None,
    relative_paths: Sequence[str],
    fetch_name: str,
) -> list[Path]:
    """Resolve ``relative_paths`` under the data directory and check they all exist.

    Raises:
        DatasetNotFoundError: listing every missing file (or saying no data directory is set),
            so one error tells the user everything that is missing.
    """
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DatasetNotFoundError(dataset, [], fetch_name)
    paths = [root / rel for rel in relative_paths]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(dataset, missing, fetch_name, data_dir=root)
    return paths
