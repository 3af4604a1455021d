"""``attnkit data fetch`` / ``attnkit data list``: checksummed downloads and a status table.

``fetch`` downloads each registered file from its original public URL (or ``base_url``, a
mirror with the same paths), verifies its sha256 and moves it into place atomically. IMDB is
the exception: its two csv.gz files are built from the Stanford ``aclImdb_v1.tar.gz`` archive
(see :mod:`attnkit.data.imdb_build`) and the *built* files are verified against the registry
(the archive itself has no pinned digest here).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnkit.data.checksums import cached_sha256, file_status, sha256_file
from attnkit.data.download import (
    download_to_part,
    download_verified,
    install_verified,
    with_base_url,
)
from attnkit.data.imdb_build import collect_reviews, write_imdb_csv_gz
from attnkit.data.paths import resolve_data_dir
from attnkit.data.registry import REGISTRY
from attnkit.data.registry_types import DatasetEntry, RemoteFile

__all__ = ["REGISTRY", "fetch", "format_dataset_table", "list_datasets"]


def _entry(name: str, registry: Mapping[str, DatasetEntry]) -> DatasetEntry:
    if name not in registry:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(registry))}. Pass one "
            "of these names (`attnkit data list --data-dir DIR` shows each one's files)."
        )
    return registry[name]


def _data_root(data_dir: str | Path | None) -> Path:
    root = resolve_data_dir(data_dir)
    if root is None:
        raise ValueError("no data directory: pass data_dir (--data-dir) or set ATTNKIT_DATA_DIR")
    return root


def _is_current(path: Path, remote: RemoteFile) -> bool:
    return path.is_file() and cached_sha256(path) == remote.sha256


def _build_from_archive(
    entry: DatasetEntry, root: Path, pending: list[RemoteFile], base_url: str | None, progress: bool
) -> None:
    """Download the archive to a temporary file, build the pending files, verify and install them."""
    url = with_base_url(entry.archive_url, base_url)
    folder = root / entry.name
    archive, _ = download_to_part(url, folder, Path(entry.archive_url).name, progress=progress)
    try:
        reviews = collect_reviews(archive)
        for remote in pending:
            target = root / remote.target
            split = Path(remote.target).name.split(".")[0]
            with tempfile.NamedTemporaryFile(
                dir=folder, prefix=f"{target.name}.", suffix=".part", delete=False
            ) as handle:
                part = Path(handle.name)
            try:
                write_imdb_csv_gz(reviews, split, part)
                install_verified(part, target, remote.sha256, sha256_file(part), f"{url} (built)")
            finally:
                part.unlink(missing_ok=True)
    finally:
        archive.unlink(missing_ok=True)


def fetch(
    name: str,
    data_dir: str | Path | None = None,
    *,
    base_url: str | None = None,
    force: bool = False,
    progress: bool = True,
    registry: Mapping[str, DatasetEntry] | None = None,
) -> list[Path]:
    """Download (or build) the files of dataset ``name`` into the data directory.

    Files already present with the right sha256 are skipped unless ``force``.

    Args:
        base_url: replaces scheme+host of every URL (mirror or local test server).
        registry: dataset registry to use (default :data:`REGISTRY`); injectable for tests.

    Returns:
        The paths of all the dataset's files (downloaded or already present).

    Raises:
        ValueError: unknown dataset (the message lists the known ones) or no data directory.
        ChecksumError: a download does not match its digest; nothing at the target is changed.
        DownloadError: HTTP or network failure.
    """
    entry = _entry(name, REGISTRY if registry is None else registry)
    root = _data_root(data_dir)
    if entry.needs_manual:
        raise RuntimeError(f"dataset {name!r} cannot be fetched automatically: {entry.note}")
    pending = [f for f in entry.files if force or not _is_current(root / f.target, f)]
    if entry.archive_url:
        if pending:
            _build_from_archive(entry, root, pending, base_url, progress)
    else:
        for remote in pending:
            download_verified(
                with_base_url(remote.url, base_url),
                root / remote.target,
                remote.sha256,
                progress=progress,
            )
    return [root / f.target for f in entry.files]


def list_datasets(
    data_dir: str | Path | None = None, *, registry: Mapping[str, DatasetEntry] | None = None
) -> list[dict[str, Any]]:
    """Status of every registered dataset in the data directory.

    Each row: ``name``, ``status`` (``present``, ``missing``, ``partial`` or ``corrupt``),
    ``files`` (per file: ``target``, ``path``, ``status``, ``source``, ``url``, ``sha256``),
    ``sources`` (distinct ``repo@commit`` or URLs), ``licence`` and ``note``. With no data
    directory every file is ``missing``. A dataset the kit knows but cannot provide (no files,
    e.g. EEV) is ``absent``, with its original source in ``sources``.
    """
    root = resolve_data_dir(data_dir)
    rows: list[dict[str, Any]] = []
    for entry in (REGISTRY if registry is None else registry).values():
        files = []
        for remote in entry.files:
            path = root / remote.target if root is not None else None
            status = file_status(path, remote.sha256) if path is not None else "missing"
            files.append(
                {
                    "target": remote.target,
                    "path": str(path) if path else None,
                    "status": status,
                    "source": remote.source,
                    "url": remote.url,
                    "sha256": remote.sha256,
                }
            )
        statuses = {f["status"] for f in files}
        overall = (
            "absent"  # known to the kit, not provided: only its original source is given
            if not entry.files
            else "corrupt"
            if "corrupt" in statuses
            else statuses.pop()
            if len(statuses) == 1
            else "partial"
        )
        sources = sorted({f"{r.repo}@{r.commit[:12]}" if r.repo else r.url for r in entry.files})
        if not entry.files and entry.homepage:
            sources = [entry.homepage]
        rows.append(
            {
                "name": entry.name,
                "status": overall,
                "files": files,
                "sources": sources,
                "licence": entry.licence,
                "note": entry.note,
            }
        )
    return rows


def format_dataset_table(rows: list[dict[str, Any]]) -> str:
    """Render :func:`list_datasets` rows as a plain-text table, then any file not present."""
    header = ("dataset", "status", "files", "source", "licence")
    table = [header] + [
        (
            r["name"],
            r["status"],
            f"{sum(f['status'] == 'present' for f in r['files'])}/{len(r['files'])}",
            ", ".join(r["sources"]),
            r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)), line[-1]]
        ).rstrip()
        for line in table
    ]
    problems = [
        f"  {f['status']:8} {f['target']}  <- {f['url']}"
        for r in rows
        for f in r["files"]
        if f["status"] != "present"
    ]
    if problems:
        lines += ["", "files not present (fix: attnkit data fetch NAME):", *problems]
    absent = [f"  {r['name']}: {r['note']}" for r in rows if r["status"] == "absent"]
    if absent:
        lines += ["", "known but absent (not obtainable with attnkit data fetch):", *absent]
    return "\n".join(lines)
