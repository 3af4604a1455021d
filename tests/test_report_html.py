"""The report's HTML: index summary, escaping of data text, contents, figure numbers, MathML."""

import re
import xml.etree.ElementTree as ET

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from attnkit.report import NotebookResult, scorecard_rows, verdicts
from attnkit.report.index import render_index
from attnkit.report.pages import (
    latex_to_mathml,
    number_figures,
    render_notebook_html,
    table_of_contents,
)

SCRIPT = "<script>alert('x')</script>"


def result(name: str, paper: str, holds: list[bool], **extra) -> NotebookResult:
    claims = [
        {
            "id": f"{name}-{i}",
            "claim": f"claim {i} {SCRIPT}",
            "paper_value": 0.5,
            "ours": [0.25, SCRIPT],
            "holds": h,
            "rule": "ours < 1 & > 0",
            "source": f"{paper}, Table {i}",
        }
        for i, h in enumerate(holds)
    ]
    return NotebookResult(
        name=name, status="ok", seconds=1.0, profile="smoke", seed=0, paper=paper,
        title=name, claims=claims, html=f"{name}.html", **extra,
    )  # fmt: skip


@pytest.fixture
def index_html() -> str:
    results = [
        result("a", "Paper A", [True, False, True]),
        result(
            "b",
            f"Paper B {SCRIPT}",
            [False],
            data=[{"name": SCRIPT, "origin": "<b>file</b>", "synthetic": True, "warning": SCRIPT}],
        ),
    ]
    claims = verdicts(scorecard_rows(results), [0])
    return render_index(results, claims, profile="smoke", seeds=[0])


def test_index_opens_with_the_summary(index_html):
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", index_html)
    assert headings[:3] == ["Summary", "Reproduction scorecard", "Notebooks"]
    assert "<b>2 of 4</b> claims held" in index_html
    summary = index_html.split('id="summary"')[1].split("id='scorecard'")[0]
    # columns: held, mixed, did not hold, inconclusive
    assert (
        "Paper A</a></td><td class='num'>2</td><td class='num'>0</td><td class='num'>1</td>"
        in summary
    )
    assert re.search(
        r"Paper B.*?</a></td><td class='num'>0</td><td class='num'>0</td><td class='num'>1</td>",
        summary,
    )
    assert "held on 1/1" in summary and "did not hold on 1/1" in summary


def test_text_from_notebooks_and_data_is_escaped(index_html):
    # Claims, values, paper names, dataset names and warnings all come from notebooks or data.
    assert "<script>" not in index_html
    assert index_html.count("&lt;script&gt;") >= 6
    assert "&lt;b&gt;file&lt;/b&gt;" in index_html
    assert "ours &lt; 1 &amp; &gt; 0" in index_html


def test_scorecard_puts_ours_beside_the_paper(index_html):
    table = index_html.split("class='claims'")[1].split("</table>")[0]
    headers = re.findall(r"<th>(.*?)</th>", table)
    assert headers[:3] == ["claim", "paper", "ours"]
    assert "<td>0.5</td><td>0.25, &lt;script&gt;" in table


def test_table_of_contents_lists_h2_and_h3_with_their_anchors():
    body = (
        '<h1 id="T">Title<a class="anchor-link" href="#T">¶</a></h1>'
        '<h2 id="One">One &amp; <em>two</em><a class="anchor-link" href="#One">¶</a></h2>'
        '<h3 id="Sub">Sub<a class="anchor-link" href="#Sub">¶</a></h3>'
        '<h4 id="Deep">Deep</h4>'
    )
    toc = table_of_contents(body)
    assert re.findall(r'href="(#[^"]+)"', toc) == ["#One", "#Sub"]
    assert "One &amp; two" in toc and "¶" not in toc and "Title" not in toc
    assert table_of_contents('<h2 id="x">only one</h2>') == ""


def test_figures_are_numbered_in_order():
    body = "<figure><figcaption>a</figcaption></figure><p/><figure><figcaption>b</figcaption>"
    assert re.findall(r"<b>(Figure \d+)\.</b> (\w)", number_figures(body)) == [
        ("Figure 1", "a"),
        ("Figure 2", "b"),
    ]


def test_latex_becomes_mathml_and_code_is_left_alone():
    converted = latex_to_mathml(r"rollout $\hat A = \tfrac12 A$, cost `$HOME`, 5\$ and $$x^2$$")
    maths = re.findall(r"<math.*?</math>", converted)
    assert len(maths) == 2
    for math in maths:  # well-formed XML, as browsers need for MathML
        ET.fromstring(math)
    assert 'display="inline"' in maths[0] and 'display="block"' in maths[1]
    assert "`$HOME`" in converted and r"5\$" in converted
    # TeX that latex2mathml cannot parse is shown as escaped code rather than lost.
    assert latex_to_mathml(r"bad $\left< x^$ end") == r"bad <code>\left&lt; x^</code> end"


def test_notebook_page_has_contents_captions_and_no_raw_tex():
    figure = new_output(
        "display_data",
        data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
        metadata={"attnkit": {"caption": f"A caption {SCRIPT}", "name": "f"}},
    )
    plain = new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    progress = new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
            "text/plain": "epochs:   0%|          | 0/3",
        },
    )
    cells = [
        new_markdown_cell("# Title\n\nIntro with $a_t$."),
        new_markdown_cell("## First"),
        new_code_cell("show()", outputs=[figure, plain, progress]),
        new_markdown_cell("## Second"),
        new_code_cell(f"print({SCRIPT!r})", outputs=[new_output("stream", text=SCRIPT)]),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    page = render_notebook_html(nbformat.from_dict(notebook), title="t")
    main = page.split("<main>")[1]
    assert main.index("attnkit-toc") > main.index("</h1>")  # contents sit under the title
    assert re.findall(r'<li class="toc-h2"><a href="#([^"]+)"', page) == ["First", "Second"]
    assert page.count("<figcaption>") == 1  # only the captioned figure
    assert "<b>Figure 1.</b> A caption &lt;script&gt;" in page
    assert 'alt="A caption &lt;script&gt;' in page
    assert "<script" not in page and "<math" in page and "$a_t$" not in page
    # A progress-bar widget's text is its state when it was created (0 %): left out.
    assert "epochs:" not in page
