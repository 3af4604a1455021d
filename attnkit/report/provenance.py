"""Where a report's numbers came from: code, packages, machine, threads, data files, tasks."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from attnkit.report.results import NotebookResult
from attnkit.report.tasks import THREAD_VARIABLES, attnkit_version

PACKAGES = (
    "torch",
    "transformers",
    "numpy",
    "scipy",
    "captum",
    "entmax",
    "papermill",
    "nbconvert",
    "dask",
    "distributed",
)


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit of the checkout attnkit runs from and whether its tree had changes."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "note": "attnkit is not running from a git checkout"}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_models() -> list[str]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def provenance(
    results: list[NotebookResult],
    *,
    profile: str,
    seeds: list[int],
    jobs: int,
    threads: int,
    cluster: str | None,
    data_dir: str | None,
    device: str,
) -> dict[str, Any]:
    """Everything `provenance.json` and the index's provenance section show."""
    files: dict[str, dict[str, Any]] = {}
    for result in results:
        for record in result.data:
            for path, sha in (record.get("files") or {}).items():
                entry = files.setdefault(path, {"path": path, "sha256": sha, "read_by": []})
                entry["read_by"].append(f"{result.name} seed {result.seed}")
    return {
        "attnkit": attnkit_version(),
        "git": git_state(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu_models(),
        "device": device,
        "threads": {
            "jobs": jobs,
            "torch_threads_per_task": threads,
            "variables": {name: str(threads) for name in THREAD_VARIABLES},
        },
        "determinism": {
            "seeds": "each notebook seeds python, numpy and torch from its `seed` parameter",
            "torch_deterministic_algorithms": "on while attnkit.train fits a model",
            "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        },
        "profile": profile,
        "seeds": seeds,
        "cluster": cluster,
        "data_dir": data_dir,
        "data_files": sorted(files.values(), key=lambda f: f["path"]),
        "tasks": [
            {
                "notebook": r.name,
                "seed": r.seed,
                "status": r.status,
                "host": r.host,
                "started": r.started,
                "seconds": round(r.seconds, 2),
                "threads": r.threads,
                "attempts": r.attempts,
                "reused": r.reused,
                "carried_over": r.carried_over,
            }
            for r in results
        ],
    }
