"""Classroom assignments: a student copy of a notebook, and a self-check of a student's answers.

A teacher marks exercises in a notebook in either (or both) of two ways:

* **Solution cells**: a cell tagged `solution` is replaced, in the student copy, by its leading
  comment block (the instructions: every line from the top of the cell up to the first line
  that is neither blank nor a `#` comment) followed by
  `raise NotImplementedError("write your solution in this cell ...")`. A markdown cell tagged
  `solution` becomes "YOUR ANSWER HERE".
* **nbgrader markers**: in any cell, the lines between `### BEGIN SOLUTION` and
  `### END SOLUTION` (marker lines included) become one line at the BEGIN marker's
  indentation, `raise NotImplementedError("<instruction>")`. The instruction is the text after
  `BEGIN SOLUTION` on the marker line (`### BEGIN SOLUTION: sort the scores first`), else
  "write your solution here". Code outside the markers is kept, so a function's signature and
  docstring stay. A cell with markers is handled by its markers only, tagged `solution` or not
  (as in nbgrader).

Cells tagged `check` are copied verbatim: they test the answers, and their first line names
them, `# check: rollout matches attnkit.propagate.rollout` (else the first comment line, else
"check in cell N"). Outputs and execution counts are cleared in the student copy.

`check_notebook` runs a notebook as the report does (`attnkit.execution`, papermill), errors
allowed (one failing exercise does not hide the other checks), and reports each check cell as
passed (ran without error) or failed (with the error line). The executed copy goes to a
temporary or given folder; the notebook itself is never written. `exercises_only=True` runs just
the `parameters` cell and the exercise section: from the first cell tagged `exercise-setup`,
`solution` or `check` to the end of the notebook. Exercises therefore sit in a final section
whose cells depend on nothing before it but the parameters (the `exercise-setup` cell does its
own imports), and nothing in the notebook depends on them.

Cells are numbered from 1, top to bottom, markdown cells included, in every message.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from attnkit.errors import AttnkitError
from attnkit.execution import INJECTED_TAG, STOPPED_KEY, execute_notebook

SOLUTION_TAG = "solution"
CHECK_TAG = "check"
SETUP_TAG = "exercise-setup"
PARAMETERS_TAG = "parameters"
BEGIN = "BEGIN SOLUTION"
END = "END SOLUTION"
DEFAULT_INSTRUCTION = "write your solution here"
CELL_INSTRUCTION = (
    "write your solution in this cell (see the instructions above), then run the checks"
)
MARKDOWN_STUB = "YOUR ANSWER HERE"
PROFILES = ("smoke", "quick", "full")

# A marker line: optional comment leader, then BEGIN/END SOLUTION, then optional instruction.
_MARKER = re.compile(
    r"^(?P<indent>\s*)(?:#+|//|<!--)?\s*(?P<kind>BEGIN|END) SOLUTION\b(?P<rest>.*)$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class AssignmentError(AttnkitError):
    """An assignment that cannot be made or checked as asked; the message names the fix."""


@dataclass(frozen=True)
class CheckResult:
    """One check cell after a run.

    Attributes:
        name: from the cell's first line `# check: NAME` (else its first comment line, else
            "check in cell N").
        cell: the cell's position in the checked notebook, counting from 1.
        passed: the cell ran without an error.
        error: for a failure, the error line (`AssertionError: ...`); empty when passed.
    """

    name: str
    cell: int
    passed: bool
    error: str = ""


# --------------------------------------------------------------------------- student copy


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _read(path: str | Path) -> tuple[Path, NotebookNode]:
    path = Path(path)
    if path.is_dir():
        raise AssignmentError(f"{path} is a folder; pass the path of a notebook (.ipynb) file.")
    if not path.is_file():
        raise AssignmentError(
            f"notebook {path} does not exist; pass the path of a notebook (.ipynb) file."
        )
    try:
        return path, nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several types for a broken file
        raise AssignmentError(f"cannot read {path} as a notebook: {error}") from None


def _literal(text: str) -> str:
    """A Python string literal in double quotes (JSON strings are valid Python literals)."""
    return json.dumps(text, ensure_ascii=False)


def _instruction(rest: str) -> str:
    text = rest.replace("-->", "").strip().lstrip(":-—–").strip()
    return text or DEFAULT_INSTRUCTION


def _replace_marked(source: str, cell_number: int, code: bool) -> tuple[str, int]:
    """Replace every BEGIN/END SOLUTION region of one cell by a stub; return (source, regions)."""
    lines = source.split("\n")
    out: list[str] = []
    begin_line: int | None = None
    regions = 0
    for number, line in enumerate(lines, start=1):
        match = _MARKER.match(line)
        if match is None:
            if begin_line is None:
                out.append(line)
            continue
        if match["kind"] == "BEGIN":
            if begin_line is not None:
                raise AssignmentError(
                    f"cell {cell_number}: '### {BEGIN}' on line {number} opens a second solution "
                    f"region before the one opened on line {begin_line} is closed; add "
                    f"'### {END}' before line {number}."
                )
            begin_line = number
            indent = match["indent"]
            if code:
                stub = f"raise NotImplementedError({_literal(_instruction(match['rest']))})"
            else:
                stub = MARKDOWN_STUB
            out.append(indent + stub)
            regions += 1
        else:
            if begin_line is None:
                raise AssignmentError(
                    f"cell {cell_number}: '### {END}' on line {number} has no '### {BEGIN}' "
                    f"before it; add '### {BEGIN}' above the solution or delete line {number}."
                )
            begin_line = None
    if begin_line is not None:
        raise AssignmentError(
            f"cell {cell_number}: '### {BEGIN}' on line {begin_line} is never closed; add "
            f"'### {END}' after the last line of the solution."
        )
    return "\n".join(out), regions


def _has_markers(source: str) -> bool:
    return any(_MARKER.match(line) for line in source.split("\n"))


def _leading_comments(source: str) -> list[str]:
    """The cell's instructions: its lines up to the first that is neither blank nor a comment."""
    kept: list[str] = []
    for line in source.split("\n"):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _stub_cell(cell: NotebookNode) -> str:
    if cell.cell_type != "code":
        return MARKDOWN_STUB
    return "\n".join(
        [
            *_leading_comments(cell.source),
            f"raise NotImplementedError({_literal(CELL_INSTRUCTION)})",
        ]
    )


def student_notebook(notebook: NotebookNode, name: str = "the notebook") -> NotebookNode:
    """The student version of a notebook (a copy; the argument is left unchanged).

    Solution-tagged cells become their instructions plus a stub, BEGIN/END SOLUTION regions
    become a stub at the marker's indentation, check cells stay verbatim, and every output and
    execution count is cleared (see the module docstring).

    Raises:
        AssignmentError: no exercise at all, unbalanced markers, or markers in a check cell.
    """
    student = nbformat.from_dict(json.loads(json.dumps(notebook)))
    exercises = 0
    for number, cell in enumerate(student.cells, start=1):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        tags = _tags(cell)
        if _has_markers(cell.source):
            if CHECK_TAG in tags:
                raise AssignmentError(
                    f"{name}: cell {number} is tagged '{CHECK_TAG}' but holds '### {BEGIN}' "
                    "markers; a check cell is copied as it is, so move the solution to its own "
                    f"cell or remove the '{CHECK_TAG}' tag."
                )
            try:
                cell.source, regions = _replace_marked(
                    cell.source, number, cell.cell_type == "code"
                )
            except AssignmentError as error:
                raise AssignmentError(f"{name}: {error}") from None
            exercises += regions
        elif SOLUTION_TAG in tags:
            if CHECK_TAG in tags:
                raise AssignmentError(
                    f"{name}: cell {number} is tagged both '{SOLUTION_TAG}' and '{CHECK_TAG}'; "
                    "keep one of the two tags."
                )
            cell.source = _stub_cell(cell)
            exercises += 1
    if exercises == 0:
        raise AssignmentError(
            f"{name} has no exercises: tag the cells that hold solutions '{SOLUTION_TAG}', or "
            f"wrap solution code in '### {BEGIN}' / '### {END}' lines, and tag the cells that "
            f"test them '{CHECK_TAG}'."
        )
    return student


def make_student_copy(notebook: str | Path, out_dir: str | Path, *, force: bool = False) -> Path:
    """Write the student copy of `notebook` to `out_dir/<same file name>` and return its path.

    Args:
        notebook: the teacher's notebook, with solutions.
        out_dir: folder for the student copy (created if missing).
        force: overwrite an existing student copy.

    Raises:
        AssignmentError: the notebook is missing or has no (or unbalanced) exercises, the copy
            exists and `force` is false, or the copy would overwrite the notebook itself.
    """
    source, teacher = _read(notebook)
    target = Path(out_dir) / source.name
    if target.resolve() == source.resolve():
        raise AssignmentError(
            f"the student copy {target} would overwrite the teacher's notebook; pass another --out."
        )
    student = student_notebook(teacher, source.name)
    if target.exists() and not force:
        raise AssignmentError(
            f"{target} already exists; pass --force to overwrite the student copy."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
    except OSError as error:
        raise AssignmentError(
            f"cannot write the student copy {target}: {error.strerror}."
        ) from None
    return target


# --------------------------------------------------------------------------- running and checking


def exercise_start(notebook: NotebookNode) -> int | None:
    """Index (from 0) of the first cell tagged `exercise-setup`, `solution` or `check`."""
    for index, cell in enumerate(notebook.cells):
        if {SETUP_TAG, SOLUTION_TAG, CHECK_TAG} & set(_tags(cell)):
            return index
    return None


def exercise_section(notebook: NotebookNode) -> tuple[NotebookNode, list[int]]:
    """The notebook cut down to its `parameters` cell and its exercise section.

    Returns `(notebook, positions)`: a copy holding the parameters cell (when there is one) and
    every cell from the first one tagged `exercise-setup`, `solution` or `check` to the end,
    and the position (from 1) of each kept cell in the original, for `check_results`.

    Raises:
        AssignmentError: no cell carries one of those tags.
    """
    start = exercise_start(notebook)
    if start is None:
        raise AssignmentError(
            f"no exercise section: no cell is tagged '{SETUP_TAG}', '{SOLUTION_TAG}' or "
            f"'{CHECK_TAG}'. Tag the first cell of the exercises '{SETUP_TAG}', or run the "
            "whole notebook (without --exercises-only)."
        )
    keep = [i for i, cell in enumerate(notebook.cells[:start]) if PARAMETERS_TAG in _tags(cell)]
    keep += list(range(start, len(notebook.cells)))
    section = nbformat.from_dict(json.loads(json.dumps(notebook)))
    section.cells = [section.cells[i] for i in keep]
    return section, [i + 1 for i in keep]


def check_name(source: str, cell: int) -> str:
    """`# check: NAME` on the first line gives NAME; else the first comment line; else a default."""
    lines = [line.strip() for line in source.split("\n") if line.strip()]
    if lines:
        match = re.match(r"#\s*check\s*:\s*(.+)$", lines[0], flags=re.IGNORECASE)
        if match:
            return match[1].strip()
    for line in lines:
        if line.startswith("#") and line.lstrip("#").strip():
            return line.lstrip("#").strip()
    return f"check in cell {cell}"


def _error_line(output: NotebookNode, timeout: int | None) -> str:
    ename, evalue = output.get("ename", "Error"), _ANSI.sub("", output.get("evalue", ""))
    if ename == "KeyboardInterrupt":
        limit = f" ({timeout} s)" if timeout else ""
        return f"interrupted: the cell ran past the timeout{limit}"
    first = evalue.strip().split("\n")[0] if evalue.strip() else ""
    return f"{ename}: {first}" if first else ename


def check_results(
    executed: NotebookNode, positions: Sequence[int] | None = None, *, timeout: int | None = None
) -> list[CheckResult]:
    """The outcome of every `check` cell of an executed notebook, in order.

    `positions` gives each cell's position (from 1) in the notebook the student knows, e.g.
    from `exercise_section`; by default cells are counted as they are, skipping an injected
    parameters cell.
    """
    if positions is None:
        positions, count = [], 0
        for cell in executed.cells:
            if INJECTED_TAG not in _tags(cell):
                count += 1
            positions.append(count)
    stopped = executed.metadata.get(STOPPED_KEY)
    results = []
    for cell, position in zip(executed.cells, positions, strict=True):
        if cell.cell_type != "code" or CHECK_TAG not in _tags(cell):
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            error = _error_line(errors[0], timeout)
        elif cell.get("execution_count") is None:
            error = "not run" + (f": the run stopped early ({stopped})" if stopped else "")
        else:
            error = ""
        results.append(CheckResult(check_name(cell.source, position), position, not error, error))
    return results


def check_notebook(
    notebook: str | Path,
    *,
    profile: str = "smoke",
    data_dir: str | Path | None = None,
    seed: int = 0,
    timeout: int = 600,
    out: str | Path | None = None,
    exercises_only: bool = False,
) -> list[CheckResult]:
    """Run a (student's) notebook and report each of its `check` cells.

    The notebook runs with its parameters set as the report runner sets them (`profile`,
    `seed`, `data_dir`, `device="cpu"`, `out_dir`, `require_data=False`), errors allowed, in the
    notebook's folder. The notebook file itself is never written.

    Args:
        notebook: path of the notebook.
        profile: "smoke" (default), "quick" or "full".
        data_dir: datasets folder (default: `$ATTNKIT_DATA_DIR`, else synthetic data).
        seed: the notebook's seed.
        timeout: seconds per cell before it is interrupted.
        out: folder for the executed copy `<name>.ipynb` and its figures `<name>_files/`;
            None runs in a temporary folder that is removed afterwards.
        exercises_only: run only the parameters cell and the exercise section.

    Returns:
        One `CheckResult` per check cell, in notebook order.

    Raises:
        AssignmentError: missing notebook, unknown profile, no check cell, no exercise
            section (with `exercises_only`), or an `out` that would overwrite the notebook.
    """
    path, student = _read(notebook)
    if profile not in PROFILES:
        raise AssignmentError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}.")
    if not any(CHECK_TAG in _tags(cell) for cell in student.cells):
        raise AssignmentError(
            f"{path.name} has no check cells: nothing to report. Tag the cells that test the "
            f"exercises '{CHECK_TAG}'."
        )
    if timeout < 1:
        raise AssignmentError(f"timeout must be at least 1 second, got {timeout}.")
    if exercises_only:
        run, positions = exercise_section(student)
    else:
        run, positions = student, list(range(1, len(student.cells) + 1))
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="attnkit-check-"))
    executed_path = folder / path.name
    if executed_path.resolve() == path.resolve():
        raise AssignmentError(
            f"--out {folder} would overwrite the notebook being checked; pass another folder."
        )
    try:
        files = folder / f"{path.stem}_files"
        files.mkdir(parents=True, exist_ok=True)
        parameters = {
            "profile": profile,
            "seed": seed,
            "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
            "device": "cpu",
            "out_dir": str(files.resolve()),
            "require_data": False,
        }
        executed = execute_notebook(
            run,
            executed_path,
            parameters,
            cwd=path.resolve().parent,
            allow_errors=True,
            timeout=timeout,
        )
        positions = list(positions)
        injected = [i for i, cell in enumerate(executed.cells) if INJECTED_TAG in _tags(cell)]
        if len(executed.cells) == len(positions) + 1 and injected:
            index = injected[0]
            positions.insert(index, positions[index - 1] if index else 0)
        if out is not None and not any(files.iterdir()):
            files.rmdir()
        return check_results(executed, positions, timeout=timeout)
    finally:
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
