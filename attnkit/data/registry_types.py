"""Record types of the dataset registry (what files a dataset has and where they come from)."""

from __future__ import annotations

from dataclasses import dataclass

RAW_GITHUB = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        target: path relative to the data directory (the layout of shared/data).
        url: original public URL (a raw GitHub URL pinned to a commit, where there is one).
        sha256: full hex digest the downloaded/built file must have.
        size: expected size in bytes (informational; the digest is what is checked).
        repo: ``owner/name`` of the GitHub source, or "" when not from GitHub.
        commit: the pinned commit of ``repo``.
    """

    target: str
    url: str
    sha256: str
    size: int
    repo: str = ""
    commit: str = ""

    @property
    def source(self) -> str:
        """``repo@commit:path`` for GitHub files, else the URL."""
        if not self.repo:
            return self.url
        path_in_repo = self.url.split(f"/{self.commit}/", 1)[-1]
        return f"{self.repo}@{self.commit[:12]}:{path_in_repo}"


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset in the registry.

    Attributes:
        name: registry name (also the folder under the data directory).
        files: the files ``fetch`` provides.
        licence: licence / terms as stated by the source (or "none stated").
        note: what the files are.
        archive_url: for datasets built from an archive (IMDB): the archive to download.
        needs_manual: True when ``fetch`` cannot download the files itself.
        homepage: the original source, for a dataset known to the kit but not provided
            (no ``files``: ``attnkit data list`` shows it as absent, with this source).
    """

    name: str
    files: tuple[RemoteFile, ...]
    licence: str
    note: str
    archive_url: str = ""
    needs_manual: bool = False
    homepage: str = ""


def github_file(
    repo: str, commit: str, path_in_repo: str, target: str, size: int, sha256: str
) -> RemoteFile:
    """A file taken byte-for-byte from ``repo`` at ``commit``, via raw.githubusercontent.com."""
    return RemoteFile(
        target=target,
        url=f"{RAW_GITHUB}/{repo}/{commit}/{path_in_repo}",
        sha256=sha256,
        size=size,
        repo=repo,
        commit=commit,
    )
