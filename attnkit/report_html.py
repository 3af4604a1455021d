"""HTML for the report: one offline page per executed notebook, and the index with the scorecard.

Every page is self-contained: images are inline data URIs, styles are inline, and no script,
style sheet or font is fetched from the network (MathJax, require.js and mermaid are left out).
All text that comes from notebooks or data is HTML-escaped.
"""

from __future__ import annotations

import html
import itertools
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from attnkit.record import format_value

if TYPE_CHECKING:
    from attnkit.report import NotebookResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def render_notebook_html(notebook: nbformat.NotebookNode, title: str) -> str:
    """Convert an executed notebook to one offline HTML page (code hidden behind a toggle)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="attnkit_offline",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    # Belt and braces: the template drops these scripts, and empty URLs keep any that remain inert.
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.jupyter_widgets_base_url = ""
    notebook = nbformat.from_dict(notebook)
    notebook.metadata["title"] = title
    notebook.metadata.pop("widgets", None)  # widget state: only a live kernel can use it
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = latex_to_mathml(cell.source)
        for output in cell.get("outputs", []):
            # Progress bars (tqdm.auto) are widgets, which need a live kernel; a static page
            # shows their text form instead of an inert widget script.
            output.get("data", {}).pop(WIDGET_MIME, None)
    body, _ = exporter.from_notebook_node(notebook)
    body = number_figures(body)
    contents = table_of_contents(body)
    if "</h1>" in body:  # under the notebook's title; else where the template left room
        body = body.replace(TOC_MARKER, "", 1).replace("</h1>", "</h1>" + contents, 1)
    return body.replace(TOC_MARKER, contents, 1)


def number_figures(body: str) -> str:
    """Prefix each figure caption with "Figure N." in page order."""
    counter = itertools.count(1)
    return re.sub("<figcaption>", lambda _: f"<figcaption><b>Figure {next(counter)}.</b> ", body)


# Code (fenced blocks and inline spans) is left alone; $$...$$ is display math, $...$ inline.
_CODE_OR_MATH = re.compile(
    r"(```.*?```|`[^`\n]*`)|(?<!\\)\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S
)


def latex_to_mathml(markdown: str) -> str:
    """Replace the `$...$` / `$$...$$` LaTeX in a markdown cell by MathML.

    Browsers render MathML natively, so formulas read as formulas without fetching MathJax.
    A formula latex2mathml cannot parse is shown as code.
    """
    from latex2mathml.converter import convert

    def replace(match: re.Match) -> str:
        code, display, inline = match.groups()
        if code is not None:
            return code
        tex = display if display is not None else inline
        try:
            return convert(tex.strip(), display="block" if display is not None else "inline")
        except Exception:  # latex2mathml raises several types for TeX it does not know
            return f"<code>{html.escape(tex)}</code>"

    return _CODE_OR_MATH.sub(replace, markdown)


TOC_MARKER = "<!-- attnkit:toc -->"  # where the page template wants the contents
_HEADING = re.compile(r'<h([23])\s+id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def table_of_contents(body: str) -> str:
    """A `<nav>` listing the page's second- and third-level headings, linked to their anchors.

    nbconvert gives every markdown heading an `id`; the title (h1) is left out. Returns "" for
    a page with fewer than two headings.
    """
    entries = []
    for level, anchor, inner in _HEADING.findall(body):
        # The heading's own text, without the pilcrow anchor link nbconvert appends.
        text = _TAG.sub("", re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.S))
        text = html.unescape(text).strip()
        if text:
            entries.append(
                f'<li class="toc-h{level}"><a href="#{anchor}">{html.escape(text)}</a></li>'
            )
    if len(entries) < 2:
        return ""
    return '<nav class="attnkit-toc"><b>Contents</b><ul>' + "".join(entries) + "</ul></nav>"


_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
  max-width: 1100px; padding: 0 1em; color: #1f2328; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.ok, .held { color: #1a7f37; font-weight: 600; } .failed, .not-held { color: #b42318; font-weight: 600; }
.warn { color: #b54708; } .muted { color: #656d76; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
details { margin: 0.4em 0; }
nav.toc { margin: 0.6em 0 1em; } .headline { font-size: 1.15em; }
table.summary { width: auto; min-width: 50%; } td.num { text-align: right; white-space: nowrap; }
.bar { display: inline-block; width: 160px; height: 0.8em; background: #f3d6d3;
  border-radius: 3px; overflow: hidden; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #4ea96b; }
"""


def _data_cell(result: NotebookResult) -> str:
    if not result.data:
        return '<span class="muted">none recorded</span>'
    items = []
    for record in result.data:
        text = f"{html.escape(record['name'])}: {html.escape(record['origin'])}"
        if record.get("synthetic"):
            reason = html.escape(record.get("warning") or "real data not found")
            text = f'<span class="warn">⚠ synthetic — {text}</span><br><span class="muted">{reason}</span>'
        items.append(text)
    return "<br>".join(items)


def _notebook_rows(results: list[NotebookResult]) -> str:
    rows = []
    for r in results:
        status = (
            '<span class="ok">ok</span>'
            if r.status == "ok"
            else '<span class="failed">failed</span>'
        )
        if r.carried_over:
            status += ' <span class="muted">(previous run)</span>'
        link = (
            f'<a href="{html.escape(r.html)}">{html.escape(r.title or r.name)}</a>'
            if r.html
            else html.escape(r.name)
        )
        if r.ipynb:
            link += f' <span class="muted">(<a href="{html.escape(r.ipynb)}">ipynb</a>)</span>'
        held = sum(bool(c["holds"]) for c in r.claims)
        rows.append(
            f"<tr><td>{link}<br><span class='muted'>{html.escape(r.paper)}</span></td><td>{status}</td>"
            f"<td class='num'>{r.seconds:.1f} s</td><td>{html.escape(r.profile)}</td><td>{_data_cell(r)}</td>"
            f"<td>{held} / {len(r.claims)}</td></tr>"
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
            f"<h3>{html.escape(r.name)} — {html.escape(e['ename'])} in {where}</h3>"
            f"<p>{html.escape(e['evalue'])}</p>"
            + (
                f"<details><summary>cell source</summary><pre>{html.escape(e['source'])}</pre></details>"
                if e.get("source")
                else ""
            )
            + f"<details open><summary>traceback</summary><pre>{html.escape(e['traceback'])}</pre></details>"
        )
    return "\n".join(parts)


def _verdict(holds: bool) -> str:
    if holds:
        return '<span class="held">held</span>'
    return '<span class="not-held">did not hold</span>'


def _paper_anchor(paper: str) -> str:
    return "paper-" + (re.sub(r"[^a-z0-9]+", "-", paper.lower()).strip("-") or "none")


def _summary(results: list[NotebookResult], rows: list[dict[str, Any]]) -> str:
    """Claims held / total overall and per paper, one line per notebook, linked to its claims."""
    held = sum(row["holds"] for row in rows)
    lines = []
    for r in results:
        claims = [row for row in rows if row["notebook"] == r.name]
        paper_held = sum(c["holds"] for c in claims)
        share = paper_held / len(claims) if claims else 0.0
        bar = (
            f'<span class="bar" title="{paper_held} of {len(claims)} held">'
            f'<span style="width:{100 * share:.0f}%"></span></span>'
            if claims
            else ""
        )
        paper = html.escape(r.paper or r.title or r.name)
        name = f'<a href="#{_paper_anchor(r.paper or r.name)}">{paper}</a>' if claims else paper
        status = "" if r.status == "ok" else ' <span class="failed">(notebook failed)</span>'
        page = f'<a href="{html.escape(r.html)}">page</a>' if r.html else ""
        lines.append(
            f"<tr><td>{name}{status}</td><td class='num'>{paper_held} / {len(claims)}</td>"
            f"<td>{bar}</td><td>{page}</td></tr>"
        )
    total = (
        f"<p class='headline'><b>{held} of {len(rows)}</b> claims held from "
        f"{len({row['notebook'] for row in rows})} notebook(s).</p>"
        if rows
        else "<p class='muted'>No claims were recorded.</p>"
    )
    return (
        '<h2 id="summary">Summary</h2>'
        + total
        + "<table class='summary'><tr><th>paper</th><th>claims held</th><th></th><th>notebook</th></tr>"
        + "".join(lines)
        + "</table>"
    )


def _scorecard(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<h2 id='scorecard'>Reproduction scorecard</h2><p class='muted'>No claims were recorded.</p>"
    by_paper: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_paper[row["paper"] or row["notebook"]].append(row)
    parts = [
        "<h2 id='scorecard'>Reproduction scorecard</h2>",
        "<p>Each claim with the paper's number beside ours. Magnitudes differ at small scale; "
        "each verdict follows the rule stated beside it.</p>",
    ]
    for paper, claims in by_paper.items():
        paper_held = sum(c["holds"] for c in claims)
        parts.append(
            f"<h3 id='{_paper_anchor(paper)}'>{html.escape(paper)} "
            f"<span class='muted'>({paper_held}/{len(claims)} held)</span></h3>"
        )
        parts.append(
            "<table class='claims'><tr><th>claim</th><th>paper</th><th>ours</th><th>verdict</th>"
            "<th>rule</th>"
            "<th>source</th></tr>"
        )
        for c in claims:
            parts.append(
                f"<tr><td><b>{html.escape(c['id'])}</b><br>{html.escape(c['claim'])}</td>"
                f"<td>{html.escape(format_value(c['paper_value']))}</td>"
                f"<td>{html.escape(format_value(c['ours']))}</td><td>{_verdict(c['holds'])}</td>"
                f"<td>{html.escape(c['rule'])}</td><td>{html.escape(c['source'])}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def render_index(
    results: list[NotebookResult], rows: list[dict[str, Any]], *, profile: str, seed: int
) -> str:
    """The report's front page: notebooks (status, time, data, link), failures, scorecard."""
    failed = sum(r.status != "ok" for r in results)
    synthetic = any(d.get("synthetic") for r in results for d in r.data)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = []
    if failed:
        notes.append(
            f'<p class="failed">{failed} notebook(s) failed; see <a href="#failures">Failures</a>.</p>'
        )
    if synthetic:
        notes.append(
            '<p class="warn">⚠ Some notebooks ran on synthetic data, by design or because the real '
            'files were missing (marked in <a href="#notebooks">Notebooks</a>); numbers from '
            "synthetic data are not comparable to the papers'.</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnkit report — {html.escape(profile)}</title><style>{_STYLE}</style></head>
<body>
<h1>attnkit reproduction report</h1>
<p class="muted">profile <b>{html.escape(profile)}</b> · seed {seed} · built {stamp} ·
{len(results)} notebook(s)</p>
<nav class="toc"><a href="#summary">Summary</a> · <a href="#scorecard">Scorecard</a> ·
<a href="#notebooks">Notebooks</a>{' · <a href="#failures">Failures</a>' if failed else ""}</nav>
{"".join(notes)}
{_summary(results, rows)}
{_scorecard(rows)}
<h2 id="notebooks">Notebooks</h2>
<table><tr><th>notebook</th><th>status</th><th>run time</th><th>profile</th><th>data used</th><th>claims held</th></tr>
{_notebook_rows(results)}
</table>
{_errors(results)}
</body></html>
"""
