"""sha256 of files, with an in-process cache keyed by path, size and modification time."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns) -> hex digest; a changed file gets a new key, so no staleness.
_digest_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, computed in chunks (files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_file`, reusing the result while the file's size and mtime are unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digest_cache:
        _digest_cache[key] = sha256_file(path)
    return _digest_cache[key]


def file_status(path: Path, expected_sha256: str) -> str:
    """``"missing"``, ``"present"`` (digest matches) or ``"corrupt"`` (digest differs)."""
    if not path.is_file():
        return "missing"
    return "present" if cached_sha256(path) == expected_sha256 else "corrupt"
