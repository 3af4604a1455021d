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
from collections.abc import Mapping
from typing import Any

from attnkit.errors import AttnkitError

CLAIM_MIME = "application/vnd.attnkit.claim+json"
DATA_MIME = "application/vnd.attnkit.data+json"


class Record(dict):
    """A claim or data record: a plain dict that IPython does not echo, since it was shown."""

    def _ipython_display_(self) -> None:
        pass


class ClaimError(AttnkitError):
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


VERDICTS = ("held", "did not hold", "inconclusive")


def _finite_value(id: str, value: Any) -> float | None:
    """The number a claim's rule tests, as a finite float (None when the claim has none)."""
    if value is None:
        return None
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ClaimError(
            f"claim {id!r}: value must be the number the rule tests (a finite float), got "
            f"{value!r}. Pass e.g. value=roll - raw, and put readable text in ours=."
        )
    if not math.isfinite(float(value)):
        raise ClaimError(
            f"claim {id!r}: value is {float(value)}, not a finite number. A rule that cannot be "
            "computed makes the claim inconclusive: say why in requires=."
        )
    return float(value)


def _requirements(id: str, requires: Any) -> dict[str, bool]:
    """`requires` as {precondition: met}; a bare bool becomes one unnamed precondition."""
    if requires is None:
        return {}
    if isinstance(requires, Mapping):
        items = list(requires.items())
    else:
        items = [("the claim's precondition", requires)]
    checked = {}
    for what, met in items:
        met = _plain(met)
        if not isinstance(met, bool):
            raise ClaimError(
                f"claim {id!r}: requires[{what!r}] must be True or False, got {met!r}. Write the "
                "precondition as a comparison, e.g. requires={'accuracy ≥ 0.90': acc >= 0.90}."
            )
        if not isinstance(what, str) or not what.strip():
            raise ClaimError(f"claim {id!r}: each precondition in requires needs a name (a str).")
        checked[what] = met
    return checked


def claim(
    id: str,
    text: str,
    *,
    paper: Any,
    ours: Any,
    holds: bool | None,
    rule: str,
    source: str,
    value: float | None = None,
    requires: bool | Mapping[str, bool] | None = None,
    threshold: float | None = None,
    timing: bool = False,
) -> dict[str, Any]:
    """Record one paper claim for the reproduction scorecard.

    Args:
        id: short stable identifier, unique within the notebook (e.g. "rollout-beats-raw").
        text: the claim in words.
        paper: the paper's value (a number, a list, or a short string).
        ours: our value as readable text or a number, computed in this run.
        holds: the verdict of `rule` applied to `value` (and `paper`). May be None only when a
            precondition failed (the rule could not be computed).
        rule: the rule the verdict follows, e.g. "ρ(rollout) − ρ(raw) ≥ 0.1 at the last layer".
        source: where the paper's value comes from (table, figure, section; see CLAIMS.md).
        value: the number the rule tests (a finite float); the report aggregates it over seeds.
        requires: the preconditions under which the claim can be tested at all, as a bool or
            {"what": bool}, e.g. {"test accuracy ≥ 0.90": acc >= 0.90}. When one is False the
            verdict is "inconclusive" and the failing preconditions are the reason.
        threshold: the number the rule compares `value` with (e.g. 0.1 in "value > 0.1"); the
            report draws it beside the per-seed values.
        timing: `value` is a wall-clock measurement (a speed ratio), which differs from run to
            run; the report's same-seed reproducibility check leaves its value and verdict out.

    Returns the record, with `verdict` ("held" | "did not hold" | "inconclusive"), `reason`
    and `holds` (True / False / None for inconclusive). Raises `ClaimError` for a missing
    source, a non-boolean verdict or precondition, or a value that is not a finite number.
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
    number = _finite_value(id, value)
    limit = _finite_value(id, threshold)
    requirements = _requirements(id, requires)
    failed = [what for what, met in requirements.items() if not met]
    holds = _plain(holds)
    if holds is None and not failed:
        raise ClaimError(
            f"claim {id!r}: holds is None, but every precondition was met. Compute the rule, or "
            "name the precondition that kept it from being tested in requires=."
        )
    if holds is not None and not isinstance(holds, bool):
        raise ClaimError(f"claim {id!r}: holds must be True or False, got {holds!r}.")
    if failed:
        verdict, reason, holds = "inconclusive", "not met: " + "; ".join(failed), None
    else:
        verdict, reason = ("held" if holds else "did not hold"), ""
    record = Record(
        id=id,
        claim=text,
        paper_value=_plain(paper),
        ours=_plain(ours),
        value=number,
        threshold=limit,
        holds=holds,
        verdict=verdict,
        reason=reason,
        requires=requirements,
        rule=rule,
        source=source,
        timing=bool(timing),
    )
    colour = VERDICT_COLOURS[verdict]
    because = f"<br><small>{html.escape(reason)}</small>" if reason else ""
    row = (
        f'<div class="attnkit-claim" style="border-left:4px solid {colour};padding:4px 8px;'
        f'margin:4px 0"><b>{html.escape(id)}</b>: {html.escape(text)}<br>'
        f"paper: {html.escape(format_value(record['paper_value']))} · ours: "
        f"{html.escape(format_value(record['ours']))} · "
        f'<b style="color:{colour}">{verdict}</b>{because} '
        f"<small>(rule: {html.escape(rule)}; source: {html.escape(source)})</small></div>"
    )
    plain = f"[{verdict}] {id}: paper {format_value(record['paper_value'])}, ours {format_value(record['ours'])}"
    if reason:
        plain += f" ({reason})"
    _display({CLAIM_MIME: record, "text/html": row, "text/plain": plain})
    return record


VERDICT_COLOURS = {
    "held": "#1a7f37",
    "did not hold": "#b42318",
    "inconclusive": "#8250df",
    "mixed": "#b54708",
}


def used_data(
    name: str, origin: str, *, synthetic: bool = False, warning: str | None = None
) -> dict[str, Any]:
    """Record which data a notebook used; a synthetic fallback is shown as a warning."""
    record = Record(name=name, origin=origin, synthetic=bool(synthetic), warning=warning)
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
