"""``load(name, split)``: the one entry point notebooks use, with a synthetic fallback.

When the real files are missing, ``load`` warns (SyntheticDataWarning), returns the matching
synthetic task marked ``synthetic=True`` with ``origin="synthetic: <reason>; ..."``, and tells
:mod:`attnkit.record` so the notebook's report can say which data it used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

from attnkit.data.errors import DatasetNotFoundError, SyntheticDataWarning
from attnkit.data.readers import (
    AG_NEWS_CLASSES,
    AG_NEWS_SPLITS,
    AGREEMENT_SPLITS,
    ALIGNMENT_PAIRS,
    IMDB_SPLITS,
    SST2_SPLITS,
    agreement_dataset,
    read_ag_news,
    read_alignment,
    read_imdb,
    read_linzen_agreement,
    read_sst2,
    split_agreement,
)
from attnkit.data.splits import derive_seed, subsample_indices
from attnkit.data.synthetic import (
    SENTIMENT_SIGNAL_WORDS,
    TOPIC_SIGNAL_WORDS,
    make_agreement_dataset,
    make_signal_task,
    make_toy_translation,
)
from attnkit.data.types import AlignmentDataset, TextDataset

Dataset = TextDataset | AlignmentDataset
# Synthetic set sizes when no limit is given: big enough to train the small models on.
SYNTHETIC_SIZES = {"train": 2000, "dev": 500, "test": 500, "test_alps": 500}


@dataclass(frozen=True)
class _Spec:
    """How to read one named dataset and how to synthesise its stand-in."""

    splits: tuple[str, ...]
    options: frozenset[str]
    read: Callable[[Path | str | None, str, int, int | None, dict[str, Any]], Dataset]
    synthesize: Callable[[str, int, int, dict[str, Any]], Dataset]


def _read_agreement(
    data_dir: Path | str | None, split: str, seed: int, limit: int | None, options: dict[str, Any]
) -> Dataset:
    linzen = read_linzen_agreement(data_dir, skip_bad=options.get("skip_bad", False))
    examples = split_agreement(linzen.examples, seed)[split]
    return agreement_dataset(examples, f"{linzen.origin} (split={split}, seed={seed})", split=split)


def _synthetic_ag_news(split: str, seed: int, n: int, options: dict[str, Any]) -> Dataset:
    classes = tuple(options.get("classes") or AG_NEWS_CLASSES)
    return make_signal_task(
        n, seed=seed, signal_words={c: TOPIC_SIGNAL_WORDS[c] for c in classes}, split=split
    )


def _build_specs() -> dict[str, _Spec]:
    specs = {
        "sst2": _Spec(
            SST2_SPLITS,
            frozenset(),
            lambda d, split, seed, limit, o: read_sst2(d, split),
            lambda split, seed, n, o: make_signal_task(
                n, seed=seed, signal_words=SENTIMENT_SIGNAL_WORDS, split=split
            ),
        ),
        "imdb": _Spec(
            IMDB_SPLITS,
            frozenset(),
            lambda d, split, seed, limit, o: read_imdb(d, split, limit=limit, seed=seed),
            lambda split, seed, n, o: make_signal_task(
                n, seed=seed, length=(30, 90), max_signal=5, split=split
            ),
        ),
        "ag_news": _Spec(
            AG_NEWS_SPLITS,
            frozenset({"classes"}),
            lambda d, split, seed, limit, o: read_ag_news(
                d, split, classes=o.get("classes"), seed=seed
            ),
            _synthetic_ag_news,
        ),
        "agreement": _Spec(
            AGREEMENT_SPLITS,
            frozenset({"skip_bad", "max_attractors"}),
            _read_agreement,
            lambda split, seed, n, o: make_agreement_dataset(
                n, seed=seed, max_attractors=o.get("max_attractors", 3), split=split
            ),
        ),
    }
    for pair in ALIGNMENT_PAIRS:
        specs[f"alignment_{pair}"] = _Spec(
            ("test",),
            frozenset(),
            lambda d, split, seed, limit, o, pair=pair: read_alignment(d, pair),
            lambda split, seed, n, o: make_toy_translation(n, seed=seed, split=split),
        )
    return specs


DATASET_SPECS: dict[str, _Spec] = _build_specs()
DATASET_NAMES: tuple[str, ...] = tuple(DATASET_SPECS)


def _record_used_data(name: str, origin: str, synthetic: bool, warning: str | None) -> None:
    """Tell `attnkit.record` which data was used (the report lists it on the notebook's page)."""
    from attnkit import record  # on first use: keeps `import attnkit.data` light

    record.used_data(name=name, origin=origin, synthetic=synthetic, warning=warning)


def load(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    *,
    require_data: bool = False,
    seed: int = 0,
    limit: int | None = None,
    **options: Any,
) -> Dataset:
    """Load split ``split`` of dataset ``name``, falling back to synthetic data when files are missing.

    Args:
        name: ``sst2``, ``imdb``, ``ag_news``, ``agreement`` or ``alignment_<pair>``
            (pair in enfr, roen, jaen, zhen).
        split: one of the dataset's splits (``alignment_*`` has only ``test``).
        data_dir: data directory; default ``$ATTNKIT_DATA_DIR``.
        require_data: raise DatasetNotFoundError instead of using synthetic data.
        seed: drives every split/subsample/synthetic draw, so results are reproducible.
        limit: keep at most this many examples (a seeded subset, original order kept).
        options: ``classes=`` for ag_news; ``skip_bad=`` and ``max_attractors=`` (synthetic)
            for agreement.

    Returns:
        TextDataset, or AlignmentDataset for ``alignment_*``. A corrupt real file raises
        DatasetFormatError; it never silently falls back.
    """
    spec = DATASET_SPECS.get(name)
    if spec is None:
        raise ValueError(
            f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}. Pass one of these "
            "names (`attnkit data list` shows which are present)."
        )
    if split not in spec.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; choose from {spec.splits}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, Integral) or limit < 0
    ):
        raise ValueError(
            f"limit must be None (every example) or an int >= 0, got {limit!r}; pass e.g. "
            "limit=200 to keep a seeded subset of 200 examples."
        )
    unknown_options = set(options) - spec.options
    if unknown_options:
        raise TypeError(
            f"load({name!r}) got unexpected option(s) {sorted(unknown_options)}; allowed: {sorted(spec.options)}"
        )
    warning: str | None = None
    try:
        dataset = spec.read(data_dir, split, seed, limit, options)
    except DatasetNotFoundError as error:
        if require_data:
            raise
        reason = (
            f"missing {', '.join(str(p) for p in error.missing)}"
            if error.missing
            else "no data directory set"
        )
        n = limit if limit is not None else SYNTHETIC_SIZES[split]
        dataset = spec.synthesize(split, derive_seed(seed, name, split), n, options)
        dataset.origin = f"synthetic: {reason}; {dataset.origin}"
        dataset.synthetic = True
        warning = (
            f"{name}/{split}: real data not found ({reason}); using synthetic data instead "
            f"({n} generated examples). To use the real data run `attnkit data fetch {error.fetch_name}` "
            f"or set ATTNKIT_DATA_DIR / --data-dir."
        )
        warnings.warn(warning, SyntheticDataWarning, stacklevel=2)
    if limit is not None and len(dataset) > limit:
        dataset = dataset.subset(
            subsample_indices(len(dataset), limit, derive_seed(seed, name, split, "limit"))
        )
    dataset.name, dataset.split = name, split
    _record_used_data(name, dataset.origin, dataset.synthetic, warning)
    return dataset
