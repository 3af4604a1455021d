"""The report's result types: one `NotebookResult` per executed (notebook, seed) task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attnkit.errors import AttnkitError

PROFILES = ("smoke", "quick", "full")


class ReportError(AttnkitError):
    """A report that cannot be started as asked; the message names the fix."""


@dataclass
class NotebookResult:
    """What one notebook run (one seed) produced.

    `html`, `ipynb` and `files` are names inside the report folder. `key` identifies the task
    (notebook content, parameters, attnkit version) so a later report can reuse it; `reused`
    says this run was taken from the previous report rather than executed, `carried_over` that
    `--only` left the notebook out and its previous result was kept.
    """

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
    files: str = ""
    carried_over: bool = False
    reused: bool = False
    key: str = ""
    host: str = ""
    started: str = ""
    threads: int | None = None
    attempts: int = 1

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> NotebookResult:
        """Read an entry of `results.json`, ignoring keys this version does not know."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in entry.items() if k in known})
