"""The report in a real browser: headless Chromium opens the index and a notebook page offline.

The pages are opened from the file system, as a reader would open them. Every request that is
not a local file is blocked and counted as a failure, and so are failed loads, HTTP errors,
console errors and uncaught page errors. Screenshots land in `reports/screenshots/` (or
$ATTNKIT_SCREENSHOTS).

It tests `reports/smoke/` when that report exists (`.ci/run` builds it before the tests); without
it, it builds a small report from a fixture notebook so the test still exercises the page
template. Without Chromium or playwright the test is skipped with the reason, never passed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import write_notebook
from nbformat.v4 import new_markdown_cell

from attnkit.report import run_report

REPO = Path(__file__).resolve().parent.parent
SMOKE_REPORT = REPO / "reports" / "smoke"
# The flags the report is checked with: no sandbox (CI runs as root), no GPU, and no background
# traffic, so any network request the browser makes comes from the page itself.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PREFERRED_PAGE = "abnar2020_attention_flow.html"  # the paper page with the most figures
SHOT_HEIGHT = 2000  # px of a notebook page kept in its screenshot


def find_chromium() -> str | None:
    """$ATTNKIT_CHROMIUM, else Debian's `chromium` (or `chromium-browser`, `google-chrome`)."""
    explicit = os.environ.get("ATTNKIT_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]' installs it")
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "Chromium is not installed: `apt-get install chromium` (Debian; .ci/run does this) "
            "or point $ATTNKIT_CHROMIUM at a Chromium binary"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


FIXTURE_CELLS = [
    "import attnkit\nimport numpy as np\nfrom matplotlib.figure import Figure\n"
    "from attnkit import plots",
    "## A figure\n\nThe curve $y = x^2$ for $x \\in \\{0, \\dots, 4\\}$.",
    "figure = Figure(figsize=(4, 3))\nfigure.subplots().plot(np.arange(5), np.arange(5) ** 2)\n"
    "plots.show_figure(figure, out_dir, 'square', caption='Squares of 0 to 4 <b>not bold</b>.')",
    "## Text from data",
    "print('a token: <script>alert(1)</script>')",
    "attnkit.claim('escape', 'a claim with <script>x</script>', paper=1, ours=1, holds=True, "
    "rule='ours == 1', source='fixture <i>source</i>')",
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    if (SMOKE_REPORT / "index.html").is_file():
        return SMOKE_REPORT
    root = tmp_path_factory.mktemp("browser-report")
    cells = [new_markdown_cell(c) if c.startswith("#") else c for c in FIXTURE_CELLS]
    write_notebook(root / "notebooks", "fixture", cells, paper="Fixture <em>paper</em>")
    results = run_report(
        "smoke", out=root / "report", notebooks_dir=root / "notebooks", progress=False
    )
    assert [r.status for r in results] == ["ok"], results[0].error
    return root / "report"


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("ATTNKIT_SCREENSHOTS", REPO / "reports" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, path: Path):
    """Open a local page with every non-file request blocked; return (page, problems)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)  # local pages: anything slower is a hang
    problems: list[str] = []

    def on_console(message):
        if message.type in ("error", "assert"):
            problems.append(f"console {message.type}: {message.text}")

    def on_request(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            problems.append(f"network request: {url}")
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed load: {r.url} ({r.failure})"))
    page.route("**/*", on_request)
    page.goto(path.resolve().as_uri(), wait_until="load")
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src.slice(0, 80))"
    )
    problems += [f"image did not load: {src}" for src in broken]
    return page, problems


def capture(page, path: Path, **options) -> None:
    """`page.screenshot`, tried a second time when Chromium answers "Unable to capture
    screenshot": that happened twice in `.ci/run` while other jobs loaded the machine, and passed
    when rerun. A page that cannot be captured twice in a row still fails the test."""
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(path), **options)
    except Error as error:
        if "Unable to capture screenshot" not in str(error):
            raise
        page.wait_for_timeout(1000)
        page.screenshot(path=str(path), **options)


def check_screenshot(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 400, f"{path} is only {width}x{height}"


def notebook_page(report: Path) -> Path:
    for name in (PREFERRED_PAGE, PREFERRED_PAGE.replace(".html", ".seed0.html")):
        if (report / name).is_file():
            return report / name
    saved = json.loads((report / "results.json").read_text())
    pages = [entry["html"] for entry in saved["notebooks"] if entry.get("html")]
    assert pages, f"{report} has no notebook page"
    return report / pages[0]


def test_index_page(browser, report_dir, screenshots):
    page, problems = open_page(browser, report_dir / "index.html")
    shot = screenshots / "index.png"
    capture(page, shot, full_page=True)
    assert problems == []
    check_screenshot(shot)

    claims = json.loads((report_dir / "verdicts.json").read_text())
    held = sum(claim["verdict"] == "held" for claim in claims)
    # The page opens with the summary: claims held over seeds / total, then one row per paper.
    first_heading = page.locator("h2").first
    assert first_heading.inner_text() == "Summary"
    assert f"{held} of {len(claims)} claims held" in page.locator(".headline").inner_text()
    papers = {claim["paper"] or claim["notebook"] for claim in claims}
    assert page.locator("table.summary").first.locator("tr").count() == 1 + len(papers)
    # The scorecard: one section per paper, our number beside the paper's in each row, and a
    # strip of per-seed values for every claim that records one.
    assert page.locator("#scorecard ~ h3").count() == len(papers)
    claim_rows = page.locator("table.claims tr:has(td)")
    assert claim_rows.count() == len(claims)
    headers = page.locator("table.claims").first.locator("th").all_inner_texts()
    assert headers[:3] == ["claim", "paper", "ours"]
    with_values = sum(claim["value_mean"] is not None for claim in claims)
    assert page.locator("table.claims svg.strip").count() == with_values
    assert page.locator("#provenance").count() == 1
    # Text from notebooks is shown as text, never run: no script element on the page.
    assert page.locator("script").count() == 0
    page.close()


def test_notebook_page(browser, report_dir, screenshots):
    path = notebook_page(report_dir)
    page, problems = open_page(browser, path)
    shot = screenshots / "notebook.png"
    # The top of the page (a whole paper page is 11,000 px tall: a 57 MB bitmap that Chromium
    # failed to capture on a loaded machine, "Unable to capture screenshot"; 4,000 px failed too).
    height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)
    capture(page, shot, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height})
    assert problems == []
    check_screenshot(shot)

    # A table of contents whose links reach headings on the page.
    toc_links = page.locator("nav.attnkit-toc a")
    assert toc_links.count() >= 2
    target = toc_links.nth(1).get_attribute("href")
    toc_links.nth(1).click()
    assert page.evaluate("location.hash") == target
    assert page.evaluate(
        "h => document.getElementById(decodeURIComponent(h.slice(1))) !== null", target
    )

    # Code is hidden until the toggle is pressed.
    code = page.locator(".jp-CodeCell .jp-Cell-inputWrapper").first
    assert not code.is_visible()
    page.locator("label[for=attnkit-show-code]").click()
    assert code.is_visible()

    # Figures are numbered and captioned.
    captions = page.locator("figure.attnkit-figure figcaption")
    assert captions.count() >= 1
    numbers = [text.split(".")[0] for text in captions.all_inner_texts()]
    assert numbers == [f"Figure {n}" for n in range(1, captions.count() + 1)]
    assert page.locator("figure.attnkit-figure img").first.evaluate("i => i.naturalWidth") > 0

    # Formulas are MathML the browser lays out, not raw LaTeX.
    text = page.locator("main").inner_text()
    assert "$\\" not in text
    assert page.locator("math").count() >= 1

    # Text from data is shown as text: the page has no script element at all.
    assert page.locator("script").count() == 0
    if report_dir != SMOKE_REPORT:  # the fixture prints a script tag and a bold tag as data
        assert "<script>alert(1)</script>" in text
        assert "<b>not bold</b>" in captions.first.inner_text()

    # The way back to the index works.
    page.locator(".attnkit-bar a").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html")
    page.close()


def test_every_notebook_page_loads_cleanly(browser, report_dir):
    """Every page of the report: no failed load or console error, contents, captioned images."""
    pages = sorted(p for p in report_dir.glob("*.html") if p.name != "index.html")
    assert pages
    for path in pages:
        page, problems = open_page(browser, path)
        assert problems == [], f"{path.name}: {problems}"
        assert page.locator("nav.attnkit-toc a").count() >= 2, path.name
        images = page.locator("main img").count()
        assert page.locator("figure.attnkit-figure figcaption").count() == images, path.name
        assert page.locator("script").count() == 0, path.name
        page.close()


def test_explain_page_opens_cleanly(browser, tmp_path, screenshots):
    """`attnkit explain ... --out page.html` (issue 14): opens from disk, nothing fetched, no
    console error, no script, every image inline and loaded."""
    from attnkit.cli import main

    out = tmp_path / "page.html"
    text = "The keys to the cabinet are on the table."
    assert main(["explain", "--model", "minilm", "--text", text, "--out", str(out)]) == 0
    page, problems = open_page(browser, out)
    assert problems == []
    assert page.locator("script").count() == 0
    assert page.locator("span.tok").count() >= 6 * 12  # six methods x the sentence's tokens
    assert page.locator("img").count() >= 1  # the flow graph of a short text
    shot = screenshots / "explain.png"
    page.screenshot(path=str(shot), full_page=True)
    check_screenshot(shot)
    page.close()
