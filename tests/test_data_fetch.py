"""fetch / list_datasets against a local HTTP server on 127.0.0.1, plus registry consistency."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from attnkit.data import (
    REGISTRY,
    ChecksumError,
    DownloadError,
    format_dataset_table,
    list_datasets,
    read_imdb,
)
from attnkit.data.fetch import fetch
from attnkit.data.imdb_build import collect_reviews, write_imdb_csv_gz
from attnkit.data.readers.imdb import _read_imdb_rows
from attnkit.data.registry_types import DatasetEntry, RemoteFile

REAL_DATA = Path(os.environ.get("ATTNKIT_SHARED_DATA", "/work/shared/data"))
needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "sources.json").is_file(), reason="real shared/data not available"
)
ALPHA = b"alpha file\n" * 100
BETA = bytes(range(256)) * 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _QuietRecordingHandler(SimpleHTTPRequestHandler):
    """Serves files from ``directory``, records each requested path, logs nothing."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Path, list[str]]]:
    """A ThreadingHTTPServer on 127.0.0.1 (random port): (base URL, served folder, request log)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_QuietRecordingHandler,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served)))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def serve(served: Path, relative: str, data: bytes) -> None:
    path = served / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def toy_registry(alpha_sha: str = sha256(ALPHA)) -> dict[str, DatasetEntry]:
    """A registry whose URLs point at a host the tests replace with base_url."""
    files = (
        RemoteFile(
            "toy/alpha.txt", "https://example.invalid/mirror/alpha.txt", alpha_sha, len(ALPHA)
        ),
        RemoteFile(
            "toy/sub/beta.bin", "https://example.invalid/mirror/beta.bin", sha256(BETA), len(BETA)
        ),
    )
    return {"toy": DatasetEntry(name="toy", files=files, licence="test licence", note="toy files")}


def part_files(root: Path) -> list[Path]:
    return list(root.rglob("*.part"))


def test_fetch_downloads_verifies_and_skips_present(server, tmp_path):
    base_url, served, requests = server
    serve(served, "mirror/alpha.txt", ALPHA)
    serve(served, "mirror/beta.bin", BETA)
    data_dir = tmp_path / "data"
    paths = fetch("toy", data_dir, base_url=base_url, progress=False, registry=toy_registry())
    assert paths == [data_dir / "toy/alpha.txt", data_dir / "toy/sub/beta.bin"]
    assert paths[0].read_bytes() == ALPHA and paths[1].read_bytes() == BETA
    assert requests == ["/mirror/alpha.txt", "/mirror/beta.bin"] and part_files(data_dir) == []
    # Present with the right checksum: no download at all.
    assert (
        fetch("toy", data_dir, base_url=base_url, progress=False, registry=toy_registry()) == paths
    )
    assert len(requests) == 2
    # A corrupt local file is replaced; force re-downloads everything.
    paths[1].write_bytes(b"garbage")
    fetch("toy", data_dir, base_url=base_url, progress=False, registry=toy_registry())
    assert paths[1].read_bytes() == BETA and requests[2:] == ["/mirror/beta.bin"]
    fetch("toy", data_dir, base_url=base_url, force=True, progress=False, registry=toy_registry())
    assert len(requests) == 5


def test_checksum_mismatch_keeps_existing_file_and_leaves_no_part(server, tmp_path):
    base_url, served, _ = server
    serve(served, "mirror/alpha.txt", ALPHA + b"tampered")
    data_dir = tmp_path / "data"
    target = data_dir / "toy" / "alpha.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"previous content")
    before = target.stat().st_mtime_ns
    with pytest.raises(ChecksumError) as caught:
        fetch("toy", data_dir, base_url=base_url, progress=False, registry=toy_registry())
    message = str(caught.value)
    assert str(target) in message and sha256(ALPHA) in message
    assert sha256(ALPHA + b"tampered") in message and "retry" in message
    assert target.read_bytes() == b"previous content" and target.stat().st_mtime_ns == before
    assert part_files(data_dir) == []


def test_http_404_is_a_clear_error(server, tmp_path):
    base_url, _, _ = server
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"HTTP 404") as caught:
        fetch("toy", data_dir, base_url=base_url, progress=False, registry=toy_registry())
    assert f"{base_url}/mirror/alpha.txt" in str(caught.value)
    assert not (data_dir / "toy" / "alpha.txt").exists() and part_files(data_dir) == []


def test_package_exposes_fetch_module_for_the_cli():
    from attnkit.data import fetch as fetch_module

    assert fetch_module.fetch is fetch and callable(fetch_module.list_datasets)


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(ValueError, match="known datasets: .*agreement.*imdb.*sst"):
        fetch("nope", tmp_path)


def test_fetch_needs_a_data_dir(monkeypatch):
    monkeypatch.delenv("ATTNKIT_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="ATTNKIT_DATA_DIR"):
        fetch("toy", None, registry=toy_registry())


def test_list_datasets_reports_present_missing_corrupt(tmp_path):
    registry = toy_registry()
    rows = list_datasets(tmp_path, registry=registry)
    assert rows[0]["status"] == "missing" and rows[0]["licence"] == "test licence"
    (tmp_path / "toy" / "sub").mkdir(parents=True)
    (tmp_path / "toy" / "alpha.txt").write_bytes(ALPHA)
    rows = list_datasets(tmp_path, registry=registry)
    assert rows[0]["status"] == "partial"
    assert [f["status"] for f in rows[0]["files"]] == ["present", "missing"]
    (tmp_path / "toy" / "sub" / "beta.bin").write_bytes(BETA[:-1])
    row = list_datasets(tmp_path, registry=registry)[0]
    assert row["status"] == "corrupt" and row["files"][1]["status"] == "corrupt"
    table = format_dataset_table([row])
    assert "toy" in table and "corrupt" in table and "1/2" in table and "toy/sub/beta.bin" in table


def fake_acl_imdb() -> bytes:
    """A tiny aclImdb-style tar.gz: labelled reviews in random member order, plus unsup noise."""
    members = {
        "aclImdb/train/neg/10_2.txt": "Bad.<br />Very bad.",
        "aclImdb/train/pos/2_9.txt": 'Great "fun", really.',
        "aclImdb/train/pos/0_10.txt": "Loved it",
        "aclImdb/test/neg/0_1.txt": "Awful\nending",
        "aclImdb/test/pos/0_8.txt": "Nice",
        "aclImdb/train/unsup/0_0.txt": "unlabelled",
        "aclImdb/README": "readme",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_imdb_builds_csv_from_archive(server, tmp_path):
    base_url, served, requests = server
    archive = fake_acl_imdb()
    serve(served, "~amaas/data/sentiment/aclImdb_v1.tar.gz", archive)
    # The expected digests are those of the builder's own output (format checked by reading back
    # below, and against the real files in the slow test).
    (tmp_path / "a.tar.gz").write_bytes(archive)
    reviews = collect_reviews(tmp_path / "a.tar.gz")
    digests = {}
    for split in ("train", "test"):
        write_imdb_csv_gz(reviews, split, tmp_path / f"{split}.csv.gz")
        digests[split] = sha256((tmp_path / f"{split}.csv.gz").read_bytes())
    entry = REGISTRY["imdb"]
    files = tuple(
        RemoteFile(f.target, f.url, digests[Path(f.target).name.split(".")[0]], 0)
        for f in entry.files
    )
    registry = {
        "imdb": DatasetEntry(
            "imdb", files, entry.licence, entry.note, archive_url=entry.archive_url
        )
    }
    data_dir = tmp_path / "data"
    fetch("imdb", data_dir, base_url=base_url, progress=False, registry=registry)
    assert requests == ["/~amaas/data/sentiment/aclImdb_v1.tar.gz"]
    assert sorted(p.name for p in (data_dir / "imdb").iterdir()) == ["test.csv.gz", "train.csv.gz"]
    rows = _read_imdb_rows(data_dir / "imdb" / "train.csv.gz")
    assert rows == [
        ("train_pos_0", 1, 10, "Loved it"),
        ("train_pos_2", 1, 9, 'Great "fun", really.'),
        ("train_neg_10", 0, 2, "Bad.<br />Very bad."),
    ]
    assert read_imdb(data_dir, "test").raw == ["Nice", "Awful\nending"]
    # Already built: nothing downloaded again.
    fetch("imdb", data_dir, base_url=base_url, progress=False, registry=registry)
    assert len(requests) == 1


@needs_real_data
def test_registry_matches_sources_json():
    sources = {s["file"]: s for s in json.loads((REAL_DATA / "sources.json").read_text())}
    registered = {f.target: f for entry in REGISTRY.values() for f in entry.files}
    assert registered.keys() == sources.keys()
    for target, remote in registered.items():
        source = sources[target]
        assert remote.sha256 == source["sha256"] and remote.size == source["bytes"]
        if source["dataset"] != "imdb":
            expected = f"https://raw.githubusercontent.com/{source['repo']}/{source['commit']}/{source['path']}"
            assert remote.url == expected and target.split("/")[0] == source["dataset"]


@needs_real_data
def test_list_datasets_on_real_data_all_present():
    rows = list_datasets(REAL_DATA)
    expected = {name: "present" if e.files else "absent" for name, e in REGISTRY.items()}
    assert {r["name"]: r["status"] for r in rows} == expected
    assert (
        "neulab/awesome-align@5f150d45bbe5"
        in next(r for r in rows if r["name"] == "alignment")["sources"]
    )


@pytest.mark.slow
@needs_real_data
def test_imdb_builder_reproduces_real_files(tmp_path, request):
    """Rebuild aclImdb-style review files from the real csv.gz and check the build is byte-identical."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (about 15 s): run with -m slow")
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for split in ("train", "test"):
            with gzip.open(
                REAL_DATA / "imdb" / f"{split}.csv.gz", "rt", encoding="utf-8", newline=""
            ) as handle:
                for review_id, _, rating, text in list(csv.reader(handle))[1:]:
                    _, polarity, number = review_id.split("_")
                    data = text.encode("utf-8")
                    info = tarfile.TarInfo(f"aclImdb/{split}/{polarity}/{number}_{rating}.txt")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    reviews = collect_reviews(archive)
    for remote in REGISTRY["imdb"].files:
        split = Path(remote.target).name.split(".")[0]
        write_imdb_csv_gz(reviews, split, tmp_path / f"{split}.csv.gz")
        assert sha256((tmp_path / f"{split}.csv.gz").read_bytes()) == remote.sha256


def test_eev_is_listed_as_known_but_absent_with_its_source(tmp_path):
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert rows["eev"]["status"] == "absent"
    assert rows["eev"]["sources"] == ["https://github.com/google-research-datasets/eev"]
    table = format_dataset_table(list(rows.values()))
    assert "known but absent" in table and "eev" in table.split("known but absent")[1]
    with pytest.raises(RuntimeError, match="cannot be fetched automatically"):
        fetch("eev", tmp_path, progress=False)
