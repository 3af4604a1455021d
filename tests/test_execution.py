"""attnkit.execution: the one notebook executor of the report and assignment checks."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from papermill.exceptions import PapermillExecutionError

from attnkit.execution import INJECTED_TAG, STOPPED_KEY, execute_notebook


def notebook(*sources: str) -> nbformat.NotebookNode:
    cells = [new_code_cell("x = 1\nname = 'default'", metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in sources]
    return new_notebook(cells=cells)


def outputs(cell) -> list[str]:
    return [o.get("ename") or "".join(o.get("text", "")) for o in cell.get("outputs", [])]


def test_errors_allowed_runs_every_cell_and_interrupts_a_slow_one(tmp_path):
    source = notebook(
        "raise ValueError('boom')", "print(x, name)", "import time; time.sleep(30)", "print('end')"
    )
    out = tmp_path / "run.ipynb"
    executed = execute_notebook(source, out, {"x": 5}, cwd=tmp_path, allow_errors=True, timeout=2)
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert tags[1] == [INJECTED_TAG]  # papermill's cell, right after the parameters cell
    ran = [outputs(cell) for cell in executed.cells[2:]]
    assert ran == [["ValueError"], ["5 default\n"], ["KeyboardInterrupt"], ["end\n"]]
    assert STOPPED_KEY not in executed.metadata
    assert nbformat.read(out, as_version=4).cells[3].outputs  # written to `output` too
    assert all(not cell.get("outputs") for cell in source.cells)  # the input is never written


def test_report_mode_stops_at_the_first_error_and_raises(tmp_path):
    out = tmp_path / "run.ipynb"
    with pytest.raises(PapermillExecutionError, match="boom"):
        execute_notebook(
            notebook("raise ValueError('boom')", "print('after')"), out, {}, cwd=tmp_path
        )
    saved = nbformat.read(out, as_version=4)
    assert not any("after" in "".join(outputs(cell)) for cell in saved.cells)


def test_a_dead_kernel_stops_the_run_and_says_why(tmp_path):
    executed = execute_notebook(
        notebook("print('before')", "import os; os._exit(1)", "print('never')"),
        tmp_path / "run.ipynb",
        {},
        cwd=tmp_path,
        allow_errors=True,
        timeout=30,
    )
    assert "DeadKernelError" in executed.metadata[STOPPED_KEY]
    printed = [outputs(cell) for cell in executed.cells]
    assert ["before\n"] in printed and ["never\n"] not in printed
