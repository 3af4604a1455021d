"""Readers of attnkit.data on small files written here, plus the real shared/data when present."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections import Counter
from pathlib import Path

import pytest

from attnkit.data import (
    DataQualityWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    read_ag_news,
    read_alignment,
    read_imdb,
    read_linzen_agreement,
    read_sst2,
    resolve_data_dir,
    split_agreement,
    verb_number,
)

REAL_DATA = Path(os.environ.get("ATTNKIT_SHARED_DATA", "/work/shared/data"))
needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "sources.json").is_file(), reason="real shared/data not available"
)


def write(root: Path, relative: str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``root/relative``, creating folders."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_imdb(
    root: Path, split: str, rows: list[list[str]], header=("id", "label", "rating", "text")
) -> Path:
    """Write an IMDB-style csv.gz with ``header`` and ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = root / "imdb" / f"{split}.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8")))
    return path


# --- data directory -------------------------------------------------------------------------


def test_resolve_data_dir_prefers_argument_then_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.setenv("ATTNKIT_DATA_DIR", "")
    assert resolve_data_dir(None) is None
    monkeypatch.delenv("ATTNKIT_DATA_DIR")
    assert resolve_data_dir(None) is None


def test_missing_file_error_names_path_dataset_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        read_sst2(tmp_path, "dev")
    error = caught.value
    assert isinstance(error, FileNotFoundError)
    message = str(error)
    assert str(tmp_path / "sst" / "stsa.binary.dev") in message
    assert "'sst2'" in message
    assert "attnkit data fetch sst" in message and "ATTNKIT_DATA_DIR" in message
    assert error.missing == [tmp_path / "sst" / "stsa.binary.dev"]


def test_no_data_dir_error_says_so(monkeypatch):
    monkeypatch.delenv("ATTNKIT_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="no data directory"):
        read_sst2(None, "train")


# --- SST-2 -----------------------------------------------------------------------------------


def test_sst2_reads_labels_and_lowercased_tokens(tmp_path):
    write(tmp_path, "sst/stsa.binary.dev", "1 A Great film .\n0 dull , dull\n\n1 fine\n")
    data = read_sst2(tmp_path, "dev")
    assert data.labels == [1, 0, 1]
    assert data.texts[0] == ["a", "great", "film", "."]
    assert data.raw[1] == "dull , dull"
    assert data.label_names == ("negative", "positive")
    assert data.origin == str(tmp_path / "sst" / "stsa.binary.dev")


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("1 ok\npositive text\n", 2, "integer label"),
        ("1 ok\n3 text\n", 2, "label 0 or 1"),
        ("1 ok\n0\n", 2, "no text"),
    ],
)
def test_sst2_bad_line_names_file_and_line(tmp_path, content, line, fragment):
    path = write(tmp_path, "sst/stsa.binary.train", content)
    with pytest.raises(DatasetFormatError, match=fragment) as caught:
        read_sst2(tmp_path, "train")
    assert caught.value.line == line and caught.value.path == path
    assert f"{path}:{line}" in str(caught.value)


@needs_real_data
def test_sst2_real_counts():
    counts = {split: len(read_sst2(REAL_DATA, split)) for split in ("train", "dev", "test")}
    assert counts == {"train": 6920, "dev": 872, "test": 1821}
    assert set(read_sst2(REAL_DATA, "dev").labels) == {0, 1}


# --- IMDB ------------------------------------------------------------------------------------


def imdb_rows(n: int) -> list[list[str]]:
    return [
        [f"train_pos_{i}", str(i % 2), str(1 + i % 10), f"Review {i}.<br /><br />Good!"]
        for i in range(n)
    ]


def test_imdb_strips_breaks_and_tokenizes(tmp_path):
    write_imdb(tmp_path, "test", imdb_rows(3))
    data = read_imdb(tmp_path, "test")
    assert data.raw[0] == "Review 0.  Good!"
    assert data.texts[1] == ["review", "1", ".", "good", "!"]
    assert data.labels == [0, 1, 0]
    assert data.extra["rating"] == [1, 2, 3]
    assert data.extra["id"] == ["train_pos_0", "train_pos_1", "train_pos_2"]


def test_imdb_train_dev_partition_and_seeded_limit(tmp_path):
    write_imdb(tmp_path, "train", imdb_rows(50))
    train, dev = read_imdb(tmp_path, "train", seed=3), read_imdb(tmp_path, "dev", seed=3)
    assert len(dev) == 5 and len(train) == 45
    assert set(train.extra["id"]).isdisjoint(dev.extra["id"])
    limited = read_imdb(tmp_path, "train", limit=10, seed=3)
    assert len(limited) == 10 and set(limited.extra["id"]) <= set(train.extra["id"])
    assert read_imdb(tmp_path, "train", limit=10, seed=3).extra["id"] == limited.extra["id"]
    assert read_imdb(tmp_path, "train", limit=10, seed=4).extra["id"] != limited.extra["id"]


def test_imdb_truncated_gzip_is_a_format_error(tmp_path):
    path = write_imdb(tmp_path, "test", imdb_rows(400))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetFormatError, match="gzip") as caught:
        read_imdb(tmp_path, "test")
    assert caught.value.path == path and caught.value.line is not None


def test_imdb_missing_column_and_bad_label(tmp_path):
    write_imdb(tmp_path, "test", [["x", "1", "text"]], header=("id", "label", "text"))
    with pytest.raises(DatasetFormatError, match=r"missing \['rating'\]"):
        read_imdb(tmp_path, "test")
    write_imdb(tmp_path, "test", [["a", "1", "5", "t"], ["b", "pos", "5", "t"]])
    with pytest.raises(DatasetFormatError, match="integer label") as caught:
        read_imdb(tmp_path, "test")
    assert caught.value.line == 3  # header is line 1


def test_imdb_not_gzip_is_a_format_error(tmp_path):
    write(tmp_path, "imdb/test.csv.gz", "id,label,rating,text\n")
    with pytest.raises(DatasetFormatError):
        read_imdb(tmp_path, "test")


@needs_real_data
def test_imdb_real_rows_and_subsample():
    from attnkit.data.readers.imdb import _read_imdb_rows

    rows = _read_imdb_rows(REAL_DATA / "imdb" / "test.csv.gz")
    assert len(rows) == 25000 and Counter(label for _, label, _, _ in rows) == {0: 12500, 1: 12500}
    data = read_imdb(REAL_DATA, "test", limit=40, seed=1)
    assert len(data) == 40 and all(i.startswith("test_") for i in data.extra["id"])
    assert not any("<br" in text for text in data.raw)


# --- AG News ---------------------------------------------------------------------------------

AG_CSV = '"3","Fears for pension","Unions say they #39;re disappointed."\n"1","Talks fail","Leaders\\walk out."\n"2","Win","Team wins."\n"1","Vote","Count."\n'


def test_ag_news_test_csv_all_and_two_classes(tmp_path):
    write(tmp_path, "ag_news/test.csv", AG_CSV)
    data = read_ag_news(tmp_path, "test")
    assert data.label_names == ("World", "Sports", "Business", "Sci/Tech")
    assert data.labels == [2, 0, 1, 0]
    assert data.raw[0] == "Fears for pension Unions say they're disappointed."
    assert data.raw[1] == "Talks fail Leaders walk out."
    two = read_ag_news(tmp_path, "test", classes=("World", "Business"))
    assert two.label_names == ("World", "Business")
    assert two.labels == [1, 0, 0]  # Business -> 1, World -> 0, Sports dropped


def test_ag_news_alps_tsv_train_dev(tmp_path):
    names = ["World", "Sports", "Business", "Sci/Tech"]
    write(
        tmp_path, "ag_news/alps_dev.tsv", "".join(f"text {i}\t{names[i % 4]}\n" for i in range(40))
    )
    train, dev = read_ag_news(tmp_path, "train"), read_ag_news(tmp_path, "dev")
    assert len(train) == 36 and len(dev) == 4
    assert set(train.raw).isdisjoint(dev.raw)
    assert all(
        names[label] == names[int(text.split()[1]) % 4]
        for text, label in zip(train.raw, train.labels, strict=True)
    )


@pytest.mark.parametrize(
    ("relative", "content", "fragment"),
    [
        ("ag_news/test.csv", '"5","t","d"\n', "class index 1-4"),
        ("ag_news/test.csv", '"1","t"\n', "3 csv fields"),
        ("ag_news/alps_test.tsv", "some text\tPolitics\n", "label name"),
        ("ag_news/alps_test.tsv", "no tab here\n", "labelname"),
    ],
)
def test_ag_news_bad_rows(tmp_path, relative, content, fragment):
    write(tmp_path, relative, content)
    split = "test" if relative.endswith(".csv") else "test_alps"
    with pytest.raises(DatasetFormatError, match=fragment) as caught:
        read_ag_news(tmp_path, split)
    assert caught.value.line == 1


def test_ag_news_rejects_unknown_class(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        read_ag_news(tmp_path, "test", classes=("World", "Politics"))


@needs_real_data
def test_ag_news_real_counts():
    test = read_ag_news(REAL_DATA, "test")
    assert len(test) == 7600 and Counter(test.labels) == {0: 1900, 1: 1900, 2: 1900, 3: 1900}
    assert read_ag_news(REAL_DATA, "test_alps").labels == test.labels  # same articles, same order
    assert len(read_ag_news(REAL_DATA, "test", classes=("World", "Business"))) == 3800
    assert len(read_ag_news(REAL_DATA, "train")) + len(read_ag_news(REAL_DATA, "dev")) == 10001


# --- Linzen agreement ------------------------------------------------------------------------

LINZEN_TEXT = "agreement/linzen_testset/subj_agr_filtered.text"
LINZEN_GOLD = "agreement/linzen_testset/subj_agr_filtered.gold"


def write_linzen(root: Path, sentences: list[str], golds: list[str]) -> None:
    write(root, LINZEN_TEXT, "".join(s + " <eos>\n" for s in sentences))
    write(root, LINZEN_GOLD, "".join(g + "\n" for g in golds))


@pytest.mark.parametrize(
    ("correct", "wrong", "label"),
    [
        ("is", "are", 0),
        ("are", "is", 1),
        ("Were", "was", 1),
        ("has", "have", 0),
        ("includes", "include", 0),
        ("include", "includes", 1),
        ("passes", "pass", 0),
        ("pass", "passes", 1),
        ("carries", "carry", 0),
        ("vary", "varies", 1),
        ("lie", "lie", None),
    ],
)
def test_verb_number_rule(correct, wrong, label):
    assert verb_number(correct, wrong) == label


def test_linzen_reads_prefix_label_and_metadata(tmp_path):
    write_linzen(
        tmp_path,
        ["the keys to the cabinet are here .", "the author of the books writes well ."],
        ["5\tare\tis\t1", "5\twrites\twrite\t1"],
    )
    result = read_linzen_agreement(tmp_path)
    first, second = result.examples
    assert first.prefix == ("the", "keys", "to", "the", "cabinet") and first.label == 1
    assert first.n_attractors == 1 and first.verb_index == 5
    assert (first.correct_verb, first.wrong_verb) == ("are", "is")
    assert first.sentence[-1] == "." and "<eos>" not in first.sentence
    assert second.label == 0 and second.line == 2
    assert result.skipped == []


@pytest.mark.parametrize(
    ("sentence", "gold", "fragment"),
    [
        ("the dog barks .", "9\tbarks\tbark\t0", "verb position inside"),
        ("is it ?", "0\tis\tare\t0", "non-empty prefix"),
        ("the dog barks .", "2\tbarks\tbark", "4 tab-separated"),
        ("the dog barks .", "x\tbarks\tbark\t0", "integer verb position"),
        ("the dog barks .", "1\tbarks\tbark\t0", "correct form"),
    ],
)
def test_linzen_bad_line_raises_or_is_skipped(tmp_path, sentence, gold, fragment):
    write_linzen(tmp_path, ["the dogs bark .", sentence], ["2\tbark\tbarks\t0", gold])
    with pytest.raises(DatasetFormatError, match=fragment) as caught:
        read_linzen_agreement(tmp_path)
    assert caught.value.line == 2
    assert str(caught.value.path).endswith("subj_agr_filtered.gold")
    with pytest.warns(DataQualityWarning, match="skipped 1 of 2 lines"):
        result = read_linzen_agreement(tmp_path, skip_bad=True)
    assert len(result.examples) == 1 and [line for line, _ in result.skipped] == [2]


def test_linzen_undecidable_number_is_skipped_with_warning(tmp_path):
    write_linzen(
        tmp_path,
        ["the dogs bark .", "their origins lie here ."],
        ["2\tbark\tbarks\t0", "2\tlie\tlie\t0"],
    )
    with pytest.warns(DataQualityWarning, match="undecidable"):
        result = read_linzen_agreement(tmp_path)
    assert len(result.examples) == 1 and result.skipped[0][0] == 2


def test_linzen_line_count_mismatch(tmp_path):
    write_linzen(tmp_path, ["the dogs bark .", "the dog barks ."], ["2\tbark\tbarks\t0"])
    with pytest.raises(DatasetFormatError, match=r"as many lines .* \(2\)"):
        read_linzen_agreement(tmp_path)


def test_linzen_missing_gold_lists_it(tmp_path):
    write(tmp_path, LINZEN_TEXT, "the dogs bark . <eos>\n")
    with pytest.raises(DatasetNotFoundError) as caught:
        read_linzen_agreement(tmp_path)
    assert caught.value.missing == [tmp_path / LINZEN_GOLD]
    assert "attnkit data fetch agreement" in str(caught.value)


@needs_real_data
def test_linzen_real_file_and_split():
    with pytest.warns(DataQualityWarning, match="skipped 4 of 7489"):
        result = read_linzen_agreement(REAL_DATA)
    assert len(result.examples) == 7485
    assert Counter(e.n_attractors for e in result.examples)[0] > 1900
    splits = split_agreement(result.examples, seed=0)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [5988, 748, 749]
    lines = [{e.line for e in splits[s]} for s in ("train", "dev", "test")]
    assert not (lines[0] & lines[1] or lines[0] & lines[2] or lines[1] & lines[2])
    assert split_agreement(result.examples, seed=0)["test"] == splits["test"]
    assert split_agreement(result.examples, seed=1)["test"] != splits["test"]
    for example in result.examples[:500]:
        assert example.sentence[example.verb_index] == example.correct_verb
        assert example.prefix == example.sentence[: example.verb_index]


# --- word alignment --------------------------------------------------------------------------


def test_alignment_reads_sure_and_possible_zero_indexed(tmp_path):
    write(tmp_path, "alignment/awesome_align/enfr.src-tgt", "the cat ||| le chat\na b　c ||| x y\n")
    write(tmp_path, "alignment/awesome_align/enfr.gold", "1-1 2-2 1p2\n2-2 2p1 1-p-1\n")
    data = read_alignment(tmp_path, "enfr")
    first, second = data.examples
    assert first.src == ("the", "cat") and first.tgt == ("le", "chat")
    assert first.sure == {(0, 0), (1, 1)}
    assert first.possible == {(0, 0), (1, 1), (0, 1)}
    # U+3000 is a token of its own (split on ASCII spaces only): "b　c" is one token.
    assert second.src == ("a", "b　c") and second.sure == {(1, 1)}
    assert second.possible == {(1, 1), (1, 0), (0, 0)}


@pytest.mark.parametrize(
    ("pairs", "gold", "fragment", "file"),
    [
        ("a b ||| x\n", "3-1\n", "within 2 source x 1 target", "gold"),
        ("a b ||| x\n", "0-1\n", "within", "gold"),
        ("a b ||| x\n", "1:1\n", "links like", "gold"),
        ("a b x\n", "1-1\n", "'source \\|\\|\\| target'", "src-tgt"),
        ("a b ||| x\nc ||| d\n", "1-1\n", "as many lines", "gold"),
    ],
)
def test_alignment_bad_input(tmp_path, pairs, gold, fragment, file):
    write(tmp_path, "alignment/awesome_align/roen.src-tgt", pairs)
    write(tmp_path, "alignment/awesome_align/roen.gold", gold)
    with pytest.raises(DatasetFormatError, match=fragment) as caught:
        read_alignment(tmp_path, "roen")
    assert caught.value.path.name == f"roen.{file}"


@needs_real_data
@pytest.mark.parametrize(
    ("pair", "n_pairs", "n_sure"),
    [("enfr", 447, 4038), ("roen", 248, 6198), ("jaen", 582, 13562), ("zhen", 450, 11238)],
)
def test_alignment_real(pair, n_pairs, n_sure):
    data = read_alignment(REAL_DATA, pair)
    assert len(data) == n_pairs
    assert sum(len(e.sure) for e in data) == n_sure
    for example in data:
        assert example.sure <= example.possible
        assert all(i < len(example.src) and j < len(example.tgt) for i, j in example.possible)
