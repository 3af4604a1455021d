"""The report runner: executing notebooks, gathering claims, failures, and safe swapping."""

import json
import re

import pytest
from conftest import write_notebook

from attnkit import cli, report
from attnkit.record import ClaimError, claim
from attnkit.report import NotebookResult, ReportError, run_report, tasks

GOOD = [
    "import attnkit\nfrom pathlib import Path\nimport matplotlib\nmatplotlib.use('Agg')\n"
    "import matplotlib.pyplot as plt",
    "attnkit.used_data('toy', 'synthetic: seed 0', synthetic=True, warning='toy <data> missing')",
    "fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0]); fig.savefig(Path(out_dir) / 'line.png'); plt.show()",
    "attnkit.claim('seed-echo', 'the seed reaches the notebook', paper=7, ours=seed, holds=seed == 7,"
    " rule='ours == 7', source='test fixture')",
    "attnkit.claim('profile-echo', 'profile <b>reaches</b>', paper='smoke', ours=profile,"
    " holds=profile == 'quick', rule='ours == quick', source='test fixture')",
]
BAD = ["x = 1", "raise RuntimeError('boom in cell')"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One real run: a good notebook and a failing one, with papermill and nbconvert."""
    root = tmp_path_factory.mktemp("report")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "good", GOOD)
    write_notebook(notebooks, "bad", BAD)
    out = root / "out"
    results = run_report("smoke", seed=7, out=out, notebooks_dir=notebooks, progress=False)
    return results, out, notebooks


def test_statuses_and_files(built):
    results, out, _ = built
    status = {r.name: r.status for r in results}
    assert status == {"bad": "failed", "good": "ok"}
    for name in ("good", "bad"):
        assert (out / f"{name}.ipynb").is_file()
        assert (out / f"{name}.html").stat().st_size > 1000
    assert (out / "good_files" / "line.png").is_file()
    assert not list(out.parent.glob(".out.building-*"))


def test_scorecard_json(built):
    _, out, _ = built
    rows = json.loads((out / "scorecard.json").read_text())
    assert [r["id"] for r in rows] == ["seed-echo", "profile-echo"]
    keys = {
        "notebook",
        "paper",
        "id",
        "claim",
        "paper_value",
        "ours",
        "holds",
        "rule",
        "source",
        "profile",
        "seed",
        "value",
        "threshold",
        "verdict",
        "reason",
        "timing",
    }
    assert all(set(r) == keys for r in rows)
    seed_row, profile_row = rows
    # parameters reached the notebook through papermill
    assert seed_row["ours"] == 7 and seed_row["holds"] is True
    assert profile_row["ours"] == "smoke" and profile_row["holds"] is False
    assert (
        seed_row["paper"] == "Paper of good"
        and seed_row["profile"] == "smoke"
        and seed_row["seed"] == 7
    )


def test_index_shows_failure_data_and_scorecard(built):
    _, out, _ = built
    index = (out / "index.html").read_text()
    assert "RuntimeError" in index and "boom in cell" in index and "raise RuntimeError" in index
    assert "synthetic" in index and "toy &lt;data&gt; missing" in index
    assert "did not hold" in index and "held" in index
    assert "profile &lt;b&gt;reaches&lt;/b&gt;" in index  # notebook text is escaped
    assert "<b>reaches</b>" not in index


def test_pages_fetch_nothing_from_network(built):
    _, out, _ = built
    for page in out.glob("*.html"):
        text = page.read_text()
        assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text), page.name
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:", text), page.name
        assert "<script src=" not in text, page.name
        assert not re.search(r"import\(\s*[\"']https?:", text), page.name
    good = (out / "good.html").read_text()
    assert "data:image/png;base64," in good  # figures are inline


def test_cli_exit_code_nonzero_on_failure(built, tmp_path):
    _, _, notebooks = built
    code = cli.main(
        [
            "report",
            "--profile",
            "smoke",
            "--notebooks",
            str(notebooks),
            "--only",
            "bad",
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ]
    )
    assert code == 1


def test_unknown_profile_and_notebook(built, tmp_path):
    _, _, notebooks = built
    with pytest.raises(ReportError, match="unknown profile 'fast'.*smoke, quick, full"):
        run_report("fast", notebooks_dir=notebooks, out=tmp_path / "r")
    with pytest.raises(ReportError, match="unknown notebook.*nope.*Available: bad, good"):
        run_report("smoke", only=["nope"], notebooks_dir=notebooks, out=tmp_path / "r")
    assert cli.main(["report", "--profile", "fast", "--notebooks", str(notebooks)]) == 2


def test_missing_parameters_cell_is_an_error_before_running(tmp_path):
    write_notebook(tmp_path, "plain", ["x = 1"], parameters=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("previous")
    with pytest.raises(ReportError, match="plain.ipynb has no cell tagged 'parameters'"):
        run_report("smoke", notebooks_dir=tmp_path, out=out)
    assert (out / "index.html").read_text() == "previous"


def test_unwritable_output(tmp_path):
    write_notebook(tmp_path, "nb", ["x = 1"])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(ReportError, match="cannot create the report folder"):
        run_report("smoke", notebooks_dir=tmp_path, out=blocker / "report")
    with pytest.raises(ReportError, match="is a file, not a folder"):
        run_report("smoke", notebooks_dir=tmp_path, out=blocker)
    assert blocker.read_text() == "not a folder"


def test_claim_without_source_is_an_error():
    with pytest.raises(ClaimError, match="no source"):
        claim("c", "text", paper=1, ours=1, holds=True, rule="r", source="")
    with pytest.raises(ClaimError, match="holds must be True or False"):
        claim("c", "text", paper=1, ours=1, holds="yes", rule="r", source="s")


def _fake_runner(fail_on: str | None):
    """A stand-in for run_notebook that writes a page, and is interrupted on `fail_on`."""

    def run(path, build_dir, **kwargs):
        if path.stem == fail_on:
            raise KeyboardInterrupt
        stem = kwargs["stem"]
        (build_dir / f"{stem}.html").write_text(f"page of {stem}")
        return NotebookResult(
            path.stem, "ok", 0.1, kwargs["profile"], kwargs["seed"], html=f"{stem}.html"
        )

    return run


def test_interrupted_run_keeps_previous_report(tmp_path, monkeypatch):
    for name in ("a", "b"):
        write_notebook(tmp_path, name, ["x = 1"])
    out = tmp_path / "reports" / "smoke"
    monkeypatch.setattr(tasks, "run_notebook", _fake_runner(None))
    run_report("smoke", notebooks_dir=tmp_path, out=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    monkeypatch.setattr(tasks, "run_notebook", _fake_runner("b"))
    with pytest.raises(KeyboardInterrupt):
        run_report("smoke", notebooks_dir=tmp_path, out=out, seed=3, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["smoke"]  # no half-built folder left


def test_only_carries_over_other_notebooks(tmp_path, monkeypatch):
    for name in ("a", "b"):
        write_notebook(tmp_path, name, ["x = 1"])
    out = tmp_path / "r"
    monkeypatch.setattr(tasks, "run_notebook", _fake_runner(None))
    run_report("smoke", notebooks_dir=tmp_path, out=out, progress=False)
    results = run_report("smoke", only=["a"], notebooks_dir=tmp_path, out=out, progress=False)
    assert [(r.name, r.carried_over) for r in results] == [("a", False), ("b", True)]
    assert (out / "b.html").read_text() == "page of b"


SEEDED = [
    "import time\nimport torch\nimport attnkit\ntorch.manual_seed(seed)\n"
    "model = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "x, y = torch.randn(32, 4), torch.randn(32, 1)\nfor _ in range(20):\n"
    "    opt.zero_grad(); loss = ((model(x) - y) ** 2).mean(); loss.backward(); opt.step()",
    "attnkit.claim('fit', 'a seeded fit', paper=0.0, ours=float(loss), holds=float(loss) < 10,"
    " rule='loss < 10', source='fixture')",
    "start = time.perf_counter(); sum(range(10000)); took = time.perf_counter() - start\n"
    "attnkit.claim('speed', 'a timed claim', paper=1.0, ours=took, holds=took < 1e-5,"
    " rule='fast', source='fixture', timing=True)",
]


def test_same_seed_gives_the_same_scorecard(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "seeded", SEEDED)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        run_report("smoke", seed=3, out=out, notebooks_dir=notebooks, progress=False)
    assert report.compare_scorecards(first, second) == []
    rows = json.loads((first / "scorecard.json").read_text())
    assert {row["id"] for row in rows} == {"fit", "speed"}

    # A changed number is reported; a timed claim's value and verdict are not compared.
    for row in rows:
        if row["id"] == "fit":
            row["ours"] += 1e-9
        else:
            row["ours"], row["holds"] = 123.0, not row["holds"]
    (second / "scorecard.json").write_text(json.dumps(rows))
    assert report.compare_scorecards(first, second) == [
        f"seeded/fit seed 3 ours: {rows[0]['ours'] - 1e-9!r} != {rows[0]['ours']!r}"
    ]
    with pytest.raises(ReportError, match="cannot read the scorecard"):
        report.compare_scorecards(first, tmp_path / "missing")


def test_out_holding_the_notebooks_is_refused(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "seeded", SEEDED)
    before = sorted(p.name for p in notebooks.iterdir())
    # The parent has a results.json from an old report, so only the notebook check stops it.
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ReportError, match="holds the notebooks"):
        run_report("smoke", out=tmp_path, notebooks_dir=notebooks, progress=False)
    assert sorted(p.name for p in notebooks.iterdir()) == before
