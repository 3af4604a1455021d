"""Execute one notebook (`attnkit.execution`, papermill) and turn it into an offline page: the
report's executor.

`run_notebook` never raises for a failing notebook: the error (cell, source, traceback) is part
of its result, so the other notebooks of a report still run.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import socket
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import nbformat

from attnkit.execution import execute_notebook
from attnkit.record import CLAIM_MIME, DATA_MIME
from attnkit.report.results import NotebookResult, ReportError

CLAIM_KEYS = ("id", "claim", "paper_value", "ours", "holds", "rule", "source")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PATH = re.compile(r"(/[^\s,;()+]+)")


def records(notebook: nbformat.NotebookNode, mime: str) -> list[dict[str, Any]]:
    """The JSON records a notebook's outputs carry under `mime` (claims, data used), in order."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                record = data[mime]
                found.append(json.loads(record) if isinstance(record, str) else dict(record))
    return found


def error_of(notebook: nbformat.NotebookNode | None, exc: BaseException) -> dict[str, Any]:
    """The failing cell, its source and traceback, from the executed notebook when possible."""
    if notebook is not None:
        for index, cell in enumerate(notebook.cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    return {
                        "cell": index,
                        "source": cell.source,
                        "ename": output.get("ename", ""),
                        "evalue": output.get("evalue", ""),
                        "traceback": _ANSI.sub("", "\n".join(output.get("traceback", []))),
                    }
    return {
        "cell": None,
        "source": "",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def validate_claims(claims: list[dict[str, Any]], name: str) -> None:
    """Every claim has the scorecard's keys and a source, and each id appears once."""
    seen = set()
    for record in claims:
        missing = [key for key in CLAIM_KEYS if key not in record]
        if missing:
            raise ReportError(f"{name}: claim {record.get('id')!r} lacks {missing}.")
        if not str(record["source"]).strip():
            raise ReportError(f"{name}: claim {record['id']!r} has no source.")
        if record["id"] in seen:
            raise ReportError(f"{name}: claim id {record['id']!r} is recorded twice.")
        seen.add(record["id"])


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(origin: str) -> dict[str, str]:
    """The files a data record's `origin` names, with their sha256, as seen on this host."""
    files = {}
    for candidate in _PATH.findall(origin or ""):
        path = Path(candidate)
        if path.is_file():
            stat = path.stat()
            files[str(path)] = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    return files


def run_notebook(
    path: Path,
    build_dir: Path,
    *,
    profile: str,
    seed: int,
    data_dir: str | None,
    device: str,
    require_data: bool,
    stem: str | None = None,
    progress: bool = True,
) -> NotebookResult:
    """Execute `path` into `build_dir/<stem>.ipynb` and render `<stem>.html`; never raises.

    `stem` (default: the notebook's name) names the outputs, so several seeds of one notebook
    can share a folder; figures go to `<stem>_files/`.
    """
    name = path.stem
    stem = stem or name
    files_dir = build_dir / f"{stem}_files"
    files_dir.mkdir(parents=True, exist_ok=True)
    executed = build_dir / f"{stem}.ipynb"
    parameters = {
        "profile": profile,
        "seed": seed,
        "data_dir": data_dir,
        "device": device,
        "out_dir": str(files_dir),
        "require_data": require_data,
    }
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    error: dict[str, Any] | None = None
    try:
        execute_notebook(
            path, executed, parameters, cwd=path.parent, allow_errors=False, progress=progress
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the runner
        error = error_of(nbformat.read(executed, 4) if executed.exists() else None, exc)
    seconds = time.perf_counter() - start

    from attnkit.report.pages import render_notebook_html

    notebook = nbformat.read(executed, as_version=4) if executed.exists() else None
    meta = notebook.metadata.get("attnkit", {}) if notebook is not None else {}
    result = NotebookResult(
        name=name,
        status="failed" if error else "ok",
        seconds=seconds,
        profile=profile,
        seed=seed,
        paper=meta.get("paper", ""),
        title=meta.get("title", name),
        error=error,
        ipynb=executed.name if notebook is not None else "",
        host=socket.gethostname(),
        started=started,
    )
    if notebook is not None:
        result.data = [
            {**record, "files": data_files(record.get("origin", ""))}
            for record in records(notebook, DATA_MIME)
        ]
        result.claims = records(notebook, CLAIM_MIME)
        try:
            validate_claims(result.claims, name)
        except ReportError as exc:
            result.status, result.error = "failed", error_of(None, exc)
        html_path = build_dir / f"{stem}.html"
        html_path.write_text(render_notebook_html(notebook, title=result.title), encoding="utf-8")
        result.html = html_path.name
    if any(files_dir.iterdir()):
        result.files = files_dir.name
    else:
        files_dir.rmdir()
    return result
