"""Static attention figures (matplotlib/seaborn), after Abnar & Zuidema (2020).

Every function returns a `matplotlib.figure.Figure`, accepts `ax=` to draw into existing axes
and `save=` to write a .png/.svg/.pdf. Figures are not registered with pyplot, so they work
headless (Agg) and need no closing; `save_figure` writes a figure under a directory by name, and
`show_figure` also shows it in a notebook with a caption the report prints beneath it.

Inputs: an `Attentions` plus `example`, or arrays/tensors with `tokens=` (and `mask=` to drop
padding); only real tokens are plotted. A 4-D array needs `dims=` naming its dimensions (a
rollout is `(L, B, T, T)`, one example's weights `(L, H, T, S)`); see `attnkit.plots.inputs`.
Signed scores get a diverging colour map centred on 0; `token_scores` shades the tokens of a
text by each method's scores.
"""

from attnkit.plots.figures import close_figure, save_figure, show_figure
from attnkit.plots.graph import flow_graph
from attnkit.plots.heatmaps import attention_heatmaps, cls_across_layers, compare_maps
from attnkit.plots.image import image_overlay
from attnkit.plots.tokens import token_scores

__all__ = [
    "attention_heatmaps",
    "close_figure",
    "cls_across_layers",
    "compare_maps",
    "flow_graph",
    "image_overlay",
    "save_figure",
    "show_figure",
    "token_scores",
]
