"""What a notebook tells the report: the paper claims it checked and the data it used.

A notebook calls `claim(...)` once per claim and the data layer calls `used_data(...)` whenever
it loads a dataset. Both display a readable line in the notebook and attach a JSON record under
a private MIME type; the report runner (`attnkit.report`) reads those records back out of the
executed notebook, so a notebook run by hand with papermill carries the same information.
"""

from __future__ import annotations

import html
import math
import numbers
import warnings
from typing import Any

CLAIM_MIME = "application/vnd.attnkit.claim+json"
DATA_MIME = "application/vnd.attnkit.data+json"

# Records made in this process, for code that is not running inside a notebook (and for tests).
claims_made: list[dict[str, Any]] = []
data_used: list[dict[str, Any]] = []


class Record(dict):
    """A claim or data record: a plain dict that IPython does not echo, since it was shown."""

    def _ipython_display_(self) -> None:
        pass


class ClaimError(ValueError):
    """A claim that cannot enter the scorecard as given."""


def _plain(value: Any) -> Any:
    """Turn numpy / torch scalars and tuples into JSON-friendly Python values."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def format_value(value: Any) -> str:
    """A recorded value as the notebook and the report print it: floats to 3 digits, lists
    joined with commas, None as a dash."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return "—" if value is None else str(value)


def _display(bundle: dict[str, Any]) -> bool:
    """Show a MIME bundle when running under IPython; return whether it was shown."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return False
    if get_ipython() is None:
        return False
    display(bundle, raw=True)
    return True


def claim(
    id: str,
    text: str,
    *,
    paper: Any,
    ours: Any,
    holds: bool,
    rule: str,
    source: str,
    timing: bool = False,
) -> dict[str, Any]:
    """Record one paper claim for the reproduction scorecard.

    Args:
        id: short stable identifier, unique within the notebook (e.g. "rollout-beats-raw").
        text: the claim in words.
        paper: the paper's value (a number, a list, or a short string).
        ours: our value, computed in this run.
        holds: the verdict of `rule` applied to `ours` (and `paper`).
        rule: the rule the verdict follows, e.g. "ρ(rollout) − ρ(raw) ≥ 0.1 at the last layer".
        source: where the paper's value comes from (table, figure, section; see CLAIMS.md).
        timing: `ours` is a wall-clock measurement (a speed ratio), which differs from run to
            run; the report's same-seed reproducibility check leaves its value and verdict out.

    Returns the record; raises `ClaimError` for a missing source or a non-boolean verdict.
    """
    if not isinstance(id, str) or not id.strip():
        raise ClaimError(
            "a claim needs a non-empty string id, e.g. claim('rollout-beats-raw', ...)"
        )
    if not isinstance(source, str) or not source.strip():
        raise ClaimError(
            f"claim {id!r} has no source. Say where the paper's value comes from, e.g. "
            "source='Abnar & Zuidema 2020, Table 1' (see ../shared/papers/CLAIMS.md)."
        )
    if not isinstance(rule, str) or not rule.strip():
        raise ClaimError(f"claim {id!r} has no rule; state how the verdict is decided.")
    holds = _plain(holds)
    if not isinstance(holds, bool):
        raise ClaimError(f"claim {id!r}: holds must be True or False, got {holds!r}.")
    record = Record(
        id=id,
        claim=text,
        paper_value=_plain(paper),
        ours=_plain(ours),
        holds=holds,
        rule=rule,
        source=source,
        timing=bool(timing),
    )
    claims_made.append(record)
    verdict = "held" if holds else "did not hold"
    colour = "#1a7f37" if holds else "#b42318"
    row = (
        f'<div class="attnkit-claim" style="border-left:4px solid {colour};padding:4px 8px;'
        f'margin:4px 0"><b>{html.escape(id)}</b>: {html.escape(text)}<br>'
        f"paper: {html.escape(format_value(record['paper_value']))} · ours: "
        f"{html.escape(format_value(record['ours']))} · "
        f'<b style="color:{colour}">{verdict}</b> '
        f"<small>(rule: {html.escape(rule)}; source: {html.escape(source)})</small></div>"
    )
    plain = f"[{verdict}] {id}: paper {format_value(record['paper_value'])}, ours {format_value(record['ours'])}"
    _display({CLAIM_MIME: record, "text/html": row, "text/plain": plain})
    return record


def used_data(
    name: str, origin: str, *, synthetic: bool = False, warning: str | None = None
) -> dict[str, Any]:
    """Record which data a notebook used; a synthetic fallback is shown as a warning."""
    record = Record(name=name, origin=origin, synthetic=bool(synthetic), warning=warning)
    data_used.append(record)
    if synthetic:
        message = warning or f"{name}: real data not found, using synthetic data ({origin})."
        body = (
            '<div class="attnkit-warning" style="background:#fff4e5;border-left:4px solid '
            f'#b54708;padding:4px 8px">⚠ {html.escape(message)}</div>'
        )
        plain = f"WARNING: {message}"
    else:
        body = f'<div class="attnkit-data"><small>data: {html.escape(name)} from {html.escape(origin)}</small></div>'
        plain = f"data: {name} from {origin}"
    if not _display({DATA_MIME: record, "text/html": body, "text/plain": plain}) and synthetic:
        warnings.warn(plain, stacklevel=2)
    return record
