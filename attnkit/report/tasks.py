"""Tasks of a report (one notebook × one seed), their identity for resuming, and local runs.

A task's `key` hashes what decides its result: the notebook's content, its parameters and the
attnkit version (the package version and a hash of the package's source, so an edit to the
code counts as a new version). A later report reuses a finished task with the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from attnkit.report.execute import run_notebook
from attnkit.report.results import NotebookResult

# Environment variables that set the thread pools of torch (OpenMP / MKL), numba and BLAS.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


@dataclass(frozen=True)
class Task:
    """One notebook run with one seed; `stem` names its files in the report folder."""

    path: Path
    seed: int
    profile: str
    data_dir: str | None
    device: str
    require_data: bool
    stem: str

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def parameters(self) -> dict:
        return {
            "profile": self.profile,
            "seed": self.seed,
            "data_dir": self.data_dir,
            "device": self.device,
            "require_data": self.require_data,
        }

    def key(self) -> str:
        """What must match for a previous result to be reused."""
        digest = hashlib.sha256(self.path.read_bytes())
        digest.update(json.dumps(self.parameters, sort_keys=True).encode())
        digest.update(attnkit_version().encode())
        return digest.hexdigest()[:32]


@lru_cache(maxsize=1)
def source_hash() -> str:
    """A hash of the installed attnkit package's source files and templates."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and path.suffix in {".py", ".j2", ".json"}
            and "__pycache__" not in path.parts
        ):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def attnkit_version() -> str:
    """The package version and its source hash, e.g. "0.1.0+src.3f2a…"."""
    from attnkit import __version__

    return f"{__version__}+src.{source_hash()}"


def task_stem(name: str, seed: int, many_seeds: bool) -> str:
    """`<notebook>` for a single-seed report, `<notebook>.seed<k>` when there are several."""
    return f"{name}.seed{seed}" if many_seeds else name


@contextlib.contextmanager
def task_environment(threads: int, cache_dir: str | None = None) -> Iterator[None]:
    """Set the thread-pool variables (torch reads them at import) and the training cache for
    the kernels started inside; the previous values come back afterwards.

    Every concurrent task of a run gets the same values, so setting the process environment
    once is enough.
    """
    values = {name: str(threads) for name in THREAD_VARIABLES}
    if cache_dir is not None:
        values["ATTNKIT_CACHE_DIR"] = str(Path(cache_dir).expanduser())
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(task: Task, build_dir: Path, *, threads: int, progress: bool) -> NotebookResult:
    """Run one task into `build_dir` (the thread limit must already be in the environment)."""
    result = run_notebook(
        task.path,
        build_dir,
        profile=task.profile,
        seed=task.seed,
        data_dir=task.data_dir,
        device=task.device,
        require_data=task.require_data,
        stem=task.stem,
        progress=progress,
    )
    result.threads = threads
    return result


def run_local(
    tasks: list[Task],
    build_dir: Path,
    *,
    jobs: int,
    threads: int,
    cache_dir: str | None,
    progress: bool,
    on_done: Callable[[Task, NotebookResult], None],
) -> list[NotebookResult]:
    """Run the tasks on this machine, `jobs` kernels at a time; results in task order.

    Each kernel is its own process (papermill starts it), so a thread per job only waits on it.
    """
    results: dict[int, NotebookResult] = {}
    lock = threading.Lock()
    # Per-cell progress bars only make sense for one kernel at a time.
    cell_progress = progress and jobs == 1

    def one(index: int) -> None:
        result = execute(tasks[index], build_dir, threads=threads, progress=cell_progress)
        with lock:
            results[index] = result
            on_done(tasks[index], result)

    with task_environment(threads, cache_dir):
        if jobs == 1:
            for index in range(len(tasks)):
                one(index)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(one, i) for i in range(len(tasks))]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:  # Ctrl-C or a crash: start nothing more
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    return [results[i] for i in range(len(tasks))]
