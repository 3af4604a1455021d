"""Readers for the real dataset files in the data directory (layout of shared/data)."""

from attnkit.data.readers.ag_news import AG_NEWS_CLASSES, AG_NEWS_SPLITS, read_ag_news
from attnkit.data.readers.agreement import (
    AGREEMENT_SPLITS,
    LinzenAgreement,
    agreement_dataset,
    read_linzen_agreement,
    split_agreement,
    verb_number,
)
from attnkit.data.readers.alignment import ALIGNMENT_PAIRS, read_alignment
from attnkit.data.readers.imdb import IMDB_SPLITS, read_imdb
from attnkit.data.readers.sst import SST2_SPLITS, read_sst2

__all__ = [
    "AG_NEWS_CLASSES",
    "AG_NEWS_SPLITS",
    "AGREEMENT_SPLITS",
    "ALIGNMENT_PAIRS",
    "IMDB_SPLITS",
    "SST2_SPLITS",
    "LinzenAgreement",
    "agreement_dataset",
    "read_ag_news",
    "read_alignment",
    "read_imdb",
    "read_linzen_agreement",
    "read_sst2",
    "split_agreement",
    "verb_number",
]
