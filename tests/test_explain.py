"""`attnkit explain` and `attnkit.explain(...)`: the numbers against independent computations,
an offline page, the command line, and bad input."""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

import attnkit
from attnkit.cli import main
from attnkit.explain import ExplainError
from attnkit.models.pretrained import load_minilm, minilm_path, sentence_embeddings

TEXT = "The keys to the cabinet are on the table."


@pytest.fixture(scope="module")
def explained(single_thread):
    return attnkit.explain(TEXT)  # MiniLM, the six default methods


def test_scores_match_independent_computations(explained):
    model, tokenizer = load_minilm()
    one = explained.texts[0]
    batch = tokenizer([TEXT], return_tensors="pt")
    assert one.tokens == tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    attn = attnkit.capture(model, batch)
    torch.testing.assert_close(
        torch.tensor(one.scores["rollout"]), attnkit.rollout(attn)[-1, 0, 0].double().float()
    )
    assert len(one.layers["rollout"]) == 6 and len(one.layers["flow"]) == 6  # (L, T) maps
    # blank-out of the stated target, cos(embedding(text), embedding("")), by hand:
    empty = sentence_embeddings(model, tokenizer, [""])[0]
    ids = batch["input_ids"][0]
    base = float(sentence_embeddings(model, tokenizer, [TEXT])[0] @ empty)
    assert "similarity" in one.target and f"{base:.3f}" in one.target
    for t in (2, 5):  # 'keys', 'cabinet'
        blanked = ids.clone()
        blanked[t] = tokenizer.unk_token_id
        with torch.no_grad():
            states = model(input_ids=blanked[None]).last_hidden_state.mean(1)
        changed = float(torch.nn.functional.normalize(states, dim=-1)[0] @ empty)
        assert one.scores["blank_out"][t] == pytest.approx(base - changed, abs=1e-5)
    assert one.scores["blank_out"][0] == 0 and one.scores["blank_out"][-1] == 0  # [CLS] [SEP]
    assert any(v != 0 for v in one.scores["gradient"])


def test_page_is_offline_and_numbers_beside_it(explained, tmp_path):
    written = explained.save(str(tmp_path / "page.html"))
    assert sorted(os.path.basename(p) for p in written) == ["page.csv", "page.html", "page.json"]
    page = (tmp_path / "page.html").read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched
    assert all(
        src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]+)"', page)
    )
    assert "keys" in page and "similarity" in page and "flow" in page
    assert "<img" in page  # the flow graph (a short text)
    numbers = json.loads((tmp_path / "page.json").read_text())
    assert numbers["texts"][0]["scores"]["rollout"] == explained.texts[0].scores["rollout"]
    csv_lines = (tmp_path / "page.csv").read_text().splitlines()
    assert csv_lines[0].startswith("text,position,token,raw,rollout,flow")
    assert len(csv_lines) == 1 + len(explained.texts[0].tokens)
    explained.save(str(tmp_path / "figure.png"))
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_command_line_writes_the_page(tmp_path, capsys, single_thread):
    out = tmp_path / "page.html"
    code = main(
        ["explain", "--text", TEXT, "--text", "A cat sat.", "--methods", "raw,rollout,blank_out",
         "--compare", "a piece of furniture", "--out", str(out)]
    )  # fmt: skip
    assert code == 0 and out.is_file() and "wrote" in capsys.readouterr().out
    page = out.read_text()
    assert "Text 2: A cat sat." in page and "a piece of furniture" in page


def test_version_and_bench_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert (
        stop.value.code == 0 and capsys.readouterr().out.strip() == f"attnkit {attnkit.__version__}"
    )
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "--rollout-size" in capsys.readouterr().out  # the benchmark's own options


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    """A tiny BERT classifier with named classes, saved with MiniLM's tokenizer."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("classifier")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, num_labels=2,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_classifier_folder_explained_through_a_named_class(classifier_folder):
    explanation = attnkit.explain(TEXT, str(classifier_folder), target="positive")
    assert explanation.texts[0].target.startswith("probability of class 1 (positive)")
    predicted = attnkit.explain(TEXT, str(classifier_folder), methods="gradient")
    assert "(predicted)" in predicted.texts[0].target


def _error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_input_names_the_problem_and_the_fix(classifier_folder, tmp_path, capsys):
    out = str(tmp_path / "page.html")
    err = _error(["explain", "--text", TEXT, "--methods", "rollout,shap", "--out", out], capsys)
    assert "unknown method(s) ['shap']" in err and "integrated_gradients" in err
    err = _error(["explain", "--text", TEXT, "--out", "/proc/attnkit-page.html"], capsys)
    assert "cannot write into '/proc'" in err
    err = _error(["explain", "--text", TEXT, "--out", str(tmp_path / "nowhere" / "p.html")], capsys)
    assert "does not exist" in err
    err = _error(["explain", "--text", TEXT, "--out", str(tmp_path / "page.pdf")], capsys)
    assert ".html, .png, .json" in err
    err = _error(["explain", "--out", out], capsys)
    assert "--text" in err
    bare = tmp_path / "no-tokenizer"
    BertForSequenceClassification.from_pretrained(classifier_folder).save_pretrained(bare)
    err = _error(["explain", "--model", str(bare), "--text", TEXT, "--out", out], capsys)
    assert "no tokenizer files" in err and "save_pretrained" in err
    err = _error(
        [
            "explain",
            "--model",
            str(classifier_folder),
            "--text",
            TEXT,
            "--target",
            "5",
            "--out",
            out,
        ],
        capsys,
    )
    assert "target 5 is out of range" in err and "positive" in err
    with pytest.raises(ExplainError, match="no classification head"):
        attnkit.explain(TEXT, target=1)


def test_long_text_is_truncated_with_a_warning_and_a_note(tmp_path, single_thread):
    long_text = " ".join(["word"] * 600)
    with pytest.warns(UserWarning, match="truncated"):
        explanation = attnkit.explain(long_text, methods="raw")
    assert explanation.texts[0].truncated and len(explanation.texts[0].tokens) == 512
    explanation.save(str(tmp_path / "long.html"))
    assert "truncated" in (tmp_path / "long.html").read_text()


def test_relevance_methods_through_explain(classifier_folder, single_thread):
    from attnkit import relevance
    from attnkit.models.pretrained import load_minilm

    explanation = attnkit.explain(TEXT, methods="alti,value_zeroing")
    model, tokenizer = load_minilm()
    expected = relevance.alti(model, tokenizer([TEXT], return_tensors="pt"))[-1, 0, 0]
    torch.testing.assert_close(torch.tensor(explanation.texts[0].scores["alti"]), expected.float())
    assert len(explanation.texts[0].layers["value_zeroing"]) == 6
    with pytest.raises(ExplainError, match="no classification head"):
        attnkit.explain(TEXT, methods="gae")
    classified = attnkit.explain(TEXT, str(classifier_folder), methods="gae,grad_rollout")
    assert len(classified.texts[0].scores["gae"]) == len(classified.texts[0].tokens)
