"""Classroom assignments: student copies (`make`) and self-checks (`check`), on toy notebooks and
on every paper notebook's exercise section."""

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from attnkit import assignment, cli
from attnkit.assignment import (
    AssignmentError,
    check_name,
    check_results,
    exercise_section,
    make_student_copy,
    student_notebook,
)
from attnkit.execution import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PAPER_NOTEBOOKS = [
    "abnar2020_attention_flow",
    "jain2019_not_explanation",
    "wiegreffe2019_not_not_explanation",
    "lopardo2024_attention_posthoc",
    "meister2021_sparse_interpretable",
    "zhang2021_rela",
    "zhao2019_explicit_sparse",
    "attribution_benchmark",
    "pan2022_lit",
    "eev2021_evoked_expression",
]
PARAMETERS = 'profile = "quick"\nseed = 0\ndata_dir = None\ndevice = "cpu"\nout_dir = "x"'


def tagged(source: str, *tags: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": list(tags)})


def write(folder: Path, cells: list, name: str = "hw") -> Path:
    notebook = new_notebook(cells=[tagged(PARAMETERS, "parameters"), *cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


# --------------------------------------------------------------------------- student copy, toys

MARKED = '''def area(r):
    """Area of a circle."""
    ### BEGIN SOLUTION: use math.pi
    import math
    return math.pi * r**2
    ### END SOLUTION


def twice(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION'''


def test_marked_regions_become_indented_stubs_and_the_rest_stays():
    student = student_notebook(new_notebook(cells=[new_code_cell(MARKED)]))
    assert student.cells[0].source == (
        'def area(r):\n    """Area of a circle."""\n'
        '    raise NotImplementedError("use math.pi")\n\n\n'
        "def twice(x):\n"
        '    raise NotImplementedError("write your solution here")'
    )


def test_solution_cell_keeps_its_instructions_and_check_cells_stay_verbatim():
    check = "# check: area is right\nassert abs(area(1) - 3.14159) < 1e-4"
    cells = [
        tagged(
            "# Exercise: write area(r).\n#   (a circle)\n\ndef area(r):\n    return 3.14159 * r**2",
            "solution",
        ),
        tagged(check, "check"),
        new_markdown_cell("Explain why.", metadata={"tags": ["solution"]}),
    ]
    cells[1].outputs = [nbformat.v4.new_output("stream", text="ok\n")]
    cells[1].execution_count = 3
    student = student_notebook(new_notebook(cells=cells))
    stub = student.cells[0].source.split("\n")
    assert stub[:2] == ["# Exercise: write area(r).", "#   (a circle)"]
    assert stub[2].startswith("raise NotImplementedError(") and len(stub) == 3
    assert student.cells[1].source == check
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert student.cells[2].source == assignment.MARKDOWN_STUB
    assert cells[0].source.endswith("3.14159 * r**2")  # the teacher's notebook is not touched


def test_check_names():
    assert check_name("# check: rollout by hand\nassert x", 4) == "rollout by hand"
    assert check_name("\n# Check:  sizes \nassert x", 4) == "sizes"
    assert check_name("# the sizes agree\nassert x", 4) == "the sizes agree"
    assert check_name("assert x", 4) == "check in cell 4"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "x = 1\n### BEGIN SOLUTION\ny = 2",
            r"cell 2: .*BEGIN SOLUTION' on line 2 is never closed; add '### END SOLUTION'",
        ),
        (
            "x = 1\ny = 2\n### END SOLUTION",
            r"cell 2: .*END SOLUTION' on line 3 has no '### BEGIN SOLUTION' before it",
        ),
        (
            "### BEGIN SOLUTION\na = 1\n    ### BEGIN SOLUTION\n### END SOLUTION",
            r"cell 2: .*line 3 opens a second solution region before the one opened on line 1",
        ),
    ],
)
def test_unbalanced_markers_name_the_cell_line_and_fix(tmp_path, source, expected):
    path = write(tmp_path, [new_code_cell(source)])
    with pytest.raises(AssignmentError, match=expected):
        make_student_copy(path, tmp_path / "out")
    assert not (tmp_path / "out" / path.name).exists()


def test_make_refuses_to_overwrite_without_force(tmp_path, capsys):
    path = write(
        tmp_path, [tagged("answer = 42", "solution"), tagged("assert answer == 42", "check")]
    )
    out = tmp_path / "students"
    assert cli.main(["assignment", "make", str(path), "--out", str(out)]) == 0
    copy = out / "hw.ipynb"
    assert "answer = 42" not in copy.read_text()
    copy.write_text(copy.read_text().replace("NotImplementedError", "NotImplementedError "))
    before = copy.read_text()
    assert cli.main(["assignment", "make", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"attnkit: error: {copy} already exists; pass --force" in err
    assert copy.read_text() == before
    assert cli.main(["assignment", "make", str(path), "--out", str(out), "--force"]) == 0
    assert copy.read_text() != before
    with pytest.raises(AssignmentError, match="would overwrite the teacher's notebook"):
        make_student_copy(path, tmp_path, force=True)


def test_bad_inputs_through_the_cli(tmp_path, capsys):
    missing = tmp_path / "nope.ipynb"
    assert cli.main(["assignment", "make", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"attnkit: error: notebook {missing} does not exist" in capsys.readouterr().err
    assert cli.main(["assignment", "check", str(missing)]) == 2
    assert f"notebook {missing} does not exist" in capsys.readouterr().err

    plain = write(tmp_path, [new_code_cell("x = 1"), tagged("assert x == 1", "check")], "plain")
    assert cli.main(["assignment", "make", str(plain), "--out", str(tmp_path / "o")]) == 2
    assert "plain.ipynb has no exercises: tag the cells that hold solutions 'solution'" in (
        capsys.readouterr().err
    )
    unchecked = write(tmp_path, [tagged("x = 1", "solution")], "unchecked")
    assert cli.main(["assignment", "check", str(unchecked)]) == 2
    assert "unchecked.ipynb has no check cells" in capsys.readouterr().err
    marked = write(tmp_path, [tagged("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "check")], "m")
    with pytest.raises(AssignmentError, match="cell 2 is tagged 'check' but holds"):
        make_student_copy(marked, tmp_path / "o")
    with pytest.raises(AssignmentError, match="unknown profile 'fast'"):
        assignment.check_notebook(plain, profile="fast")
    with pytest.raises(AssignmentError, match="would overwrite the notebook being checked"):
        assignment.check_notebook(plain, out=tmp_path)
    with pytest.raises(AssignmentError, match="no exercise section"):
        exercise_section(new_notebook(cells=[new_code_cell("x = 1")]))


# --------------------------------------------------------------------------- check, toys (kernel)

TOY_CELLS = [
    new_code_cell("import time\nstarted = True"),
    tagged(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "solution"
    ),
    tagged("# check: doubling\nassert double(2) == 4, f'double(2) gave {double(2)}'", "check"),
    tagged("# check: runs past the timeout\nwhile True:\n    time.sleep(0.05)", "check"),
    tagged("assert profile == 'smoke' and started", "check"),
]


def test_check_reports_every_check_with_errors_allowed(tmp_path, capsys):
    path = write(tmp_path, TOY_CELLS)
    before = path.read_bytes()
    out = tmp_path / "run"
    code = cli.main(["assignment", "check", str(path), "--timeout", "3", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 1, stdout
    assert "PASS  doubling (cell 4)" in stdout
    assert (
        "FAIL  runs past the timeout (cell 5): interrupted: the cell ran past the timeout (3 s)"
        in stdout
    )
    assert "PASS  check in cell 6 (cell 6)" in stdout  # after the failure: errors do not hide it
    assert "2 of 3 checks passed" in stdout
    assert path.read_bytes() == before  # the student's notebook is never written
    assert (out / "hw.ipynb").is_file()

    student = make_student_copy(path, tmp_path / "students")
    results = assignment.check_notebook(student, exercises_only=True, timeout=3)
    assert [r.passed for r in results] == [False, False, False]
    assert results[0].error == "NotImplementedError: write your solution here"
    assert results[2].error.startswith("NameError: name 'started' is not defined")  # not run


# --------------------------------------------------------------------------- the paper notebooks


def _solution_lines(notebook) -> tuple[set[str], set[str]]:
    """(stripped lines of solutions, stripped lines of everything else) of a teacher notebook."""
    secret, public = set(), set()
    for cell in notebook.cells:
        inside, marked = False, bool(assignment._has_markers(cell.source))
        is_solution = not marked and "solution" in cell.metadata.get("tags", [])
        for line in cell.source.split("\n"):
            text = line.strip()
            if re.match(r"#+\s*(BEGIN|END) SOLUTION", text):
                inside = text.lstrip("#").strip().startswith("BEGIN")
                continue
            if not text:
                continue
            if inside or (is_solution and not text.startswith("#")):
                secret.add(text)
            else:
                public.add(text)
    return secret, public


@pytest.mark.parametrize("name", PAPER_NOTEBOOKS)
def test_student_copy_of_paper_notebook_hides_the_solution(name, tmp_path):
    path = NOTEBOOKS / f"{name}.ipynb"
    teacher = nbformat.read(path, as_version=4)
    copy = make_student_copy(path, tmp_path)
    student = nbformat.read(copy, as_version=4)
    secret, public = _solution_lines(teacher)
    hidden = secret - public  # lines that only the solution holds
    assert hidden, f"{name}: no solution found"
    student_lines = {line.strip() for cell in student.cells for line in cell.source.split("\n")}
    assert not hidden & student_lines, f"{name}: solution text left in the student copy"
    checks = [c.source for c in teacher.cells if "check" in c.metadata.get("tags", [])]
    assert checks and checks == [
        c.source for c in student.cells if "check" in c.metadata.get("tags", [])
    ]
    assert len(student.cells) == len(teacher.cells)
    assert any(
        c.cell_type == "markdown" and c.source.startswith("## Exercises") for c in student.cells
    )
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells)


def test_paper_exercises_fail_on_the_stub_and_pass_on_the_solution(tmp_path):
    """One kernel for all 14 runs (seven notebooks, student and teacher): `%reset -f` between."""
    combined, segments = new_notebook(), []
    for name in PAPER_NOTEBOOKS:
        teacher = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        for variant, notebook in [("student", student_notebook(teacher)), ("teacher", teacher)]:
            section, _ = exercise_section(notebook)
            parameters = new_code_cell(f"profile = 'smoke'\nout_dir = {str(tmp_path)!r}")
            start = len(combined.cells) + 1
            first, *rest = section.cells  # the `parameters` cell, then the exercises
            assert "parameters" in first.metadata.get("tags", []), name
            combined.cells += [new_code_cell("%reset -f"), first, parameters, *rest]
            segments.append((name, variant, start, len(combined.cells)))
    for index, cell in enumerate(combined.cells):
        cell.id = f"cell-{index}"  # each notebook appears twice: keep the ids unique
    executed = execute_notebook(
        combined, tmp_path / "all.ipynb", cwd=NOTEBOOKS, allow_errors=True, timeout=120
    )
    for name, variant, start, stop in segments:
        results = check_results(new_notebook(cells=executed.cells[start:stop]))
        assert results, f"{name}: no check cell in the exercise section"
        if variant == "teacher":
            assert all(r.passed for r in results), f"{name}: solution fails its check: {results}"
        else:
            assert not any(r.passed for r in results), (
                f"{name}: the stub passes its check: {results}"
            )
            for result in results:
                assert re.match(r"(NotImplementedError|NameError)", result.error), result


def test_check_runs_a_whole_student_notebook_end_to_end(tmp_path, monkeypatch, capsys):
    """The cheapest paper notebook, smoke profile: the exercise fails, the rest runs clean."""
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path / "cache"))
    name = "zhao2019_explicit_sparse"
    student = make_student_copy(NOTEBOOKS / f"{name}.ipynb", tmp_path / "students")
    out = tmp_path / "checked"
    assert cli.main(["assignment", "check", str(student), "--out", str(out)]) == 1
    stdout = capsys.readouterr().out
    assert re.search(
        r"FAIL  topk_attention matches attnkit.normalizers.topk \(cell \d+\): NameError", stdout
    )
    assert "0 of 1 checks passed" in stdout
    executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
    failing = [
        cell.metadata.get("tags", [])
        for cell in executed.cells
        if any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    ]
    assert failing == [["solution"], ["check"]]  # nothing else depends on the exercise
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code")
