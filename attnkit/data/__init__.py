"""Datasets for attnkit: readers for the real files, synthetic stand-ins, ``load`` and ``fetch``.

Typical notebook use::

    from attnkit.data import load
    train = load("sst2", "train")   # real data from $ATTNKIT_DATA_DIR, else synthetic + warning

``attnkit.data.fetch`` is the *module* (``fetch.fetch``, ``fetch.list_datasets``,
``fetch.format_dataset_table``, ``fetch.REGISTRY``); the function is deliberately not
re-exported under the same name, which would hide the module (the CLI imports the module).
"""

from attnkit.data import fetch
from attnkit.data.errors import (
    ChecksumError,
    DataQualityWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    SyntheticDataWarning,
)
from attnkit.data.fetch import REGISTRY, format_dataset_table, list_datasets
from attnkit.data.loading import DATASET_NAMES, load
from attnkit.data.paths import resolve_data_dir
from attnkit.data.readers import (
    AG_NEWS_CLASSES,
    ALIGNMENT_PAIRS,
    LinzenAgreement,
    agreement_dataset,
    read_ag_news,
    read_alignment,
    read_imdb,
    read_linzen_agreement,
    read_sst2,
    split_agreement,
    verb_number,
)
from attnkit.data.synthetic import (
    SENTIMENT_SIGNAL_WORDS,
    TOPIC_SIGNAL_WORDS,
    TOY_LEXICON,
    majority_signal_label,
    make_agreement_dataset,
    make_agreement_examples,
    make_signal_task,
    make_toy_translation,
)
from attnkit.data.types import AgreementExample, AlignmentDataset, AlignmentExample, TextDataset

__all__ = [
    "AG_NEWS_CLASSES",
    "ALIGNMENT_PAIRS",
    "DATASET_NAMES",
    "REGISTRY",
    "SENTIMENT_SIGNAL_WORDS",
    "TOPIC_SIGNAL_WORDS",
    "TOY_LEXICON",
    "AgreementExample",
    "AlignmentDataset",
    "AlignmentExample",
    "ChecksumError",
    "DataQualityWarning",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DownloadError",
    "LinzenAgreement",
    "SyntheticDataWarning",
    "TextDataset",
    "agreement_dataset",
    "fetch",
    "format_dataset_table",
    "list_datasets",
    "load",
    "majority_signal_label",
    "make_agreement_dataset",
    "make_agreement_examples",
    "make_signal_task",
    "make_toy_translation",
    "read_ag_news",
    "read_alignment",
    "read_imdb",
    "read_linzen_agreement",
    "read_sst2",
    "resolve_data_dir",
    "split_agreement",
    "verb_number",
]
