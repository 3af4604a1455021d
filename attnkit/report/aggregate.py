"""Claims over seeds: the scorecard's rows, each claim's verdict over seeds, and comparisons.

Per seed a claim held, did not hold, or was inconclusive (a precondition failed). Over the
seeds of a report (`verdict_over_seeds`):

- **held**: it held on every seed where it was conclusive, and was conclusive on more than
  half of the seeds;
- **did not hold**: it failed on every conclusive seed, conclusive on more than half;
- **mixed**: it held on some seeds and failed on others;
- **inconclusive**: otherwise (conclusive on half of the seeds or fewer).

A seed whose notebook failed counts as a seed where the claim was not conclusive. The value's
95 % interval is a percentile bootstrap of the mean over seeds (scipy.stats.bootstrap), given
from 3 seeds on.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from attnkit.report.results import NotebookResult, ReportError

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MIN_SEEDS_FOR_INTERVAL = 3


def _verdict_of(record: dict[str, Any]) -> str:
    """A record's per-seed verdict; claims recorded before claim v2 only have `holds`."""
    if "verdict" in record:
        return record["verdict"]
    return "held" if record["holds"] else "did not hold"


def scorecard_rows(results: list[NotebookResult]) -> list[dict[str, Any]]:
    """One row of `scorecard.json` per (notebook, claim, seed)."""
    rows = []
    for result in results:
        for record in result.claims:
            verdict = _verdict_of(record)
            rows.append(
                {
                    "notebook": result.name,
                    "paper": result.paper,
                    "id": record["id"],
                    "claim": record["claim"],
                    "paper_value": record["paper_value"],
                    "ours": record["ours"],
                    "holds": None if verdict == "inconclusive" else verdict == "held",
                    "rule": record["rule"],
                    "source": record["source"],
                    "profile": result.profile,
                    "seed": result.seed,
                    "value": record.get("value"),
                    "threshold": record.get("threshold"),
                    "verdict": verdict,
                    "reason": record.get("reason", ""),
                    "timing": bool(record.get("timing", False)),
                }
            )
    return rows


def bootstrap_interval(values: list[float]) -> list[float] | None:
    """The 95 % percentile-bootstrap interval of the mean of `values`; None below 3 values."""
    if len(values) < MIN_SEEDS_FOR_INTERVAL:
        return None
    data = np.asarray(values, dtype=float)
    if np.all(data == data[0]):  # every resample has the same mean
        return [float(data[0]), float(data[0])]
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=0.95,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def verdict_over_seeds(held: int, not_held: int, seeds: int) -> str:
    """The rule in this module's docstring, from the per-seed counts."""
    conclusive = held + not_held
    if held and not_held:
        return "mixed"
    if conclusive * 2 > seeds:
        return "held" if held else "did not hold"
    return "inconclusive"


def verdicts(rows: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any]]:
    """One object per claim (notebook, id), aggregated over `seeds`, in first-seen order."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["notebook"], row["id"])].append(row)
    out = []
    for (notebook, claim_id), claim_rows in grouped.items():
        claim_rows = sorted(claim_rows, key=lambda r: r["seed"])
        first = claim_rows[0]
        counts = {v: sum(r["verdict"] == v for r in claim_rows) for v in ("held", "did not hold")}
        values = [r["value"] for r in claim_rows if r.get("value") is not None]
        run_seeds = sorted(set(seeds) | {r["seed"] for r in claim_rows})
        n = len(run_seeds)
        out.append(
            {
                "notebook": notebook,
                "paper": first["paper"],
                "id": claim_id,
                "claim": first["claim"],
                "paper_value": first["paper_value"],
                "rule": first["rule"],
                "source": first["source"],
                "threshold": first.get("threshold"),
                "timing": first.get("timing", False),
                "seeds": n,
                "held": counts["held"],
                "not_held": counts["did not hold"],
                "inconclusive": n - counts["held"] - counts["did not hold"],
                "value_mean": float(np.mean(values)) if values else None,
                "value_std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                "value_ci95": bootstrap_interval(values),
                "verdict": verdict_over_seeds(counts["held"], counts["did not hold"], n),
                "per_seed": [
                    {
                        "seed": r["seed"],
                        "verdict": r["verdict"],
                        "value": r.get("value"),
                        "ours": r["ours"],
                        "reason": r.get("reason", ""),
                    }
                    for r in claim_rows
                ],
                "missing_seeds": sorted(set(run_seeds) - {r["seed"] for r in claim_rows}),
            }
        )
    return out


def over_seeds_text(verdict: dict[str, Any]) -> str:
    """ "held on 3/3", "mixed: held on 2/3, failed on 1/3", "inconclusive on 2/3", …"""
    n, held, failed = verdict["seeds"], verdict["held"], verdict["not_held"]
    if verdict["verdict"] == "held":
        return f"held on {held}/{n}"
    if verdict["verdict"] == "did not hold":
        return f"did not hold on {failed}/{n}"
    if verdict["verdict"] == "mixed":
        return f"mixed: held on {held}/{n}, failed on {failed}/{n}"
    return f"inconclusive on {verdict['inconclusive']}/{n}"


def compare_scorecards(first: str | os.PathLike, second: str | os.PathLike) -> list[str]:
    """How two reports' scorecards differ; [] when the same seeds gave the same scorecard.

    Rows are matched by (notebook, claim, seed). Claims recorded with `timing=True`
    (wall-clock speed ratios) are compared on everything but their measured value and
    verdict, which no two runs share.
    """
    tables = []
    for folder in (Path(first), Path(second)):
        try:
            tables.append(json.loads((folder / "scorecard.json").read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise ReportError(
                f"cannot read the scorecard in {folder}: {error}. Point at a folder written by "
                "`attnkit report`."
            ) from None
    measured = ("ours", "value", "holds", "verdict", "reason")

    def keyed(table: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        return {
            (row["notebook"], row["id"], row.get("seed")): {
                k: v for k, v in row.items() if not (row.get("timing") and k in measured)
            }
            for row in table
        }

    a, b = keyed(tables[0]), keyed(tables[1])
    differences = [f"{n}/{i} seed {s}: only in {first}" for n, i, s in a.keys() - b.keys()]
    differences += [f"{n}/{i} seed {s}: only in {second}" for n, i, s in b.keys() - a.keys()]
    for key in sorted(a.keys() & b.keys(), key=str):
        for field_name in a[key]:
            if a[key][field_name] != b[key].get(field_name):
                differences.append(
                    f"{key[0]}/{key[1]} seed {key[2]} {field_name}: {a[key][field_name]!r} != "
                    f"{b[key].get(field_name)!r}"
                )
    return differences
