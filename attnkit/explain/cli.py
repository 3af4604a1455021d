"""`attnkit explain`: the command-line face of `attnkit.explain` (parser and handler)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnkit.explain.names import DEFAULT_METHODS, METHODS, ExplainError, check_methods


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `explain` to the `attnkit` subcommands."""
    parser = commands.add_parser(
        "explain",
        help="explain your own text: token scores of every method, one offline page",
        description="Token scores of attention (raw, rollout, flow) and attribution methods for "
        "your text, written as one offline HTML page (with .json and .csv beside it), a PNG or "
        "JSON. A model without a classification head (e.g. MiniLM, a sentence encoder) is "
        "explained through the similarity of its sentence embedding to --compare's.",
    )
    parser.add_argument(
        "--model", default="minilm", help="'minilm' (shipped) or a local Hugging Face model folder"
    )
    parser.add_argument("--text", action="append", help="a text to explain (repeatable)")
    parser.add_argument("--file", help="a UTF-8 file with one text per line")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from: {', '.join(METHODS)} (default: %(default)s)",
    )
    parser.add_argument("--target", help="class id or name to explain (default: the predicted)")
    parser.add_argument(
        "--compare",
        help="for a model without a classification head: the text whose sentence embedding the "
        "similarity is taken to (default: the empty text)",
    )
    parser.add_argument("--out", required=True, help="page.html, figure.png or numbers.json")
    parser.set_defaults(func=run)
    return parser


def _texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.text or [])
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ExplainError(f"--file {args.file!r} does not exist.")
        texts += [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    if not texts:
        raise ExplainError(
            'nothing to explain: pass --text "..." (repeatable) or --file texts.txt.'
        )
    return texts


def run(args: argparse.Namespace) -> int:
    """Check everything cheap first (methods, output folder, texts), then load and explain."""
    from attnkit.explain.page import check_out  # torch and matplotlib load from here on
    from attnkit.explain.run import explain

    methods = check_methods(args.methods)
    check_out(args.out)
    texts = _texts(args)
    explanation = explain(
        texts, args.model, methods=methods, target=args.target, compare=args.compare
    )
    for path in explanation.save(args.out):
        print(f"wrote {path}")
    for note in explanation.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
