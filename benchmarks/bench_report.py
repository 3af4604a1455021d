"""The report's parallel runs: one job vs two jobs vs a Dask cluster, as ratios in one run.

    .venv/bin/python benchmarks/bench_report.py                      # smoke, seeds 0 1
    .venv/bin/python benchmarks/bench_report.py --profile quick --seeds 0 1 2 --no-cluster

Each configuration builds the same report (every notebook unless --only, the given seeds) into
its own temporary folder, with an empty training cache of its own so no configuration profits
from another's trained models:

    jobs 1     one notebook run at a time, with cores torch threads
    jobs 2     two runs at a time, cores // 2 threads each (the default on a 2-core machine)
    dask 2×1   a LocalCluster of 2 single-threaded worker processes on 127.0.0.1, one torch
               thread per run (`attnkit report --cluster`)

It prints wall times and the ratios jobs1 / jobs2 (the speed-up of two jobs) and dask / jobs2
(the cluster's overhead). Run it on a quiet machine: the ratios assume nothing else competes
for the cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from attnkit.report import run_report

REPO = Path(__file__).resolve().parent.parent


def timed(label: str, **options) -> float:
    with tempfile.TemporaryDirectory(prefix="attnkit-bench-report-") as folder:
        start = time.perf_counter()
        results = run_report(
            out=Path(folder) / "report", cache_dir=Path(folder) / "cache", progress=False, **options
        )
        seconds = time.perf_counter() - start
    failed = [f"{r.name} seed {r.seed}" for r in results if r.status != "ok"]
    print(f"{label:>10}: {seconds:7.1f} s" + (f"  (failed: {', '.join(failed)})" if failed else ""))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", help="notebooks to run (default: all)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask configuration")
    parser.add_argument("--data-dir", default=os.environ.get("ATTNKIT_DATA_DIR"))
    args = parser.parse_args()
    common = {
        "profile": args.profile,
        "seeds": args.seeds,
        "only": args.only,
        "data_dir": args.data_dir,
        "notebooks_dir": REPO / "notebooks",
    }
    cores = os.cpu_count() or 1
    print(f"report {args.profile}, seeds {args.seeds}, {cores} cores")
    one = timed("jobs 1", jobs=1, threads=cores, **common)
    two = timed("jobs 2", jobs=2, threads=max(1, cores // 2), **common)
    print(f"speed-up of 2 jobs over 1: {one / two:.2f}×")
    if args.no_cluster:
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        dask = timed("dask 2×1", cluster=cluster.scheduler_address, threads=1, **common)
    print(f"Dask (2 workers × 1 thread) / jobs 2: {dask / two:.2f}×")


if __name__ == "__main__":
    main()
