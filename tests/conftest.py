"""Fixtures and helpers shared by several test modules."""

from collections.abc import Sequence
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from attnkit.data import make_signal_task
from attnkit.models.additive import AdditiveClassifier, AdditiveCollate, AdditiveConfig
from attnkit.models.vocab import Vocab, labelled_examples
from attnkit.train import TrainConfig, cross_entropy_loss, fit, set_seed


@pytest.fixture(scope="module")
def single_thread():
    """Run a module on one torch thread: tiny models on a shared 2-core machine are far faster so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_signal_classifier(epochs: int, encoder: str = "lstm"):
    """A small additive-attention classifier trained briefly on the synthetic signal task.

    Returns `(model, train, collate)` with `train` the `(tokens, label)` pairs it was fit on.
    """
    train = make_signal_task(300, seed=0, length=(5, 12))
    vocab = Vocab.build(train.texts)
    collate = AdditiveCollate(vocab)
    set_seed(0)
    model = AdditiveClassifier(
        AdditiveConfig(len(vocab), embed_dim=16, hidden_size=16, encoder=encoder)
    )
    fit(
        model,
        labelled_examples(train),
        loss_fn=cross_entropy_loss,
        config=TrainConfig(epochs=epochs, lr=1e-2),
        collate=collate,
        cache=False,
        progress=False,
    )
    return model.eval(), labelled_examples(train), collate


NOTEBOOK_PARAMETERS = (
    'profile = "quick"\nseed = 0\ndata_dir = None\ndevice = "cpu"\nout_dir = "x"\n'
    "require_data = False"
)


def write_notebook(
    folder: Path,
    name: str,
    cells: Sequence[str | nbformat.NotebookNode] = ("x = 1",),
    *,
    parameters: bool = True,
    paper: str | None = None,
) -> Path:
    """A small notebook for the report runner: a title, the `parameters` cell, then `cells`
    (strings become code cells). Returns its path, `folder/name.ipynb`."""
    body = [new_markdown_cell(f"# {name}")]
    if parameters:
        body.append(new_code_cell(NOTEBOOK_PARAMETERS, metadata={"tags": ["parameters"]}))
    body += [new_code_cell(cell) if isinstance(cell, str) else cell for cell in cells]
    notebook = new_notebook(cells=body)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["attnkit"] = {"paper": paper or f"Paper of {name}", "title": name}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path
