"""The report: run every paper notebook (per seed, in parallel or on Dask) and build the pages.

`run_report(profile="quick", seeds=[0, 1, 2])` executes each notebook once per seed with
papermill, writes the executed notebooks and an offline page per run, then `index.html`
(summary of verdicts over seeds, scorecard, notebooks, provenance), `scorecard.json` (one row
per notebook, claim and seed), `verdicts.json` (one object per claim, over seeds),
`provenance.json` and `results.json`.

Modules: `results` (the result type), `execute` (one notebook run), `tasks` (notebook × seed,
resume keys, local parallel runs), `cluster` (Dask), `aggregate` (rows, verdicts over seeds,
comparisons), `provenance`, `pages` (a notebook's page), `index` and `strip` (the front page),
`runner` (`run_report`).
"""

from attnkit.report.aggregate import compare_scorecards, scorecard_rows, verdicts
from attnkit.report.execute import run_notebook
from attnkit.report.results import PROFILES, NotebookResult, ReportError
from attnkit.report.runner import run_report

__all__ = [
    "PROFILES",
    "NotebookResult",
    "ReportError",
    "compare_scorecards",
    "run_notebook",
    "run_report",
    "scorecard_rows",
    "verdicts",
]
