"""`run_report`: every notebook × seed, locally in parallel or on Dask, into one report folder.

The report is built in a temporary folder next to the target and swapped in at the end, so an
interrupted run (Ctrl-C included) leaves the previous report intact.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import nbformat

from attnkit.report.aggregate import scorecard_rows, verdicts
from attnkit.report.index import render_index
from attnkit.report.provenance import provenance
from attnkit.report.results import PROFILES, NotebookResult, ReportError
from attnkit.report.tasks import Task, run_local, task_stem


def notebook_folders() -> list[Path]:
    """Where the paper notebooks are looked for, in order: `./notebooks`, the `notebooks/`
    folder of the source checkout attnkit runs from, and `<prefix>/share/attnkit/notebooks`,
    where a wheel installs them."""
    return [
        Path.cwd() / "notebooks",
        Path(__file__).resolve().parent.parent.parent / "notebooks",
        Path(sys.prefix) / "share" / "attnkit" / "notebooks",
    ]


def default_notebooks_dir() -> Path:
    """The first of `notebook_folders()` that holds notebooks (else `./notebooks`)."""
    for folder in notebook_folders():
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    return notebook_folders()[0]


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


def check_seeds(seeds: list[int]) -> list[int]:
    """Seeds as given, each a distinct integer ≥ 0."""
    if not seeds:
        raise ReportError("--seeds needs at least one seed, e.g. --seeds 0 1 2.")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ReportError(f"seeds must be integers ≥ 0, got {bad}; e.g. --seeds 0 1 2.")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ReportError(
            f"seed(s) {repeated} given more than once in --seeds; list each seed once, e.g. "
            "--seeds 0 1 2."
        )
    return list(seeds)


def default_jobs(tasks: int) -> int:
    """As many kernels at a time as cores (each with one torch thread), at most one per task.

    Measured on a 2-core machine: the smoke report with two seeds runs about twice as fast
    with 2 jobs of 1 thread as with 1 job of 2 threads (benchmarks/bench_report.py).
    """
    return max(1, min(os.cpu_count() or 1, tasks))


def _previous(out_dir: Path) -> list[dict]:
    results_file = out_dir / "results.json"
    if not results_file.is_file():
        return []
    try:
        return json.loads(results_file.read_text()).get("notebooks", [])
    except (OSError, json.JSONDecodeError):
        return []


def _copy_outputs(entry: dict, previous: Path, build_dir: Path, stem: str) -> dict:
    """Copy a previous task's page, notebook and figures under the names `stem` gives them."""
    renamed = dict(entry)
    for key, suffix in (("html", ".html"), ("ipynb", ".ipynb"), ("files", "_files")):
        name = entry.get(key)
        if key == "files" and not name and (previous / f"{entry['name']}_files").is_dir():
            name = f"{entry['name']}_files"  # reports written before `files` was recorded
        if not name or not (previous / name).exists():
            renamed[key] = ""
            continue
        target = build_dir / f"{stem}{suffix}"
        if (previous / name).is_dir():
            shutil.copytree(previous / name, target, dirs_exist_ok=True)
        else:
            shutil.copy2(previous / name, target)
        renamed[key] = target.name
    return renamed


def run_report(
    profile: str = "quick",
    *,
    only: list[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    seeds: list[int] | None = None,
    out: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    require_data: bool = False,
    progress: bool = True,
    jobs: int | None = None,
    threads: int | None = None,
    cluster: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    rerun: bool = False,
) -> list[NotebookResult]:
    """Execute every notebook once per seed and write the report; one result per run.

    Args:
        seeds: the seeds to run (default `[seed]`, and `[0]` without either).
        jobs: notebook runs at a time on this machine (default: one per core, at most one per
            task); ignored with `cluster`.
        threads: torch/BLAS threads per run (default: cores // jobs locally, 1 on a cluster).
        cluster: a Dask scheduler address, tcp://HOST:PORT, to run the tasks on.
        cache_dir: the training cache the runs use (default: $ATTNKIT_CACHE_DIR); on a cluster
            each worker's own unless this names a path every worker shares.
        rerun: run every task even when the previous report has it with the same key.

    The report lands in `out` (default `reports/<profile>`) only when every run has finished.
    """
    if profile not in PROFILES:
        raise ReportError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    if seeds is not None and seed is not None:
        raise ReportError("pass either seed or seeds, not both (e.g. --seeds 0 1 2).")
    seeds = check_seeds(list(seeds) if seeds is not None else [0 if seed is None else seed])
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ReportError(f"--jobs must be a whole number ≥ 1, got {jobs!r}; e.g. --jobs 2.")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ReportError(f"--threads must be a whole number ≥ 1, got {threads!r}.")
    if cluster is not None:
        from attnkit.report.cluster import check_address

        check_address(cluster)
    # Absolute: papermill changes the process's working directory while a notebook runs, so
    # with --jobs > 1 a relative path breaks for the runs started meanwhile.
    notebooks = find_notebooks(
        (Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()).resolve(), only
    )
    for path in notebooks:
        check_parameters_cell(path)
    if data_dir is None:
        data_dir = os.environ.get("ATTNKIT_DATA_DIR") or None
    if data_dir is not None:
        data_dir = str(Path(data_dir).resolve()) if cluster is None else str(data_dir)
        if require_data and cluster is None and not Path(data_dir).is_dir():
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

    many = len(seeds) > 1
    tasks = [
        Task(path, s, profile, data_dir, device, require_data, task_stem(path.stem, s, many))
        for path in notebooks
        for s in seeds
    ]
    jobs = jobs or default_jobs(len(tasks))
    if threads is None:
        threads = 1 if cluster else max(1, (os.cpu_count() or 1) // jobs)
    previous = _previous(out_dir) if out_dir.is_dir() else []
    build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        results: dict[Task, NotebookResult] = {}
        finished_entries = {e.get("key"): e for e in previous if e.get("status") == "ok"}
        to_run = []
        for task in tasks:
            entry = None if rerun else finished_entries.get(task.key())
            if entry is None:
                to_run.append(task)
                continue
            kept = NotebookResult.from_dict(_copy_outputs(entry, out_dir, build_dir, task.stem))
            kept.reused, kept.carried_over = True, False
            results[task] = kept
        if len(to_run) < len(tasks):
            print(
                f"reusing {len(tasks) - len(to_run)} run(s) of the previous report whose notebook, "
                "parameters and attnkit version are unchanged (--rerun runs them again)",
                flush=True,
            )
        start = time.perf_counter()
        done = [0]
        where = (
            f"on Dask at {cluster}" if cluster else f"{jobs} at a time, {threads} thread(s) each"
        )
        if to_run:
            print(f"running {len(to_run)} notebook run(s), {where}", flush=True)

        def report_progress(task: Task, result: NotebookResult) -> None:
            done[0] += 1
            status = "ok" if result.status == "ok" else f"FAILED ({result.error['ename']})"
            print(
                f"[{done[0]}/{len(to_run)}] {task.name} seed {task.seed}: {status} in "
                f"{result.seconds:.1f} s (elapsed {time.perf_counter() - start:.1f} s)",
                flush=True,
            )

        if to_run and cluster:
            from attnkit.report.cluster import run_cluster

            ran = run_cluster(
                to_run,
                build_dir,
                address=cluster,
                threads=threads,
                cache_dir=None if cache_dir is None else str(cache_dir),
                on_done=report_progress,
            )
        elif to_run:
            ran = run_local(
                to_run,
                build_dir,
                jobs=jobs,
                threads=threads,
                cache_dir=None if cache_dir is None else str(cache_dir),
                progress=progress,
                on_done=report_progress,
            )
        else:
            ran = []
        for task, result in zip(to_run, ran, strict=True):
            result.key = task.key()
            results[task] = result
        ordered = [results[t] for t in tasks]
        if only:
            ordered += _carry_over(
                previous, out_dir, build_dir, profile, seeds, {t.name for t in tasks}, many
            )
            ordered.sort(key=lambda r: (r.name, r.seed))
        _write(build_dir, ordered, profile, seeds, jobs, threads, cluster, data_dir, device)
        _swap_in(build_dir, out_dir)
    finally:
        if build_dir.exists():
            shutil.rmtree(build_dir, ignore_errors=True)
    print(f"report: {out_dir / 'index.html'}", flush=True)
    return ordered


def _carry_over(
    previous: list[dict],
    out_dir: Path,
    build_dir: Path,
    profile: str,
    seeds: list[int],
    ran: set[str],
    many: bool,
) -> list[NotebookResult]:
    """Keep the previous report's runs of notebooks that `--only` left out (same profile and
    one of this report's seeds)."""
    kept = []
    for entry in previous:
        if (
            entry["name"] in ran
            or entry.get("profile") != profile
            or entry.get("seed") not in seeds
        ):
            continue
        stem = task_stem(entry["name"], entry["seed"], many)
        result = NotebookResult.from_dict(_copy_outputs(entry, out_dir, build_dir, stem))
        result.carried_over, result.reused = True, False
        kept.append(result)
    return kept


def _write(
    build_dir: Path,
    results: list[NotebookResult],
    profile: str,
    seeds: list[int],
    jobs: int,
    threads: int,
    cluster: str | None,
    data_dir: str | None,
    device: str,
) -> None:
    """scorecard.json, verdicts.json, provenance.json, results.json and index.html."""
    rows = scorecard_rows(results)
    claims = verdicts(rows, seeds)
    facts = provenance(
        results,
        profile=profile,
        seeds=seeds,
        jobs=1 if cluster else jobs,
        threads=threads,
        cluster=cluster,
        data_dir=data_dir,
        device=device,
    )

    def dump(name: str, value: object) -> None:
        (build_dir / name).write_text(json.dumps(value, indent=1, ensure_ascii=False))

    dump("scorecard.json", rows)
    dump("verdicts.json", claims)
    dump("provenance.json", facts)
    dump(
        "results.json",
        {
            "profile": profile,
            "seeds": seeds,
            "seed": seeds[0],
            "notebooks": [asdict(r) for r in results],
        },
    )
    (build_dir / "index.html").write_text(
        render_index(results, claims, profile=profile, seeds=seeds, facts=facts),
        encoding="utf-8",
    )


def _swap_in(build_dir: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `build_dir` with two renames; the old report is removed last."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    build_dir.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
