"""The package's face: lazy public names visible to IDEs, one base error class, --version."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import attnkit
from attnkit.errors import AttnkitError

INIT = Path(attnkit.__file__)


def _type_checking_names() -> set[str]:
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    return {alias.name for node in block.body for alias in node.names}


def test_every_lazy_export_is_imported_for_type_checkers():
    assert _type_checking_names() == set(attnkit._EXPORTS)
    for name, module in attnkit._EXPORTS.items():
        value = getattr(attnkit, name)
        if isinstance(value, type(attnkit)):  # capture / explain: a callable package
            assert callable(value) and name == module.rsplit(".", 1)[1]
        else:
            assert getattr(importlib.import_module(module), name) is value


@pytest.mark.parametrize(
    "path",
    [
        "attnkit.attentions.AttentionInputError",
        "attnkit.importance.ImportanceInputError",
        "attnkit.metrics.MetricInputError",
        "attnkit.metrics_alignment.AlignmentInputError",
        "attnkit.data.errors.DatasetFormatError",
        "attnkit.data.errors.ChecksumError",
        "attnkit.explain.ExplainError",
        "attnkit.relevance.RelevanceInputError",
        "attnkit.metrics_faithfulness.FaithfulnessInputError",
    ],
)
def test_errors_share_one_base_class(path):
    module, name = path.rsplit(".", 1)
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, AttnkitError) and issubclass(error, ValueError)


def test_alignment_errors_are_specific():
    from attnkit.metrics_alignment import AlignmentInputError, corpus_bleu

    with pytest.raises(AlignmentInputError, match="hypotheses"):
        corpus_bleu([["a"]], [])
