"""Claims over seeds: per-seed rows, verdicts over seeds, intervals, parallel runs, provenance,
resuming, and the bad inputs of `attnkit report --seeds/--jobs/--cluster`."""

import itertools
import json

import numpy as np
import pytest
from conftest import write_notebook

from attnkit import cli
from attnkit.record import ClaimError, claim
from attnkit.report import run_report
from attnkit.report.aggregate import bootstrap_interval, verdict_over_seeds, verdicts

SEEDED_CLAIMS = [
    "import os\nimport torch\nimport attnkit",
    # value = seed: held on even seeds, failed on odd ones -> mixed over 0, 1, 2
    "attnkit.claim('parity', 'even seeds', paper=0, ours=f'seed {seed}', value=float(seed), "
    "threshold=0.5, holds=seed % 2 == 0, rule='seed even', source='fixture')",
    # always held, value depends on the seed
    "attnkit.claim('always', 'always holds', paper=1, ours=seed, value=1.0 + seed, "
    "holds=True, rule='true', source='fixture')",
    # inconclusive on seed 1 only
    "attnkit.claim('gated', 'gated on seed', paper=1, ours=seed, value=float(seed), holds=True, "
    "requires={'seed is not 1': seed != 1}, rule='true', source='fixture')",
    # what the runner set for the kernel's thread pools
    "attnkit.claim('threads', 'threads reach the kernel', paper=1, "
    "ours=f\"{os.environ['OMP_NUM_THREADS']} {torch.get_num_threads()}\", "
    "holds=os.environ['OMP_NUM_THREADS'] == str(torch.get_num_threads()), rule='equal', "
    "source='fixture')",
]


def row(seed, verdict, value=None):
    holds = None if verdict == "inconclusive" else verdict == "held"
    return {
        "notebook": "nb",
        "paper": "P",
        "id": "c",
        "claim": "text",
        "paper_value": 1,
        "ours": value,
        "holds": holds,
        "rule": "r",
        "source": "s",
        "profile": "smoke",
        "seed": seed,
        "value": value,
        "threshold": None,
        "verdict": verdict,
        "reason": "not met: x" if verdict == "inconclusive" else "",
        "timing": False,
    }


@pytest.mark.parametrize(
    ("per_seed", "expected"),
    [
        (["held", "held", "held"], "held"),
        (["held", "held", "inconclusive"], "held"),  # conclusive on 2 of 3: more than half
        (["did not hold", "inconclusive", "did not hold"], "did not hold"),
        (["held", "did not hold", "held"], "mixed"),
        (["held", "did not hold", "inconclusive"], "mixed"),
        (["held", "inconclusive", "inconclusive"], "inconclusive"),  # conclusive on 1 of 3
        (["held", "inconclusive"], "inconclusive"),  # half is not more than half
        (["inconclusive", "inconclusive", "inconclusive"], "inconclusive"),
    ],
)
def test_verdict_over_seeds(per_seed, expected):
    rows = [row(seed, v, float(seed)) for seed, v in enumerate(per_seed)]
    (claim_verdict,) = verdicts(rows, list(range(len(per_seed))))
    assert claim_verdict["verdict"] == expected
    assert claim_verdict["held"] == per_seed.count("held")
    assert claim_verdict["not_held"] == per_seed.count("did not hold")
    assert claim_verdict["inconclusive"] == per_seed.count("inconclusive")


def test_a_seed_whose_notebook_failed_is_not_conclusive():
    # Held on seeds 0 and 1; the notebook failed on seeds 2 and 3: 2 of 4 conclusive.
    rows = [row(0, "held", 1.0), row(1, "held", 2.0)]
    (claim_verdict,) = verdicts(rows, [0, 1, 2, 3])
    assert claim_verdict["seeds"] == 4 and claim_verdict["missing_seeds"] == [2, 3]
    assert claim_verdict["inconclusive"] == 2 and claim_verdict["verdict"] == "inconclusive"
    assert verdict_over_seeds(held=3, not_held=0, seeds=4) == "held"


def test_mean_std_and_no_interval_below_three_seeds():
    (two,) = verdicts([row(0, "held", 1.0), row(1, "held", 3.0)], [0, 1])
    assert two["value_mean"] == 2.0 and two["value_std"] == pytest.approx(np.sqrt(2.0))
    assert two["value_ci95"] is None
    (none,) = verdicts([row(0, "held"), row(1, "held"), row(2, "held")], [0, 1, 2])
    assert none["value_mean"] is None and none["value_ci95"] is None


def exact_percentile_interval(values):
    """The bootstrap distribution of the mean, enumerated: every ordered resample of n values
    (n**n, equally likely), and its 2.5 % and 97.5 % quantiles."""
    means = sorted(np.mean(c) for c in itertools.product(values, repeat=len(values)))
    return np.quantile(means, 0.025), np.quantile(means, 0.975)


def test_bootstrap_interval_against_the_enumerated_distribution():
    # Three values: each extreme resample has probability 1/27 > 2.5 %, so the interval is
    # exactly [min, max].
    assert bootstrap_interval([0.2, 0.5, 0.4]) == pytest.approx([0.2, 0.5])
    values = [0.1, 0.4, 0.35, 0.9, 0.5]
    low, high = exact_percentile_interval(values)
    ours = bootstrap_interval(values)
    spread = max(values) - min(values)
    assert ours[0] == pytest.approx(low, abs=0.02 * spread)
    assert ours[1] == pytest.approx(high, abs=0.02 * spread)
    assert bootstrap_interval([0.3, 0.3, 0.3]) == [0.3, 0.3]
    assert bootstrap_interval([0.3, 0.4]) is None


@pytest.fixture(scope="module")
def seeded_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    write_notebook(root / "notebooks", "seeded", SEEDED_CLAIMS)
    out = root / "out"
    results = run_report(
        "smoke", seeds=[0, 1, 2], jobs=2, out=out, notebooks_dir=root / "notebooks", progress=False
    )
    return root, out, results


def test_one_row_per_claim_and_seed_and_one_verdict_per_claim(seeded_report):
    _, out, results = seeded_report
    assert [(r.name, r.seed, r.status) for r in results] == [
        ("seeded", 0, "ok"),
        ("seeded", 1, "ok"),
        ("seeded", 2, "ok"),
    ]
    for seed in (0, 1, 2):  # every seed's notebook and page are kept
        assert (out / f"seeded.seed{seed}.ipynb").is_file()
        assert (out / f"seeded.seed{seed}.html").is_file()
    rows = json.loads((out / "scorecard.json").read_text())
    assert len(rows) == 4 * 3
    gated = {r["seed"]: r for r in rows if r["id"] == "gated"}
    assert gated[1]["verdict"] == "inconclusive" and gated[1]["holds"] is None
    assert gated[1]["reason"] == "not met: seed is not 1"
    assert gated[0]["verdict"] == "held" and gated[0]["holds"] is True

    claims = {c["id"]: c for c in json.loads((out / "verdicts.json").read_text())}
    keys = {"notebook", "paper", "id", "claim", "paper_value", "seeds", "held", "not_held"}
    keys |= {"inconclusive", "value_mean", "value_std", "value_ci95", "verdict"}
    assert all(keys <= set(c) for c in claims.values())
    assert claims["parity"]["verdict"] == "mixed"
    assert (claims["parity"]["held"], claims["parity"]["not_held"]) == (2, 1)
    assert claims["always"]["verdict"] == "held" and claims["always"]["value_mean"] == 2.0
    assert claims["always"]["value_ci95"] == pytest.approx([1.0, 3.0])
    assert claims["gated"]["verdict"] == "held" and claims["gated"]["inconclusive"] == 1
    # two jobs on this machine's cores: the kernels got cores // 2 threads (at least one)
    threads = {r["ours"] for r in rows if r["id"] == "threads"}
    assert all(r["verdict"] == "held" for r in rows if r["id"] == "threads"), threads


def test_index_shows_verdicts_over_seeds_and_strips(seeded_report):
    _, out, _ = seeded_report
    index = (out / "index.html").read_text()
    assert "mixed: held on 2/3, failed on 1/3" in index
    assert "held on 3/3" in index and "inconclusive" in index
    assert index.count('<svg class="strip"') == 3  # parity, always, gated record values
    assert "95 % CI" in index and "seeded.seed2.html" in index
    assert "id='provenance'" in index
    assert "<script" not in index


def test_provenance(seeded_report):
    _, out, _ = seeded_report
    facts = json.loads((out / "provenance.json").read_text())
    for key in ("attnkit", "git", "python", "packages", "cpu", "cores", "gpu", "threads"):
        assert key in facts
    for key in ("determinism", "profile", "seeds", "data_files", "tasks"):
        assert key in facts
    assert facts["seeds"] == [0, 1, 2] and facts["profile"] == "smoke"
    for package in ("torch", "transformers", "numpy", "captum", "entmax", "papermill"):
        assert facts["packages"][package], package
    assert set(facts["git"]) >= {"commit", "dirty"}
    assert facts["threads"]["jobs"] == 2
    assert [(t["notebook"], t["seed"]) for t in facts["tasks"]] == [("seeded", s) for s in range(3)]
    assert all(t["host"] and t["started"] and t["seconds"] > 0 for t in facts["tasks"])


def test_data_files_are_listed_with_their_sha256(tmp_path):
    import hashlib

    data = tmp_path / "data.txt"
    data.write_text("a dataset\n")
    cells = [f"import attnkit\nattnkit.used_data('toy', '{data} (split=test)')"]
    write_notebook(tmp_path / "notebooks", "reader", cells)
    run_report("smoke", out=tmp_path / "out", notebooks_dir=tmp_path / "notebooks", progress=False)
    facts = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert facts["data_files"] == [
        {
            "path": str(data),
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "read_by": ["reader seed 0"],
        }
    ]


def test_resume_reuses_unchanged_runs(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks, "a", ["import time\nstarted = time.time()"])
    write_notebook(notebooks, "b", ["x = 1"])
    out = tmp_path / "out"
    first = run_report("smoke", seeds=[0, 1], out=out, notebooks_dir=notebooks, progress=False)
    pages = {p.name: p.read_bytes() for p in out.glob("*.ipynb")}
    second = run_report("smoke", seeds=[0, 1], out=out, notebooks_dir=notebooks, progress=False)
    assert all(r.reused for r in second)
    assert [r.key for r in second] == [r.key for r in first]
    assert {p.name: p.read_bytes() for p in out.glob("*.ipynb")} == pages  # not executed again

    write_notebook(notebooks, "b", ["x = 2"])  # a changed notebook runs again, the other not
    third = run_report("smoke", seeds=[0, 1], out=out, notebooks_dir=notebooks, progress=False)
    assert [(r.name, r.seed, r.reused) for r in third] == [
        ("a", 0, True),
        ("a", 1, True),
        ("b", 0, False),
        ("b", 1, False),
    ]
    # a new seed runs, the old seeds are reused; --rerun runs everything
    fourth = run_report("smoke", seeds=[0, 1, 2], out=out, notebooks_dir=notebooks, progress=False)
    assert [r.reused for r in fourth if r.name == "a"] == [True, True, False]
    fifth = run_report(
        "smoke", seeds=[0], out=out, notebooks_dir=notebooks, progress=False, rerun=True
    )
    assert not any(r.reused for r in fifth)
    assert (out / "a.html").is_file()  # a single-seed report names pages as before


def test_a_relative_notebook_folder_works_with_parallel_jobs(tmp_path, monkeypatch):
    """papermill changes the working directory while a notebook runs; runs in parallel must
    not lose a relative --notebooks path to it."""
    write_notebook(tmp_path / "notebooks", "a", ["x = 1"])
    write_notebook(tmp_path / "notebooks", "b", ["y = 2"])
    monkeypatch.chdir(tmp_path)
    results = run_report(
        "smoke", seeds=[0, 1], jobs=2, out="out", notebooks_dir="notebooks", progress=False
    )
    assert [(r.name, r.status) for r in results] == [
        ("a", "ok"),
        ("a", "ok"),
        ("b", "ok"),
        ("b", "ok"),
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seeds"], "at least one seed"),
        (["--seeds", "1", "1"], "given more than once"),
        (["--seeds", "0", "-1"], "integers ≥ 0"),
        (["--seed", "1", "--seeds", "2"], "not both"),
        (["--jobs", "0"], "--jobs must be a whole number ≥ 1"),
        (["--cluster", "http://127.0.0.1:8786"], "not a Dask scheduler address"),
        (["--cluster", "127.0.0.1:8786"], "not a Dask scheduler address"),
        (["--cluster", "tcp://127.0.0.1:9"], "cannot reach a Dask scheduler"),
    ],
)
def test_bad_report_arguments(tmp_path, capsys, arguments, message):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks, "nb", ["x = 1"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    (out / "index.html").write_text("previous")
    code = cli.main(
        ["report", "--profile", "smoke", "--notebooks", str(notebooks), "--out", str(out)]
        + arguments
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert (out / "index.html").read_text() == "previous"  # nothing overwritten


def test_claim_value_and_requires_are_checked():
    base = {"paper": 1, "ours": "x", "holds": True, "rule": "r", "source": "s"}
    for value in (float("nan"), float("inf"), "0.3", True):
        with pytest.raises(ClaimError, match="value"):
            claim("c", "t", **base, value=value)
    for requires in ({"acc ≥ 0.9": 1}, {"acc ≥ 0.9": "yes"}, "yes"):
        with pytest.raises(ClaimError, match="must be True or False"):
            claim("c", "t", **base, requires=requires)
    with pytest.raises(ClaimError, match="holds is None"):
        claim("c", "t", **{**base, "holds": None})
    record = claim(
        "c", "t", **{**base, "holds": None}, requires={"gate": False}, value=np.float32(2)
    )
    assert (record["verdict"], record["holds"], record["reason"]) == (
        "inconclusive",
        None,
        "not met: gate",
    )
    assert record["value"] == 2.0 and isinstance(record["value"], float)


def test_notebooks_are_found_from_a_checkout_or_an_installed_wheel(tmp_path, monkeypatch):
    from attnkit.report import runner

    repo_notebooks = runner.notebook_folders()[1]
    assert (repo_notebooks / "tour.ipynb").is_file()  # the checkout's, from any folder
    monkeypatch.chdir(tmp_path)
    assert runner.default_notebooks_dir() == repo_notebooks
    # Installed from a wheel: no checkout, the notebooks under <prefix>/share/attnkit.
    wheel = tmp_path / "prefix" / "share" / "attnkit" / "notebooks"
    write_notebook(wheel, "tour")
    monkeypatch.setattr(runner.sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(runner, "__file__", str(tmp_path / "site" / "attnkit" / "report" / "x.py"))
    assert runner.default_notebooks_dir() == wheel
