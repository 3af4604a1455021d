"""One offline HTML page per executed notebook (the index is `attnkit.report.index`).

Every page is self-contained: images are inline data URIs, styles are inline, and no script,
style sheet or font is fetched from the network (MathJax, require.js and mermaid are left out).
All text that comes from notebooks or data is HTML-escaped.
"""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

import nbformat

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
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
        if cell.get("outputs"):
            # Progress bars (tqdm.auto) are widgets, which need a live kernel; their text form
            # is frozen at the state they were created in (0 %), so the page leaves them out.
            cell.outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
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
