"""Run report tasks on a Dask distributed cluster (`attnkit report --cluster tcp://HOST:PORT`).

Each task travels as the notebook's text and its parameters; a worker executes it in a
temporary folder with the same executor as a local run and sends back the result and every
file it wrote (executed notebook, page, figures). Workers need attnkit installed and the data
directory at the path given by `--data-dir` (as the workers see it).

Failures: a task whose worker dies is retried once (on top of whatever retries the
scheduler's own `distributed.scheduler.allowed-failures` makes), then reported as failed with
its error while the others finish. A notebook that fails is a result, not a retry.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from attnkit.report.execute import error_of
from attnkit.report.results import NotebookResult, ReportError
from attnkit.report.tasks import Task, execute, task_environment

SCHEMES = ("tcp", "tls")
CONNECT_TIMEOUT_S = 10
RETRIES = 1


def check_address(address: str) -> None:
    """A scheduler address as `dask scheduler` prints it: tcp://HOST:PORT (or tls://)."""
    parsed = urlparse(address)
    if parsed.scheme not in SCHEMES or not parsed.hostname or not parsed.port:
        raise ReportError(
            f"--cluster {address!r} is not a Dask scheduler address. Pass it as the scheduler "
            f"prints it, e.g. --cluster tcp://127.0.0.1:8786 (schemes: {', '.join(SCHEMES)})."
        )


def connect(address: str) -> Any:
    """A `distributed.Client` for `address`, or a ReportError that says how to get one."""
    check_address(address)
    try:
        from distributed import Client
    except ImportError:
        raise ReportError(
            "--cluster needs Dask distributed: pip install -e '.[cluster]' (make setup does)."
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise ReportError(
            f"cannot reach a Dask scheduler at {address} ({error}). Start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, then pass the address the "
            "scheduler prints."
        ) from None


def worker_facts(data_dir: str | None) -> dict[str, Any]:
    """Run on each worker: its host, attnkit version and whether it sees the data directory."""
    from attnkit.report.tasks import attnkit_version

    return {
        "host": socket.gethostname(),
        "attnkit": attnkit_version(),
        "data_dir": data_dir is None or Path(data_dir).is_dir(),
    }


def check_workers(client: Any, data_dir: str | None, require_data: bool) -> dict[str, Any]:
    """Before anything runs: workers exist, have attnkit, and agree on the data directory."""
    if not client.scheduler_info().get("workers"):
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise ReportError(
                "the Dask scheduler has no workers. Start some with `dask worker ADDRESS` on "
                "machines that have attnkit installed."
            ) from None
    facts = client.run(worker_facts, data_dir, on_error="return")
    broken = {w: f for w, f in facts.items() if isinstance(f, BaseException)}
    if broken:
        missing = ", ".join(f"{w} ({type(e).__name__}: {e})" for w, e in broken.items())
        raise ReportError(
            f"these Dask workers cannot run attnkit: {missing}. Install it on every worker "
            "(pip install -e '.[cluster]' in a checkout of this repository), then restart them."
        )
    without_data = sorted(w for w, f in facts.items() if not f["data_dir"])
    if data_dir is not None and without_data:
        if require_data or len(without_data) < len(facts):
            raise ReportError(
                f"workers {', '.join(without_data)} have no data directory {data_dir}. Make the "
                "datasets available at the same path on every worker, or pass --data-dir with "
                "the path the workers see."
            )
        print(
            f"note: no worker has {data_dir}; the notebooks fall back to synthetic data, as "
            "they would locally.",
            flush=True,
        )
    return facts


def run_remote(task: dict[str, Any], threads: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run on a worker: execute one task in a temporary folder; the result and its files."""
    from dataclasses import asdict

    with tempfile.TemporaryDirectory(prefix="attnkit-task-") as tmp:
        folder = Path(tmp)
        notebook = folder / "notebooks" / f"{task['name']}.ipynb"
        notebook.parent.mkdir()
        notebook.write_text(task["notebook"], encoding="utf-8")
        build = folder / "build"
        build.mkdir()
        spec = Task(
            path=notebook,
            seed=task["seed"],
            profile=task["profile"],
            data_dir=task["data_dir"],
            device=task["device"],
            require_data=task["require_data"],
            stem=task["stem"],
        )
        with task_environment(threads, task["cache_dir"]):
            result = execute(spec, build, threads=threads, progress=False)
        files = {
            str(path.relative_to(build)): path.read_bytes()
            for path in build.rglob("*")
            if path.is_file()
        }
    return asdict(result), files


def _failed(task: Task, error: BaseException, attempts: int) -> NotebookResult:
    details = error_of(None, error)
    details["evalue"] = (
        f"the task failed on the cluster {attempts} time(s) (worker lost or task error): "
        f"{details['evalue']}"
    )
    return NotebookResult(
        name=task.name,
        status="failed",
        seconds=0.0,
        profile=task.profile,
        seed=task.seed,
        title=task.name,
        error=details,
        attempts=attempts,
    )


def run_cluster(
    tasks: list[Task],
    build_dir: Path,
    *,
    address: str,
    threads: int,
    cache_dir: str | None,
    on_done: Callable[[Task, NotebookResult], None],
) -> list[NotebookResult]:
    """Send the tasks to the scheduler at `address`; files land in `build_dir` as locally."""
    from distributed import as_completed

    client = connect(address)
    try:
        check_workers(client, tasks[0].data_dir if tasks else None, tasks[0].require_data)
        payloads = [
            {
                "name": t.name,
                "notebook": t.path.read_text(encoding="utf-8"),
                "seed": t.seed,
                "profile": t.profile,
                "data_dir": t.data_dir,
                "device": t.device,
                "require_data": t.require_data,
                "stem": t.stem,
                "cache_dir": cache_dir,
            }
            for t in tasks
        ]

        def submit(index: int) -> Any:
            future = client.submit(run_remote, payloads[index], threads, pure=False, retries=0)
            owner[future.key] = index
            return future

        owner: dict[str, int] = {}  # the futures in flight
        attempts = [1] * len(tasks)
        results: dict[int, NotebookResult] = {}
        waiting = list(range(len(tasks)))
        pending = as_completed()

        def fill() -> None:
            # At most one task per live worker thread is handed to the scheduler, so no task
            # waits in a worker's own queue, where a neighbour that kills the worker would
            # take it down too; the rest wait here.
            workers = client.scheduler_info().get("workers", {})
            capacity = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
            while waiting and len(owner) < capacity:
                pending.add(submit(waiting.pop(0)))

        fill()
        for future in pending:
            index = owner.pop(future.key)
            if future.status == "finished":
                entry, files = future.result()
                for relative, payload in files.items():
                    target = build_dir / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(payload)
                result = NotebookResult.from_dict(entry)
                result.attempts = attempts[index]
            elif attempts[index] <= RETRIES:
                attempts[index] += 1
                waiting.insert(0, index)
                fill()
                continue
            else:
                result = _failed(tasks[index], future.exception(), attempts[index])
            results[index] = result
            on_done(tasks[index], result)
            fill()
        return [results[i] for i in range(len(tasks))]
    finally:
        client.close()
