"""`attnkit report --cluster`: the same report from a Dask LocalCluster on 127.0.0.1, retries
when a worker dies mid-task, and clear errors before anything runs."""

import json
import os
from pathlib import Path

import pytest
from conftest import write_notebook

from attnkit.report import ReportError, compare_scorecards, run_report

distributed = pytest.importorskip("distributed", reason="pip install -e '.[cluster]'")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes. The scheduler gives up on a task at the first
    worker death (allowed-failures 0), so the one retry seen is the runner's own."""
    import dask

    settings = {
        "distributed.scheduler.allowed-failures": 0,
        # one task per worker thread, so a worker that dies takes down only its own task
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(settings):
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        yield local.scheduler_address
        local.close()


def test_tour_on_the_cluster_matches_the_local_run(cluster, tmp_path):
    data_dir = os.environ.get("ATTNKIT_DATA_DIR")
    common = {
        "seeds": [0, 1],
        "only": ["tour"],
        "notebooks_dir": REPO / "notebooks",
        "data_dir": data_dir,
        "progress": False,
        "cache_dir": tmp_path / "cache",
    }
    local = run_report("smoke", out=tmp_path / "local", jobs=2, **common)
    remote = run_report("smoke", out=tmp_path / "remote", cluster=cluster, **common)
    assert [r.status for r in local] == [r.status for r in remote] == ["ok", "ok"]
    assert compare_scorecards(tmp_path / "local", tmp_path / "remote") == []
    # pages, notebooks and figures came back to the client
    for seed in (0, 1):
        assert (tmp_path / "remote" / f"tour.seed{seed}.html").stat().st_size > 1000
        assert (tmp_path / "remote" / f"tour.seed{seed}.ipynb").is_file()
    facts = json.loads((tmp_path / "remote" / "provenance.json").read_text())
    assert facts["cluster"] == cluster and len(facts["tasks"]) == 2


KILL_WORKER = (
    "import os, signal\nfrom pathlib import Path\nmarker = Path({marker!r})\n"
    "if {always} or not marker.exists():\n"
    "    marker.touch()\n"
    "    os.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent is the Dask worker\n"
    "    os._exit(1)"
)


def test_a_dead_worker_is_retried_once_then_reported(cluster, tmp_path):
    notebooks = tmp_path / "notebooks"
    once, always = tmp_path / "once", tmp_path / "always"
    write_notebook(notebooks, "dies_once", [KILL_WORKER.format(marker=str(once), always=False)])
    write_notebook(notebooks, "dies_always", [KILL_WORKER.format(marker=str(always), always=True)])
    write_notebook(notebooks, "fine", ["import attnkit\nx = 1"])
    results = run_report(
        "smoke", out=tmp_path / "out", notebooks_dir=notebooks, cluster=cluster, progress=False
    )
    by_name = {r.name: r for r in results}
    assert by_name["fine"].status == "ok"
    assert (by_name["dies_once"].status, by_name["dies_once"].attempts) == ("ok", 2)
    dead = by_name["dies_always"]
    assert (dead.status, dead.attempts) == ("failed", 2)
    assert "failed on the cluster 2 time(s)" in dead.error["evalue"]
    index = (tmp_path / "out" / "index.html").read_text()
    assert "dies_always (seed 0)" in index and "failed on the cluster" in index


def test_workers_without_the_data_directory(cluster, tmp_path):
    write_notebook(tmp_path / "notebooks", "nb", ["x = 1"])
    missing = str(tmp_path / "no-such-data")
    with pytest.raises(ReportError, match="no data directory"):
        run_report(
            "smoke",
            out=tmp_path / "out",
            notebooks_dir=tmp_path / "notebooks",
            cluster=cluster,
            data_dir=missing,
            require_data=True,
        )
    assert not (tmp_path / "out").exists()
    # Without --require-data the notebooks fall back to synthetic data, as they would locally.
    results = run_report(
        "smoke",
        out=tmp_path / "out",
        notebooks_dir=tmp_path / "notebooks",
        cluster=cluster,
        data_dir=missing,
        progress=False,
    )
    assert [r.status for r in results] == ["ok"]


def test_a_worker_without_attnkit(tmp_path):
    """A worker whose Python cannot import attnkit is named before anything runs."""
    import subprocess
    import sys
    import time

    shadow = tmp_path / "shadow" / "attnkit"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('attnkit is not installed here')\n")
    write_notebook(tmp_path / "notebooks", "nb", ["x = 1"])
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    with distributed.LocalCluster(
        n_workers=0, host="127.0.0.1", dashboard_address=None, processes=True
    ) as local:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", local.scheduler_address]
            + ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
            env=env,
            cwd=tmp_path,  # `python -m` puts the working folder first on sys.path
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with distributed.Client(local.scheduler_address) as client:
                client.wait_for_workers(1, timeout=60)
            start = time.perf_counter()
            with pytest.raises(ReportError, match="cannot run attnkit.*Install it on every worker"):
                run_report(
                    "smoke",
                    out=tmp_path / "out",
                    notebooks_dir=tmp_path / "notebooks",
                    cluster=local.scheduler_address,
                )
            assert time.perf_counter() - start < 60
        finally:
            worker.kill()
            worker.wait()
    assert not (tmp_path / "out").exists()
