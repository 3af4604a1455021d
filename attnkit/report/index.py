"""The report's front page: summary of verdicts over seeds, scorecard, notebooks, provenance.

Offline like every page: inline styles and SVG, no script, nothing fetched; every text that
comes from notebooks or data is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from attnkit.record import VERDICT_COLOURS, format_value
from attnkit.report.aggregate import over_seeds_text
from attnkit.report.results import NotebookResult
from attnkit.report.strip import strip_svg

VERDICT_ORDER = ("held", "mixed", "did not hold", "inconclusive")
RULE_TEXT = (
    "Per seed a claim <b>held</b>, <b>did not hold</b>, or was <b>inconclusive</b> (a "
    "precondition failed, e.g. the model missed its quality gate; the reason is shown). Over "
    "the seeds: <b>held</b> when it held on every seed where it was conclusive and was "
    "conclusive on more than half of them; <b>did not hold</b> likewise for failing; "
    "<b>mixed</b> when it held on some seeds and failed on others; <b>inconclusive</b> "
    "otherwise. A seed whose notebook failed counts as not conclusive. Values: mean ± standard "
    "deviation over seeds and the 95 % percentile-bootstrap interval of the mean (from 3 seeds)."
)

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
  max-width: 1200px; padding: 0 1em; color: #1f2328; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.ok, .v-held { color: #1a7f37; font-weight: 600; }
.failed, .v-did-not-hold { color: #b42318; font-weight: 600; }
.v-mixed { color: #b54708; font-weight: 600; } .v-inconclusive { color: #8250df; font-weight: 600; }
.warn { color: #b54708; } .muted { color: #656d76; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
details { margin: 0.4em 0; }
nav.toc { margin: 0.6em 0 1em; } .headline { font-size: 1.15em; }
table.summary { width: auto; min-width: 50%; } td.num { text-align: right; white-space: nowrap; }
.bar { display: inline-flex; width: 160px; height: 0.8em; background: #eaeef2;
  border-radius: 3px; overflow: hidden; vertical-align: middle; }
.bar span { display: block; height: 100%; }
ul.claims-summary { columns: 2; font-size: 0.92em; } ul.claims-summary li { break-inside: avoid; }
svg.strip { display: block; }
"""


def verdict_badge(verdict: str, text: str | None = None) -> str:
    css = "v-" + verdict.replace(" ", "-")
    return f'<span class="{css}">{html.escape(text or verdict)}</span>'


def _anchor(*parts: Any) -> str:
    text = "-".join(str(p) for p in parts).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "none"


def _bar(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return ""
    spans = "".join(
        f'<span style="width:{100 * counts[v] / total:.1f}%;background:{VERDICT_COLOURS[v]}"></span>'
        for v in VERDICT_ORDER
        if counts.get(v)
    )
    title = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if counts.get(v))
    return f'<span class="bar" title="{html.escape(title)}">{spans}</span>'


def _summary(results: list[NotebookResult], verdicts: list[dict[str, Any]]) -> str:
    """Claims by verdict over seeds, overall and per paper; then every claim in one line."""
    if not verdicts:
        return '<h2 id="summary">Summary</h2><p class="muted">No claims were recorded.</p>'
    overall = {v: sum(c["verdict"] == v for c in verdicts) for v in VERDICT_ORDER}
    seeds = max(c["seeds"] for c in verdicts)
    headline = (
        f"<p class='headline'><b>{overall['held']} of {len(verdicts)}</b> claims held over "
        f"{seeds} seed(s)"
        + "".join(f", {overall[v]} {v}" for v in VERDICT_ORDER[1:] if overall[v])
        + ".</p>"
    )
    rows, items = [], []
    by_paper: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for claim in verdicts:
        by_paper[claim["paper"] or claim["notebook"]].append(claim)
    failed = {r.name for r in results if r.status != "ok"}
    for paper, claims in by_paper.items():
        counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICT_ORDER}
        cells = "".join(f"<td class='num'>{counts[v]}</td>" for v in VERDICT_ORDER)
        note = (
            ' <span class="failed">(a notebook run failed)</span>'
            if {c["notebook"] for c in claims} & failed
            else ""
        )
        rows.append(
            f"<tr><td><a href='#{_anchor('paper', paper)}'>{html.escape(paper)}</a>{note}</td>"
            f"{cells}<td>{_bar(counts)}</td></tr>"
        )
        for c in claims:
            items.append(
                f"<li><a href='#{_anchor('claim', c['notebook'], c['id'])}'>"
                f"{html.escape(c['id'])}</a>: {verdict_badge(c['verdict'], over_seeds_text(c))}</li>"
            )
    header = "".join(f"<th>{v}</th>" for v in VERDICT_ORDER)
    return (
        '<h2 id="summary">Summary</h2>'
        + headline
        + f"<p class='muted'>{RULE_TEXT}</p>"
        + f"<table class='summary'><tr><th>paper</th>{header}<th></th></tr>"
        + "".join(rows)
        + "</table><ul class='claims-summary'>"
        + "".join(items)
        + "</ul>"
    )


def _value_cell(c: dict[str, Any]) -> str:
    if c["value_mean"] is None:
        return '<span class="muted">no value</span>'
    text = format_value(c["value_mean"])
    if c["value_std"] is not None:
        text += f" ± {format_value(c['value_std'])}"
    if c["value_ci95"] is not None:
        low, high = c["value_ci95"]
        text += (
            f"<br><span class='muted'>95 % CI [{format_value(low)}, {format_value(high)}]</span>"
        )
    if c.get("threshold") is not None:
        text += f"<br><span class='muted'>threshold {format_value(c['threshold'])}</span>"
    return text


def _ours_cell(c: dict[str, Any]) -> str:
    if len(c["per_seed"]) == 1 and not c["missing_seeds"]:
        only = c["per_seed"][0]
        reason = (
            f"<br><span class='muted'>{html.escape(only['reason'])}</span>"
            if only["reason"]
            else ""
        )
        return html.escape(format_value(only["ours"])) + reason
    lines = []
    for p in c["per_seed"]:
        reason = f" — {html.escape(p['reason'])}" if p["reason"] else ""
        lines.append(
            f"seed {p['seed']}: {html.escape(format_value(p['ours']))} "
            f"{verdict_badge(p['verdict'], '●')}<span class='muted'>{reason}</span>"
        )
    lines += [f"seed {s}: <span class='failed'>notebook failed</span>" for s in c["missing_seeds"]]
    return "<br>".join(lines)


def _scorecard(verdicts: list[dict[str, Any]]) -> str:
    parts = [
        "<h2 id='scorecard'>Reproduction scorecard</h2>",
        "<p>Each claim with the paper's number beside ours, per seed, and the verdict over "
        "seeds. Magnitudes differ at small scale; each verdict follows the rule stated beside "
        "it. The strip shows each seed's value (colour: that seed's verdict) against the rule's "
        "threshold (dashed).</p>",
    ]
    if not verdicts:
        return parts[0] + "<p class='muted'>No claims were recorded.</p>"
    by_paper: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for claim in verdicts:
        by_paper[claim["paper"] or claim["notebook"]].append(claim)
    for paper, claims in by_paper.items():
        held = sum(c["verdict"] == "held" for c in claims)
        parts.append(
            f"<h3 id='{_anchor('paper', paper)}'>{html.escape(paper)} "
            f"<span class='muted'>({held}/{len(claims)} held over seeds)</span></h3>"
            "<table class='claims'><tr><th>claim</th><th>paper</th><th>ours</th>"
            "<th>value over seeds</th><th>per seed</th><th>verdict</th><th>rule</th>"
            "<th>source</th></tr>"
        )
        for c in claims:
            timing = "<br><span class='muted'>(wall-clock timing)</span>" if c["timing"] else ""
            parts.append(
                f"<tr id='{_anchor('claim', c['notebook'], c['id'])}'>"
                f"<td><b>{html.escape(c['id'])}</b><br>{html.escape(c['claim'])}{timing}</td>"
                f"<td>{html.escape(format_value(c['paper_value']))}</td>"
                f"<td>{_ours_cell(c)}</td><td>{_value_cell(c)}</td>"
                f"<td>{strip_svg(c['per_seed'], c.get('threshold'))}</td>"
                f"<td>{verdict_badge(c['verdict'], over_seeds_text(c))}</td>"
                f"<td>{html.escape(c['rule'])}</td><td>{html.escape(c['source'])}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def _data_cell(runs: list[NotebookResult]) -> str:
    seen, items = set(), []
    for record in (d for r in runs for d in r.data):
        key = (record["name"], record.get("synthetic", False), record["origin"])
        if key in seen:
            continue
        seen.add(key)
        text = f"{html.escape(record['name'])}: {html.escape(record['origin'])}"
        if record.get("synthetic"):
            reason = html.escape(record.get("warning") or "real data not found")
            text = f'<span class="warn">⚠ synthetic — {text}</span><br><span class="muted">{reason}</span>'
        items.append(text)
    return "<br>".join(items) or '<span class="muted">none recorded</span>'


def _run_line(r: NotebookResult) -> str:
    status = (
        '<span class="ok">ok</span>' if r.status == "ok" else '<span class="failed">failed</span>'
    )
    if r.reused:
        status += ' <span class="muted">(reused: unchanged since the previous report)</span>'
    if r.carried_over:
        status += ' <span class="muted">(previous run, not in --only)</span>'
    page = f'<a href="{html.escape(r.html)}">page</a>' if r.html else "no page"
    if r.ipynb:
        page += f' · <a href="{html.escape(r.ipynb)}">ipynb</a>'
    return f"seed {r.seed}: {status} in {r.seconds:.1f} s · {page}"


def _notebook_rows(results: list[NotebookResult]) -> str:
    grouped: dict[str, list[NotebookResult]] = defaultdict(list)
    for r in results:
        grouped[r.name].append(r)
    rows = []
    for name, runs in grouped.items():
        first = runs[0]
        title = html.escape(first.title or name)
        rows.append(
            f"<tr><td>{title}<br><span class='muted'>{html.escape(first.paper)}</span></td>"
            f"<td>{'<br>'.join(_run_line(r) for r in runs)}</td>"
            f"<td>{html.escape(first.profile)}</td><td>{_data_cell(runs)}</td></tr>"
        )
    return "\n".join(rows)


def _errors(results: list[NotebookResult]) -> str:
    failed = [r for r in results if r.status != "ok" and r.error]
    if not failed:
        return ""
    parts = ['<h2 id="failures">Failures</h2>']
    for r in failed:
        e = r.error
        where = f"cell {e['cell']}" if e.get("cell") is not None else "runner"
        parts.append(
            f"<h3>{html.escape(r.name)} (seed {r.seed}) — {html.escape(e['ename'])} in {where}</h3>"
            f"<p>{html.escape(e['evalue'])}</p>"
            + (
                f"<details><summary>cell source</summary><pre>{html.escape(e['source'])}</pre></details>"
                if e.get("source")
                else ""
            )
            + f"<details open><summary>traceback</summary><pre>{html.escape(e['traceback'])}</pre></details>"
        )
    return "\n".join(parts)


def _provenance(facts: dict[str, Any]) -> str:
    git = facts["git"]
    commit = (
        f"{html.escape(git['commit'])}{' (with uncommitted changes)' if git['dirty'] else ''}"
        if git.get("commit")
        else html.escape(git.get("note", "unknown"))
    )
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items() if v)
    threads = facts["threads"]
    rows = [
        ("commit", commit),
        ("attnkit", html.escape(facts["attnkit"])),
        ("python", html.escape(facts["python"])),
        ("packages", html.escape(packages)),
        ("machine", html.escape(f"{facts['cpu']} · {facts['cores']} cores · {facts['platform']}")),
        ("GPU", html.escape(", ".join(facts["gpu"]) or "none")),
        ("device", html.escape(facts["device"])),
        (
            "threads",
            html.escape(
                f"{threads['jobs']} job(s) at a time, {threads['torch_threads_per_task']} torch "
                f"thread(s) per task"
                + (f" on Dask at {facts['cluster']}" if facts["cluster"] else "")
            ),
        ),
        (
            "determinism",
            html.escape("; ".join(f"{k}: {v}" for k, v in facts["determinism"].items())),
        ),
        (
            "profile · seeds",
            html.escape(f"{facts['profile']} · {', '.join(map(str, facts['seeds']))}"),
        ),
        ("data directory", html.escape(str(facts["data_dir"]))),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    files = "".join(
        f"<tr><td>{html.escape(f['path'])}</td><td><code>{f['sha256']}</code></td>"
        f"<td>{len(f['read_by'])} run(s)</td></tr>"
        for f in facts["data_files"]
    )
    tasks = "".join(
        f"<tr><td>{html.escape(t['notebook'])}</td><td>{t['seed']}</td><td>{html.escape(t['status'])}</td>"
        f"<td>{html.escape(t['host'] or '—')}</td><td>{html.escape(t['started'] or '—')}</td>"
        f"<td class='num'>{t['seconds']:.1f} s</td><td>{t['attempts']}</td></tr>"
        for t in facts["tasks"]
    )
    return (
        "<h2 id='provenance'>Provenance</h2><p class='muted'>Also in provenance.json.</p>"
        f"<table class='summary'>{table}</table>"
        + (
            "<details><summary>data files read (sha256)</summary><table><tr><th>file</th>"
            f"<th>sha256</th><th>read by</th></tr>{files}</table></details>"
            if files
            else "<p class='muted'>No data files were read (synthetic data only).</p>"
        )
        + "<details><summary>tasks</summary><table><tr><th>notebook</th><th>seed</th>"
        "<th>status</th><th>host</th><th>started (UTC)</th><th>wall time</th><th>attempts</th>"
        f"</tr>{tasks}</table></details>"
    )


def render_index(
    results: list[NotebookResult],
    verdicts: list[dict[str, Any]],
    *,
    profile: str,
    seeds: list[int],
    facts: dict[str, Any] | None = None,
) -> str:
    """The index page of a report."""
    failed = sum(r.status != "ok" for r in results)
    synthetic = any(d.get("synthetic") for r in results for d in r.data)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = []
    if failed:
        notes.append(
            f'<p class="failed">{failed} notebook run(s) failed; see <a href="#failures">Failures</a>.</p>'
        )
    if synthetic:
        notes.append(
            '<p class="warn">⚠ Some notebooks ran on synthetic data, by design or because the real '
            'files were missing (marked in <a href="#notebooks">Notebooks</a>); numbers from '
            "synthetic data are not comparable to the papers'.</p>"
        )
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnkit report — {html.escape(profile)}</title><style>{_STYLE}</style></head>
<body>
<h1>attnkit reproduction report</h1>
<p class="muted">profile <b>{html.escape(profile)}</b> · {seed_text} · built {stamp} ·
{len({r.name for r in results})} notebook(s), {len(results)} run(s)</p>
<nav class="toc"><a href="#summary">Summary</a> · <a href="#scorecard">Scorecard</a> ·
<a href="#notebooks">Notebooks</a>{' · <a href="#failures">Failures</a>' if failed else ""}{' · <a href="#provenance">Provenance</a>' if facts else ""}</nav>
{"".join(notes)}
{_summary(results, verdicts)}
{_scorecard(verdicts)}
<h2 id="notebooks">Notebooks</h2>
<table><tr><th>notebook</th><th>runs</th><th>profile</th><th>data used</th></tr>
{_notebook_rows(results)}
</table>
{_errors(results)}
{_provenance(facts) if facts else ""}
</body></html>
"""
