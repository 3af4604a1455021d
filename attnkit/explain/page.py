"""Write an `Explanation`: one offline HTML page (no script, nothing fetched, images inline),
a PNG figure, or the numbers as JSON (and CSV beside the page).

The page shows, per text: the target in words; the tokens highlighted per method (a diverging
red/blue scale for signed scores, white at 0; a sequential blue scale for attention); the layer
x token maps of the attention methods; the flow graph for short inputs; and the numbers.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from attnkit.explain.names import ExplainError
from attnkit.explain.run import GRAPH_UP_TO, Explanation, TextExplanation

SUFFIXES = (".html", ".png", ".json")

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table.highlight td { padding: 2px 6px; vertical-align: middle; }
td.method { font-weight: bold; white-space: nowrap; }
span.tok { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px;
  font-family: ui-monospace, monospace; font-size: 0.9em; }
p.note { background: #fff4d6; padding: 0.5em; border-left: 4px solid #e0a800; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
table.numbers { border-collapse: collapse; font-size: 0.8em; }
table.numbers td, table.numbers th { border: 1px solid #ddd; padding: 2px 4px; text-align: right; }
table.map { border-collapse: collapse; font-size: 0.7em; }
table.map td { width: 14px; height: 14px; border: 1px solid #fff; }
table.map th { font-weight: normal; text-align: right; padding-right: 4px; }
th.vert { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
"""


def check_out(path: str | Path) -> Path:
    """The output path, checked before any work: a known suffix, a writable folder."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ExplainError(
            f"--out {str(path)!r} must end in {', '.join(SUFFIXES)} (a page, a figure or the numbers)."
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExplainError(
            f"--out {str(path)!r}: the folder {str(folder)!r} does not exist; create it first."
        )
    probe = folder / f".attnkit-write-test-{path.stem}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ExplainError(
            f"--out {str(path)!r}: cannot write into {str(folder)!r} ({error.strerror}); choose a "
            "folder you can write to."
        ) from error
    return path


def _colour(value: float, scale: float, signed: bool) -> str:
    from attnkit.plots.tokens import score_colour

    return mcolors.to_hex(score_colour(value, scale, signed))


def _highlight(text: TextExplanation) -> str:
    rows = []
    for name, values in text.scores.items():
        array = np.asarray(values)
        signed, scale = bool((array < 0).any()), float(np.abs(array).max()) if array.size else 0.0
        spans = []
        for token, value in zip(text.tokens, values, strict=True):
            colour = _colour(value, scale, signed)
            dark = sum(mcolors.to_rgb(colour)) < 1.3
            spans.append(
                f'<span class="tok" style="background:{colour};color:{"#fff" if dark else "#000"}" '
                f'title="{value:.4g}">{html.escape(token)}</span>'
            )
        legend = f"±{scale:.2g}, red raises, blue lowers" if signed else f"0 to {scale:.2g}"
        rows.append(
            f'<tr><td class="method">{html.escape(name)}</td><td>{"".join(spans)}</td>'
            f"<td><small>{legend}</small></td></tr>"
        )
    return f'<table class="highlight">{"".join(rows)}</table>'


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(figure: Figure, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(figure)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _maps(text: TextExplanation) -> str:
    """Layer x token maps as HTML tables (one per attention method): a cell per (layer, token),
    shaded on the method's own scale, the last layer on top. Tables, not images: cheap to draw
    for long texts, and the numbers are in each cell's tooltip."""
    tables = []
    for name, rows in text.layers.items():
        array = np.asarray(rows)  # (L, T)
        scale = float(np.abs(array).max()) if array.size else 0.0
        signed = bool((array < 0).any())
        body = []
        for layer in range(len(rows) - 1, -1, -1):
            cells = "".join(
                f'<td style="background:{_colour(v, scale, signed)}" title="{v:.4g}"></td>'
                for v in rows[layer]
            )
            body.append(f"<tr><th>layer {layer + 1}</th>{cells}</tr>")
        labels = "".join(f'<th class="vert">{html.escape(t)}</th>' for t in text.tokens)
        tables.append(
            f'<figure><table class="map">{"".join(body)}<tr><th></th>{labels}</tr></table>'
            f"<figcaption>{html.escape(name)}: the first token's row after every layer (layer 1 at "
            f"the bottom), 0 to {scale:.2g}.</figcaption></figure>"
        )
    return "".join(tables)


def _graph(explanation: Explanation, index: int, text: TextExplanation) -> str:
    from attnkit.plots import flow_graph
    from attnkit.propagate.rollout import augmented_attention

    attn = explanation.attention
    if attn is None or len(text.tokens) > GRAPH_UP_TO:
        return ""
    one = attn[index]
    capacities = augmented_attention(one.weights, one.mask)[:, 0]  # (L, T, T) Â with residual
    values = np.asarray(text.scores["flow"]) if "flow" in text.scores else None
    figure = flow_graph(capacities, tokens=one.tokens[0], mask=one.mask[0], values=values)
    return _figure(
        figure,
        "attention graph",
        "The attention graph flow runs on: tokens at every layer, edges Â = rownorm(mean of heads "
        "+ I); input nodes coloured by their flow value.",
    )


def _numbers(text: TextExplanation) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in text.scores)
    rows = "".join(
        f"<tr><th>{html.escape(token)}</th>"
        + "".join(f"<td>{text.scores[name][t]:.4g}</td>" for name in text.scores)
        + "</tr>"
        for t, token in enumerate(text.tokens)
    )
    return f'<details><summary>Numbers</summary><table class="numbers"><tr><th>token</th>{head}</tr>{rows}</table></details>'


def page(explanation: Explanation, sidecar: str | None = None) -> str:
    """The HTML text of the page (no script; images as inline data)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>attnkit explain</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>attnkit explain</h1>",
        f"<p>Model: {html.escape(explanation.model)}. Methods: {html.escape(', '.join(explanation.methods))}. "
        "Attention methods (raw, rollout, flow) show the first token's row; the others explain "
        f"the target below ({'its probability' if explanation.output == 'prob' else 'its value'}), "
        "signed, with special tokens from the tokenizer left at 0 by blank-out and integrated "
        "gradients.</p>",
    ]
    if sidecar:
        parts.append(
            f'<p>The numbers: <a href="{html.escape(sidecar)}.json">{html.escape(sidecar)}.json</a>, '
            f'<a href="{html.escape(sidecar)}.csv">{html.escape(sidecar)}.csv</a>.</p>'
        )
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in explanation.notes]
    for index, text in enumerate(explanation.texts):
        parts += [
            f"<h2>Text {index + 1}: {html.escape(text.text[:120])}</h2>",
            f"<p>Target: {html.escape(text.target)}.</p>",
        ]
        if text.truncated:
            parts.append(
                '<p class="note">This text was longer than the model accepts and was truncated.</p>'
            )
        parts += [_highlight(text), _maps(text), _graph(explanation, index, text), _numbers(text)]
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part)


def _csv(explanation: Explanation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "position", "token", *explanation.methods])
    for index, text in enumerate(explanation.texts):
        for t, token in enumerate(text.tokens):
            writer.writerow(
                [index, t, token, *(text.scores[name][t] for name in explanation.methods)]
            )
    return buffer.getvalue()


def _summary_figure(explanation: Explanation) -> Figure:
    from attnkit.plots import token_scores

    text = explanation.texts[0]
    return token_scores(text.scores, text.tokens)


def save(explanation: Explanation, path: str | Path) -> list[str]:
    """Write the explanation; returns the written paths."""
    path = check_out(path)
    suffix = path.suffix.lower()
    written = [path]
    if suffix == ".json":
        path.write_text(json.dumps(explanation.to_dict(), indent=1))
    elif suffix == ".png":
        _summary_figure(explanation).savefig(path, dpi=120, bbox_inches="tight")
    else:
        path.write_text(page(explanation, sidecar=path.stem), encoding="utf-8")
        path.with_suffix(".json").write_text(json.dumps(explanation.to_dict(), indent=1))
        path.with_suffix(".csv").write_text(_csv(explanation))
        written += [path.with_suffix(".json"), path.with_suffix(".csv")]
    return [str(p) for p in written]
