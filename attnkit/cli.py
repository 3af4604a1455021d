"""The `attnkit` command: `report`, `explain`, `data`, `assignment`, `bench`."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
from pathlib import Path

from attnkit import __version__
from attnkit.report import PROFILES, ReportError, run_report


def _report(args: argparse.Namespace) -> int:
    if args.seed is not None and args.seeds is not None:
        raise ReportError("pass --seed or --seeds, not both (e.g. --seeds 0 1 2).")
    results = run_report(
        args.profile,
        only=args.only,
        data_dir=args.data_dir,
        seeds=args.seeds if args.seeds is not None else [args.seed or 0],
        out=args.out,
        notebooks_dir=args.notebooks,
        device=args.device,
        require_data=args.require_data,
        progress=not args.no_progress,
        jobs=args.jobs,
        threads=args.threads,
        cluster=args.cluster,
        cache_dir=args.cache_dir,
        rerun=args.rerun,
    )
    failed = [
        f"{r.name} (seed {r.seed})" for r in results if r.status != "ok" and not r.carried_over
    ]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _data(args: argparse.Namespace) -> int:
    from attnkit.data import fetch as data_fetch
    from attnkit.data import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir_sub or args.data_dir)
    if args.data_command == "list":
        if data_dir is None:
            print("no data directory: pass --data-dir or set ATTNKIT_DATA_DIR", file=sys.stderr)
            return 2
        print(data_fetch.format_dataset_table(data_fetch.list_datasets(data_dir)))
        return 0
    if data_dir is None:
        raise ReportError(
            "no data directory to fetch into: pass --data-dir DIR or set ATTNKIT_DATA_DIR."
        )
    for name in args.names:
        paths = data_fetch.fetch(name, data_dir, force=args.force, base_url=args.base_url)
        print(f"{name}: {len(paths)} file(s) in {data_dir}")
    return 0


def _assignment(args: argparse.Namespace) -> int:
    from attnkit import assignment

    if args.assignment_command == "make":
        path = assignment.make_student_copy(args.notebook, args.out, force=args.force)
        print(f"wrote the student copy {path}")
        return 0
    out = args.out if args.out is not None else tempfile.mkdtemp(prefix="attnkit-check-")
    what = "exercises of " if args.exercises_only else ""
    print(f"running the {what}{args.notebook} (profile {args.profile}) ...", file=sys.stderr)
    results = assignment.check_notebook(
        args.notebook,
        profile=args.profile,
        data_dir=args.data_dir,
        timeout=args.timeout,
        out=out,
        exercises_only=args.exercises_only,
    )
    for result in results:
        line = f"{'PASS' if result.passed else 'FAIL'}  {result.name} (cell {result.cell})"
        print(line if result.passed else f"{line}: {result.error}")
    passed = sum(result.passed for result in results)
    executed = Path(out) / Path(args.notebook).name
    print(f"{passed} of {len(results)} checks passed; executed copy: {executed}")
    return 0 if passed == len(results) else 1


def _bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_propagate.py"
    if not script.is_file():
        print(f"benchmarks not found at {script}; run from a source checkout.", file=sys.stderr)
        return 2
    sys.argv = ["attnkit bench", *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"attnkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser("report", help="run the paper notebooks and build the HTML report")
    report.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)}")
    report.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks")
    report.add_argument("--data-dir", help="datasets folder (default: $ATTNKIT_DATA_DIR)")
    report.add_argument("--seed", type=int, help="one seed (default 0); see --seeds")
    report.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        metavar="SEED",
        help="run every notebook once per seed, e.g. --seeds 0 1 2; the scorecard aggregates "
        "each claim over them",
    )
    report.add_argument(
        "--jobs",
        type=int,
        help="notebook runs at a time on this machine (default: one per core, each with one "
        "torch thread)",
    )
    report.add_argument(
        "--threads", type=int, help="torch threads per run (default: cores // jobs; 1 on Dask)"
    )
    report.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run the notebooks on this Dask scheduler (workers need attnkit and the data)",
    )
    report.add_argument(
        "--cache-dir",
        help="training cache for the runs (default: $ATTNKIT_CACHE_DIR or ~/.cache/attnkit; on "
        "Dask each worker's own unless this names a shared path)",
    )
    report.add_argument(
        "--rerun",
        action="store_true",
        help="run every notebook again, even those unchanged since the previous report",
    )
    report.add_argument("--out", help="report folder (default: reports/<profile>)")
    report.add_argument("--notebooks", help="notebook folder (default: ./notebooks)")
    report.add_argument("--device", default="cpu", help="torch device for the notebooks")
    report.add_argument(
        "--require-data",
        action="store_true",
        help="fail instead of falling back to synthetic data when a dataset is missing",
    )
    report.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    report.set_defaults(func=_report)

    data = commands.add_parser("data", help="list or fetch the real datasets")
    data_dir_help = "datasets folder (default: $ATTNKIT_DATA_DIR)"
    data.add_argument("--data-dir", help=data_dir_help)
    data_commands = data.add_subparsers(dest="data_command", required=True)
    listing = data_commands.add_parser("list", help="what is present, and where it came from")
    fetch = data_commands.add_parser("fetch", help="download datasets and verify checksums")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    fetch.add_argument("--base-url", help="fetch from a mirror instead of the original hosts")
    for sub in (listing, fetch):  # accept --data-dir after the subcommand too
        sub.add_argument("--data-dir", dest="data_dir_sub", help=data_dir_help)
    data.set_defaults(func=_data)

    assignment = commands.add_parser(
        "assignment", help="classroom assignments: make a student copy, check a student's answers"
    )
    assignment_commands = assignment.add_subparsers(dest="assignment_command", required=True)
    make = assignment_commands.add_parser(
        "make", help="write a student copy: solutions replaced by stubs, outputs cleared"
    )
    make.add_argument("notebook", help="the teacher's notebook (.ipynb)")
    make.add_argument("--out", required=True, metavar="DIR", help="folder for the student copy")
    make.add_argument("--force", action="store_true", help="overwrite an existing student copy")
    check = assignment_commands.add_parser(
        "check", help="run a notebook, errors allowed, and report each cell tagged 'check'"
    )
    check.add_argument("notebook", help="the (student's) notebook; it is not modified")
    check.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)}")
    check.add_argument("--data-dir", help="datasets folder (default: $ATTNKIT_DATA_DIR)")
    check.add_argument(
        "--timeout", type=int, default=600, help="seconds per cell before it is interrupted"
    )
    check.add_argument(
        "--out", metavar="DIR", help="folder for the executed copy (default: a temporary folder)"
    )
    check.add_argument(
        "--exercises-only",
        action="store_true",
        help="run only the parameters cell and the exercise section (from the first cell "
        "tagged exercise-setup, solution or check)",
    )
    assignment.set_defaults(func=_assignment)

    from attnkit.explain.cli import add_parser as add_explain

    add_explain(commands)

    bench = commands.add_parser(  # no help of its own: `attnkit bench --help` shows the script's
        "bench",
        help="run benchmarks/bench_propagate.py (attnkit bench --help: its options)",
        add_help=False,
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `attnkit bench` hands every option after it to the benchmark script.
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return args.func(args)
    except (ValueError, OSError) as error:  # ReportError, data and download errors included
        print(f"attnkit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attnkit: interrupted; an existing report was left as it was", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
