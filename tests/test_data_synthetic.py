"""Synthetic generators (determinism and invariants) and load()'s fallback to them."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import pytest

from attnkit.data import (
    SENTIMENT_SIGNAL_WORDS,
    TOPIC_SIGNAL_WORDS,
    TOY_LEXICON,
    AlignmentDataset,
    DataQualityWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    SyntheticDataWarning,
    TextDataset,
    load,
    majority_signal_label,
    make_agreement_examples,
    make_signal_task,
    make_toy_translation,
    verb_number,
)
from attnkit.data.synthetic.agreement_grammar import NOUN_NUMBER
from attnkit.data.synthetic.toy_translation import (
    ADJECTIVES,
    DROPPED_SOURCE_WORDS,
    INSERTED_TARGET_WORD,
    NOUNS,
)

REAL_DATA = Path(os.environ.get("ATTNKIT_SHARED_DATA", "/work/shared/data"))
needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "sources.json").is_file(), reason="real shared/data not available"
)


@pytest.fixture
def recorded(monkeypatch) -> list[dict]:
    """Capture attnkit.record.used_data calls made by load() (and keep the real module quiet)."""
    calls: list[dict] = []
    import attnkit.record

    monkeypatch.setattr(attnkit.record, "used_data", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv("ATTNKIT_DATA_DIR", raising=False)


# --- agreement grammar -----------------------------------------------------------------------


def test_agreement_grammar_is_deterministic_by_seed():
    assert make_agreement_examples(50, seed=7) == make_agreement_examples(50, seed=7)
    assert make_agreement_examples(50, seed=7) != make_agreement_examples(50, seed=8)


def test_agreement_grammar_invariants():
    examples = make_agreement_examples(400, seed=1, max_attractors=3)
    for example in examples:
        subject = example.prefix[1]
        assert example.prefix[0] == "the" and example.label == NOUN_NUMBER[subject]
        # Recount attractors independently: intervening nouns of the other number.
        intervening = [NOUN_NUMBER[t] for t in example.prefix[2:] if t in NOUN_NUMBER]
        assert example.n_attractors == sum(number != example.label for number in intervening)
        assert example.sentence[example.verb_index] == example.correct_verb
        assert example.prefix == example.sentence[: example.verb_index]
        assert verb_number(example.correct_verb, example.wrong_verb) == example.label
    assert set(Counter(e.n_attractors for e in examples)) == {0, 1, 2, 3}
    assert 150 < sum(e.label for e in examples) < 250


# --- signal task -----------------------------------------------------------------------------


def test_signal_task_is_deterministic_by_seed():
    first, again, other = (make_signal_task(30, seed=s) for s in (5, 5, 6))
    assert first.texts == again.texts and first.labels == again.labels
    assert first.texts != other.texts


@pytest.mark.parametrize("signal_words", [SENTIMENT_SIGNAL_WORDS, TOPIC_SIGNAL_WORDS])
def test_signal_task_labels_follow_signal_tokens(signal_words):
    data = make_signal_task(300, seed=2, signal_words=signal_words)
    all_signal = {word for words in signal_words.values() for word in words}
    assert data.label_names == tuple(signal_words)
    for tokens, label, mask in zip(data.texts, data.labels, data.extra["signal_mask"], strict=True):
        assert mask == [int(token in all_signal) for token in tokens]
        counts = Counter(
            name for token in tokens for name, words in signal_words.items() if token in words
        )
        top = counts.most_common()
        assert top[0][0] == data.label_names[label]
        assert len(top) == 1 or top[0][1] > top[1][1]  # strict majority
        assert majority_signal_label(tokens, signal_words) == label
    assert set(data.labels) == set(range(len(signal_words)))


# --- toy translation -------------------------------------------------------------------------


def test_toy_translation_is_deterministic_by_seed():
    assert make_toy_translation(40, seed=3).examples == make_toy_translation(40, seed=3).examples
    assert make_toy_translation(40, seed=3).examples != make_toy_translation(40, seed=4).examples


def test_toy_translation_links_follow_the_lexicon():
    data = make_toy_translation(300, seed=0)
    saw = Counter()
    for example in data:
        assert example.sure == example.possible
        for i, word in enumerate(example.src):
            targets = sorted(j for s, j in example.sure if s == i)
            assert [example.tgt[j] for j in targets] == list(TOY_LEXICON[word])
            saw["dropped"] += word in DROPPED_SOURCE_WORDS
            saw["one_to_many"] += len(TOY_LEXICON[word]) > 1
            if word in ADJECTIVES and i + 1 < len(example.src) and example.src[i + 1] in NOUNS:
                noun_start = min(j for s, j in example.sure if s == i + 1)
                assert noun_start < targets[0]  # reordered: noun before adjective
                saw["reordered"] += 1
        aligned_targets = {j for _, j in example.sure}
        unaligned = [example.tgt[j] for j in range(len(example.tgt)) if j not in aligned_targets]
        assert all(word == INSERTED_TARGET_WORD for word in unaligned)
        saw["inserted"] += len(unaligned)
    assert all(saw[k] > 20 for k in ("dropped", "one_to_many", "reordered", "inserted"))


def test_toy_translation_documents_join_sentences_with_shifted_links():
    """Oracle: a document of several sentences is its sentences one after another, each link
    shifted by the lengths before it; the lexicon still holds word by word."""
    docs = make_toy_translation(50, seed=2, sentences=(2, 3))
    assert "sentences=2-3" in docs.origin
    for doc in docs:
        assert doc.sure == doc.possible
        for i, word in enumerate(doc.src):
            targets = sorted(j for s, j in doc.sure if s == i)
            assert [doc.tgt[j] for j in targets] == list(TOY_LEXICON[word])
    lengths = [len(d.src) for d in docs]
    assert min(lengths) >= 10 and max(lengths) <= 36
    assert make_toy_translation(20, seed=2, sentences=1).examples == (
        make_toy_translation(20, seed=2).examples
    )
    fixed = make_toy_translation(10, seed=0, sentences=2)
    assert all(sum(w == "the" or w == "a" for w in d.src) == 4 for d in fixed)  # 2 NPs a sentence
    for bad in (0, (3, 2), True, (1.5, 2)):
        with pytest.raises(ValueError, match="sentences"):
            make_toy_translation(5, sentences=bad)


# --- load(): real data, fallback, require_data, record hook ----------------------------------


@pytest.mark.parametrize(
    ("name", "split", "kind"),
    [
        ("sst2", "dev", TextDataset),
        ("imdb", "test", TextDataset),
        ("ag_news", "test", TextDataset),
        ("agreement", "train", TextDataset),
        ("alignment_enfr", "test", AlignmentDataset),
    ],
)
def test_load_falls_back_to_synthetic_with_warning(tmp_path, recorded, name, split, kind):
    with pytest.warns(SyntheticDataWarning, match="using synthetic data") as caught:
        data = load(name, split, tmp_path, limit=20)
    message = str(caught[0].message)
    assert str(tmp_path) in message and "attnkit data fetch" in message
    assert isinstance(data, kind) and len(data) == 20
    assert data.synthetic and data.origin.startswith(f"synthetic: missing {tmp_path}")
    assert (data.name, data.split) == (name, split)
    assert recorded == [
        {"name": name, "origin": data.origin, "synthetic": True, "warning": message}
    ]


def test_load_fallback_is_deterministic_and_splits_differ(no_data_dir, recorded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntheticDataWarning)
        train, again, test = (
            load("sst2", "train", seed=1),
            load("sst2", "train", seed=1),
            load("sst2", "test", seed=1),
        )
        ag = load("ag_news", "dev", classes=("World", "Business"), limit=30)
    assert "no data directory" in train.origin
    assert (
        len(train) == 2000
        and train.texts == again.texts
        and train.texts != test.texts[: len(train)]
    )
    assert ag.label_names == ("World", "Business")


def test_load_require_data_raises(tmp_path, recorded):
    with pytest.raises(DatasetNotFoundError, match="attnkit data fetch agreement"):
        load("agreement", "test", tmp_path, require_data=True)
    assert recorded == []


def test_load_does_not_fall_back_on_a_corrupt_file(tmp_path, recorded):
    (tmp_path / "sst").mkdir()
    (tmp_path / "sst" / "stsa.binary.test").write_text("x not a label\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError):
        load("sst2", "test", tmp_path)


def test_load_rejects_unknown_names_splits_and_options(tmp_path):
    with pytest.raises(ValueError, match="known: sst2, imdb"):
        load("sst5", "train", tmp_path)
    with pytest.raises(ValueError, match="no split 'train'"):
        load("alignment_zhen", "train", tmp_path)
    with pytest.raises(TypeError, match="classes"):
        load("sst2", "train", tmp_path, classes=("World",))


@needs_real_data
def test_load_real_data_records_origin(recorded):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticDataWarning)
        data = load("sst2", "dev", REAL_DATA)
        with pytest.warns(DataQualityWarning, match="undecidable"):
            agreement = load("agreement", "test", REAL_DATA, limit=100, skip_bad=True)
    assert len(data) == 872 and not data.synthetic and data.origin.endswith("stsa.binary.dev")
    assert len(agreement) == 100 and set(agreement.extra) >= {"n_attractors", "verb_index"}
    assert recorded[0] == {
        "name": "sst2",
        "origin": data.origin,
        "synthetic": False,
        "warning": None,
    }
