"""Run every paper notebook with papermill and build a self-contained HTML report.

`run_report(profile="quick")` executes each notebook in `notebooks/`, writes the executed
`.ipynb` and an offline HTML page per notebook, then `index.html` (one row per notebook, then the
reproduction scorecard) and `scorecard.json`. The report is built in a temporary folder next to
the target and swapped in at the end, so an interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from attnkit.record import CLAIM_MIME, DATA_MIME
from attnkit.report_html import render_index, render_notebook_html

PROFILES = ("smoke", "quick", "full")
CLAIM_KEYS = ("id", "claim", "paper_value", "ours", "holds", "rule", "source")


class ReportError(ValueError):
    """A report that cannot be started as asked; the message names the fix."""


@dataclass
class NotebookResult:
    """What one notebook run produced."""

    name: str
    status: str  # "ok" | "failed"
    seconds: float
    profile: str
    seed: int
    paper: str = ""
    title: str = ""
    data: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    html: str = ""
    ipynb: str = ""
    carried_over: bool = False


def default_notebooks_dir() -> Path:
    """`./notebooks` when it exists, else the `notebooks/` folder beside the package source."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"


def find_notebooks(notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The notebooks to run, in name order; `only` selects by name (file stem)."""
    if not notebooks_dir.is_dir():
        raise ReportError(
            f"notebook folder {notebooks_dir} does not exist; run from the repository root or "
            "pass --notebooks DIR."
        )
    available = {p.stem: p for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not available:
        raise ReportError(f"no notebooks (*.ipynb) in {notebooks_dir}.")
    if not only:
        return list(available.values())
    unknown = [name for name in only if name.removesuffix(".ipynb") not in available]
    if unknown:
        raise ReportError(
            f"unknown notebook name(s) in --only: {', '.join(unknown)}. "
            f"Available: {', '.join(available)}."
        )
    return [available[name.removesuffix(".ipynb")] for name in only]


def check_parameters_cell(path: Path) -> None:
    """Every notebook needs one code cell tagged `parameters`, where papermill injects values."""
    notebook = nbformat.read(path, as_version=4)
    tagged = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        raise ReportError(
            f"{path.name} has no cell tagged 'parameters'. Add the tag to the cell that sets "
            "profile, seed, data_dir, device and out_dir (JupyterLab: Property Inspector → Cell "
            "tags), so the report can pass its settings in."
        )


def _check_writable(out: Path) -> None:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(
            f"cannot create the report folder {parent}: {error.strerror}. Pass a writable --out."
        ) from None
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ReportError(f"cannot write the report to {out}: permission denied. Pass --out DIR.")
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder; pass a folder path.")
    # The finished report replaces `out` wholesale, so `out` must be a folder an earlier run
    # wrote (it has results.json) or an empty one: never `.`, the notebooks, or other work.
    if out.is_dir() and any(out.iterdir()) and not (out / "results.json").is_file():
        raise ReportError(
            f"--out {out} is not empty and is not an attnkit report (no results.json), and the "
            "report would replace it with everything in it. Pass a new or empty folder, e.g. "
            "--out reports/mine."
        )


def _outputs(notebook: nbformat.NotebookNode, mime: str) -> list[dict[str, Any]]:
    records = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                record = data[mime]
                records.append(json.loads(record) if isinstance(record, str) else dict(record))
    return records


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error_of(notebook: nbformat.NotebookNode | None, exc: BaseException) -> dict[str, Any]:
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


def _validate_claims(claims: list[dict[str, Any]], name: str) -> None:
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


def run_notebook(
    path: Path,
    build_dir: Path,
    *,
    profile: str,
    seed: int,
    data_dir: str | None,
    device: str,
    require_data: bool,
    progress: bool = True,
) -> NotebookResult:
    """Execute one notebook into `build_dir` and convert it to HTML; never raises on failure."""
    import papermill

    name = path.stem
    files_dir = build_dir / f"{name}_files"
    files_dir.mkdir(parents=True, exist_ok=True)
    executed = build_dir / f"{name}.ipynb"
    parameters = {
        "profile": profile,
        "seed": seed,
        "data_dir": data_dir,
        "device": device,
        "out_dir": str(files_dir),
        "require_data": require_data,
    }
    start = time.perf_counter()
    error: dict[str, Any] | None = None
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            language="python",  # notebooks whose metadata lacks a language still run
            progress_bar=progress,
            cwd=str(path.parent),
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the runner
        error = _error_of(nbformat.read(executed, 4) if executed.exists() else None, exc)
    seconds = time.perf_counter() - start

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
    )
    if notebook is not None:
        result.data = _outputs(notebook, DATA_MIME)
        result.claims = _outputs(notebook, CLAIM_MIME)
        try:
            _validate_claims(result.claims, name)
        except ReportError as exc:
            result.status, result.error = "failed", _error_of(None, exc)
        html_path = build_dir / f"{name}.html"
        html_path.write_text(render_notebook_html(notebook, title=result.title), encoding="utf-8")
        result.html = html_path.name
    if not any(files_dir.iterdir()):
        files_dir.rmdir()
    return result


def scorecard_rows(results: list[NotebookResult]) -> list[dict[str, Any]]:
    """Flatten the claims of every notebook into the rows of `scorecard.json`."""
    rows = []
    for result in results:
        for record in result.claims:
            rows.append(
                {
                    "notebook": result.name,
                    "paper": result.paper,
                    "id": record["id"],
                    "claim": record["claim"],
                    "paper_value": record["paper_value"],
                    "ours": record["ours"],
                    "holds": bool(record["holds"]),
                    "rule": record["rule"],
                    "source": record["source"],
                    "profile": result.profile,
                    "seed": result.seed,
                }
            )
    return rows


def compare_scorecards(first: str | os.PathLike, second: str | os.PathLike) -> list[str]:
    """How two reports' scorecards differ; [] when the same seed gave the same scorecard.

    Claims recorded with `timing=True` (wall-clock speed ratios) are compared on everything
    but `ours` and `holds`, which no two runs share. Both folders need `scorecard.json` and
    `results.json` as `run_report` writes them.
    """
    rows, timed = [], set()
    for folder in (Path(first), Path(second)):
        try:
            rows.append(json.loads((folder / "scorecard.json").read_text()))
            saved = json.loads((folder / "results.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReportError(
                f"cannot read the scorecard in {folder}: {error}. Point at a folder written by "
                "`attnkit report`."
            ) from None
        for entry in saved.get("notebooks", []):
            timed |= {(entry["name"], c["id"]) for c in entry.get("claims", []) if c.get("timing")}

    def keyed(table: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for row in table:
            key = (row["notebook"], row["id"])
            out[key] = {
                k: v for k, v in row.items() if key not in timed or k not in ("ours", "holds")
            }
        return out

    a, b = keyed(rows[0]), keyed(rows[1])
    differences = [f"{n}/{i}: only in {first}" for n, i in a.keys() - b.keys()]
    differences += [f"{n}/{i}: only in {second}" for n, i in b.keys() - a.keys()]
    for key in sorted(a.keys() & b.keys()):
        for field_name in a[key]:
            if a[key][field_name] != b[key].get(field_name):
                differences.append(
                    f"{key[0]}/{key[1]} {field_name}: {a[key][field_name]!r} != "
                    f"{b[key].get(field_name)!r}"
                )
    return differences


def _carry_over(
    previous: Path, build_dir: Path, profile: str, rerun: set[str]
) -> list[NotebookResult]:
    """Keep the previous report's results for notebooks that `--only` did not re-run."""
    results_file = previous / "results.json"
    if not results_file.is_file():
        return []
    try:
        saved = json.loads(results_file.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    kept = []
    for entry in saved.get("notebooks", []):
        if entry["name"] in rerun or entry.get("profile") != profile:
            continue
        for file_name in (entry.get("html"), entry.get("ipynb")):
            if file_name and (previous / file_name).is_file():
                shutil.copy2(previous / file_name, build_dir / file_name)
        if (previous / f"{entry['name']}_files").is_dir():
            shutil.copytree(
                previous / f"{entry['name']}_files", build_dir / f"{entry['name']}_files"
            )
        entry["carried_over"] = True
        kept.append(NotebookResult(**entry))
    return kept


def run_report(
    profile: str = "quick",
    *,
    only: list[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    require_data: bool = False,
    progress: bool = True,
) -> list[NotebookResult]:
    """Execute the notebooks and write the report; returns one result per notebook.

    The report lands in `out` (default `reports/<profile>`) only when every notebook has been
    run: it is built in a temporary sibling folder and swapped in at the end.
    """
    if profile not in PROFILES:
        raise ReportError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    notebooks = find_notebooks(
        Path(notebooks_dir) if notebooks_dir else default_notebooks_dir(), only
    )
    for path in notebooks:
        check_parameters_cell(path)
    if data_dir is None:
        data_dir = os.environ.get("ATTNKIT_DATA_DIR") or None
    if data_dir is not None:
        data_dir = str(Path(data_dir).resolve())
        if require_data and not Path(data_dir).is_dir():
            raise ReportError(
                f"data directory {data_dir} does not exist (--require-data is set). Point "
                "--data-dir at the datasets, or fetch them with `attnkit data fetch NAME`."
            )
    out_dir = Path(out) if out else Path("reports") / profile
    out_dir = out_dir.resolve()
    _check_writable(out_dir)
    notebooks_folder = notebooks[0].parent.resolve()
    if notebooks_folder == out_dir or out_dir in notebooks_folder.parents:
        raise ReportError(
            f"--out {out_dir} holds the notebooks ({notebooks_folder}); the report would replace "
            "them. Pass a folder outside it, e.g. --out reports/mine."
        )

    build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        results = []
        total_start = time.perf_counter()
        for index, path in enumerate(notebooks, 1):
            print(f"[{index}/{len(notebooks)}] {path.stem} ({profile}) ...", flush=True)
            result = run_notebook(
                path,
                build_dir,
                profile=profile,
                seed=seed,
                data_dir=data_dir,
                device=device,
                require_data=require_data,
                progress=progress,
            )
            results.append(result)
            status = "ok" if result.status == "ok" else f"FAILED ({result.error['ename']})"
            print(
                f"[{index}/{len(notebooks)}] {path.stem}: {status} in {result.seconds:.1f} s "
                f"(elapsed {time.perf_counter() - total_start:.1f} s)",
                flush=True,
            )
        if only and out_dir.is_dir():
            results += _carry_over(out_dir, build_dir, profile, {r.name for r in results})
            results.sort(key=lambda r: r.name)
        rows = scorecard_rows(results)
        (build_dir / "scorecard.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))
        (build_dir / "results.json").write_text(
            json.dumps(
                {"profile": profile, "seed": seed, "notebooks": [asdict(r) for r in results]},
                indent=1,
                ensure_ascii=False,
            )
        )
        (build_dir / "index.html").write_text(
            render_index(results, rows, profile=profile, seed=seed), encoding="utf-8"
        )
        _swap_in(build_dir, out_dir)
    finally:
        if build_dir.exists():
            shutil.rmtree(build_dir, ignore_errors=True)
    print(f"report: {out_dir / 'index.html'}", flush=True)
    return results


def _swap_in(build_dir: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `build_dir` with two renames; the old report is removed last."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    build_dir.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
