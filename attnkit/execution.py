"""Run a notebook with papermill in a fresh `python3` kernel: the one executor behind
`attnkit report` and `attnkit assignment check`.

Both inject their parameters the same way (papermill's cell tagged `injected-parameters`, after
the cell tagged `parameters`, or first without one) and run in the notebook's folder. They differ
in what a failing cell means:

* the report (`allow_errors=False`): the run stops at the first error and papermill raises
  `PapermillExecutionError`, with the executed copy (and papermill's error marker) at `output`;
* an assignment check (`allow_errors=True`): every cell runs, a failing cell keeps its error as
  output, a cell running past `timeout` seconds is interrupted (it shows a KeyboardInterrupt) and
  the run goes on. If the kernel dies the run stops there, the cells after it stay unexecuted,
  and the reason is kept in `metadata["attnkit_stopped"]`; nothing is raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

KERNEL = "python3"
INJECTED_TAG = "injected-parameters"  # papermill's tag on the cell it adds
STOPPED_KEY = "attnkit_stopped"


def execute_notebook(
    notebook: str | Path | NotebookNode,
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | Path,
    allow_errors: bool = False,
    timeout: int | None = None,
    progress: bool = False,
) -> NotebookNode:
    """Execute `notebook` (a path or a notebook) with `parameters`; write it to `output`, return it.

    Args:
        notebook: the notebook to run; it is never written.
        output: where the executed copy goes (saved after every cell, so a run that stops early
            still leaves what it did).
        parameters: values for the notebook's `parameters` cell.
        cwd: the folder the kernel runs in (the notebook's own, so relative paths work).
        allow_errors: run every cell whatever fails (assignment checks) instead of stopping and
            raising at the first error (the report).
        timeout: seconds a cell may run (None: no limit); with `allow_errors` the cell is
            interrupted and the run goes on.
        progress: show papermill's per-cell progress bar.
    """
    import papermill

    options: dict[str, Any] = dict(kernel_name=KERNEL, progress_bar=progress)
    if timeout is not None:
        options["execution_timeout"] = timeout
    # language: notebooks whose metadata lacks one still get their parameters injected
    if not allow_errors:
        return papermill.execute_notebook(
            _input(notebook), str(output), parameters, cwd=str(cwd), language="python", **options
        )

    from papermill.engines import papermill_engines
    from papermill.utils import chdir

    prepared = papermill.execute_notebook(
        _input(notebook), None, parameters, prepare_only=True, language="python", **options
    )
    for cell in prepared.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        with chdir(str(cwd)):
            executed = papermill_engines.execute_notebook_with_engine(
                None,
                prepared,
                input_path=None,
                output_path=str(output),
                allow_errors=True,
                interrupt_on_timeout=timeout is not None,
                **options,
            )
    except Exception as error:  # a dead kernel: keep what ran, say why the rest did not
        # papermill's engine saved `output` as it stopped; add the reason to that copy
        executed = nbformat.read(output, as_version=4) if Path(output).exists() else prepared
        executed.metadata[STOPPED_KEY] = f"{type(error).__name__}: {error}"
        nbformat.write(executed, output)
    return executed


def _input(notebook: str | Path | NotebookNode) -> str | NotebookNode:
    return notebook if isinstance(notebook, NotebookNode) else str(notebook)
