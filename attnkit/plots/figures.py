"""Figure creation, saving and closing shared by the plot functions.

Figures are built with `matplotlib.figure.Figure` on an Agg canvas, not through pyplot:
nothing is registered with a GUI backend, so the functions work headless and unreferenced
figures are freed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SAVE_FORMATS = (".png", ".svg", ".pdf")
MAX_FIGURE_INCHES = 30.0  # keeps even 6x12-head grids well under ~4000 px at 100 dpi


def figure_with_axes(
    rows: int, cols: int, panel_inches: tuple[float, float], ax: Axes | Sequence[Axes] | None
) -> tuple[Figure, np.ndarray]:
    """A figure with a `(rows, cols)` grid of axes, or the caller's axes reshaped to it.

    `ax` may be one Axes (for a single panel) or `rows * cols` Axes of one figure.
    """
    if ax is not None:
        axes = np.atleast_1d(np.asarray(ax, dtype=object)).reshape(-1)
        if axes.size != rows * cols:
            raise ValueError(
                f"this plot needs {rows * cols} axes ({rows} x {cols}); got {axes.size}. Pass "
                "ax=None to get a new figure, or select fewer layers/heads."
            )
        return axes[0].figure, axes.reshape(rows, cols)
    width = min(MAX_FIGURE_INCHES, panel_inches[0] * cols + 1.0)
    height = min(MAX_FIGURE_INCHES, panel_inches[1] * rows + 0.8)
    figure = Figure(figsize=(width, height), layout="constrained")
    # An Agg canvas makes the figure drawable and savable without pyplot or a GUI backend.
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes


def finish(figure: Figure, save: str | Path | None) -> Figure:
    """Write the figure to `save` (PNG, SVG or PDF by suffix) when given; return it."""
    if save is not None:
        path = Path(save)
        if path.suffix.lower() not in SAVE_FORMATS:
            raise ValueError(f"save= must end in one of {SAVE_FORMATS}, got {path.name!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


def close_figure(figure: Figure) -> None:
    """Release a figure, including one created through pyplot (e.g. the caller's `ax`)."""
    import matplotlib.pyplot as plt  # only here: pyplot picks a backend on import

    plt.close(figure)
    figure.clear()


def save_figure(
    figure: Figure,
    directory: str | Path,
    name: str,
    formats: Sequence[str] = ("png",),
    *,
    dpi: int = 150,
    close: bool = True,
) -> list[Path]:
    """Save `figure` as `directory/name.<format>` for each format; close it unless `close=False`.

    Returns the written paths. The directory is created when missing.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in formats:
        path = directory / f"{name}.{extension.lstrip('.')}"
        if path.suffix.lower() not in SAVE_FORMATS:
            raise ValueError(f"format must be one of {SAVE_FORMATS}, got {extension!r}.")
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    if close:
        close_figure(figure)
    return paths


CAPTION_KEY = "attnkit"  # output metadata key the report's page template reads captions from


def show_figure(
    figure: Figure,
    directory: str | Path,
    name: str,
    caption: str,
    *,
    formats: Sequence[str] = ("png",),
    dpi: int = 150,
) -> None:
    """Save `figure` under `directory` by `name`, show it inline with `caption`, and close it.

    In a notebook the figure is displayed as a PNG whose output metadata carries the caption;
    the report renders it as a numbered `<figure>` with a `<figcaption>`. Outside IPython the
    figure is only saved (as `directory/name.<format>`). Returns nothing, so that a call
    ending a notebook cell does not print the file paths under the figure.
    """
    if not str(caption).strip():
        raise ValueError(f"figure {name!r} needs a caption: say in a sentence what it shows.")
    save_figure(figure, directory, name, formats, dpi=dpi, close=False)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # not in a notebook: saving is all there is to do
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        display(
            Image(data=buffer.getvalue(), format="png"),
            metadata={CAPTION_KEY: {"caption": str(caption), "name": name}},
        )
    close_figure(figure)
