"""Download one URL to a file: to a ``*.part`` next to the target, verify sha256, rename."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from attnkit.data.errors import ChecksumError, DownloadError

_CHUNK = 1 << 16
DOWNLOAD_TIMEOUT_S = 60.0


def with_base_url(url: str, base_url: str | None) -> str:
    """Replace scheme and host of ``url`` by ``base_url`` (a mirror or a test server), keeping the path."""
    if not base_url:
        return url
    return base_url.rstrip("/") + urlsplit(url).path


def download_to_part(
    url: str, folder: Path, name: str, *, progress: bool, timeout: float = DOWNLOAD_TIMEOUT_S
) -> tuple[Path, str]:
    """Stream ``url`` into a new ``<name>.*.part`` file in ``folder``; return it and its sha256.

    The part file is removed if anything goes wrong (HTTP error, network error, interrupt).

    Raises:
        DownloadError: HTTP status error or network failure, naming the URL.
    """
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, part_name = tempfile.mkstemp(dir=folder, prefix=f"{name}.", suffix=".part")
    part = Path(part_name)
    digest = hashlib.sha256()
    try:
        with (
            os.fdopen(descriptor, "wb") as sink,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=name, disable=not progress, leave=False
            ) as bar:
                while chunk := response.read(_CHUNK):
                    sink.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"downloading {url} failed: HTTP {error.code} {error.reason}. Check the URL (or the base_url mirror), or fetch later."
        ) from error
    except (urllib.error.URLError, OSError) as error:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"downloading {url} failed: {error}. Check the network connection, or fetch from a mirror with base_url=."
        ) from error
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return part, digest.hexdigest()


def install_verified(
    part: Path, target: Path, expected_sha256: str, actual_sha256: str, url: str = ""
) -> Path:
    """Atomically move ``part`` to ``target`` if the digest matches, else delete it and raise.

    Raises:
        ChecksumError: digest mismatch; ``target`` (if it already existed) is left untouched.
    """
    if actual_sha256 != expected_sha256:
        part.unlink(missing_ok=True)
        raise ChecksumError(target, expected_sha256, actual_sha256, url)
    os.replace(part, target)  # atomic on one filesystem: readers never see a half-written file
    return target


def download_verified(
    url: str, target: Path, expected_sha256: str, *, progress: bool = True
) -> Path:
    """Download ``url`` to ``target`` only if its sha256 is ``expected_sha256``."""
    part, actual = download_to_part(url, target.parent, target.name, progress=progress)
    return install_verified(part, target, expected_sha256, actual, url)
