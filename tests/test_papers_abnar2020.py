"""attnkit.papers.abnar2020_attention_flow against independent oracles.

networkx max-flow on A&Z's layered graph (built here), scipy's Spearman and entropy, numpy
rollout, and brute-force counting; bad input gets a clear error.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy.stats import entropy as scipy_entropy
from scipy.stats import spearmanr

from attnkit.attentions import Attentions
from attnkit.data.types import TextDataset
from attnkit.papers import abnar2020_attention_flow as paper


def random_attentions(layers=3, batch=2, heads=2, tokens=6, lengths=None, seed=0, temperature=1.0):
    """Attentions (L, B, H, T, T) with rows summing to 1 over each example's real tokens."""
    gen = torch.Generator().manual_seed(seed)
    lengths = lengths or [tokens] * batch
    mask = torch.zeros(batch, tokens, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
    scores = torch.randn(layers, batch, heads, tokens, tokens, generator=gen, dtype=torch.float64)
    scores = (scores / temperature).masked_fill(~mask[None, :, None, None, :], float("-inf"))
    weights = scores.softmax(-1) * mask[None, :, None, :, None]
    tokens_text = [[f"w{t}" for t in range(tokens)] for _ in range(batch)]
    return Attentions(weights, mask, tokens=tokens_text)


def capacities(attn: Attentions, b: int) -> np.ndarray:
    """Â_l = rownorm(head_mean(A_l) + I) over example b's real tokens, numpy (L, n, n)."""
    n = int(attn.mask[b].sum())
    a = attn.weights[:, b, :, :n, :n].mean(1).numpy()
    aug = a + np.eye(n)
    return aug / aug.sum(-1, keepdims=True)


def networkx_cls_flow(caps: np.ndarray, layer: int) -> np.ndarray:
    """Max-flow value from node (layer+1, 0) to each input node (0, t), networkx (n,)."""
    n = caps.shape[-1]
    graph = nx.DiGraph()
    for depth in range(1, layer + 2):
        for i in range(n):
            for j in range(n):
                graph.add_edge((depth, i), (depth - 1, j), capacity=float(caps[depth - 1][i, j]))
    return np.array([nx.maximum_flow_value(graph, (layer + 1, 0), (0, t)) for t in range(n)])


def numpy_rollout(caps: np.ndarray) -> np.ndarray:
    out, current = [], np.eye(caps.shape[-1])
    for layer in caps:
        current = layer @ current
        out.append(current)
    return np.stack(out)


# ------------------------------------------------------------------ setup, gate


def test_setup_rejects_unknown_profile_and_bad_seed():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        paper.setup("fast")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        paper.setup("smoke", seed=-1)
    run = paper.setup("smoke", seed=3)
    assert run.sizes is paper.SIZES["smoke"] and run.seed == 3


def test_every_profile_has_the_same_keys_and_six_layers():
    keys = {k: sorted(v) for k, v in paper.SIZES["quick"].items() if isinstance(v, dict)}
    for sizes in paper.SIZES.values():
        assert {k: sorted(v) for k, v in sizes.items() if isinstance(v, dict)} == keys
        assert sizes["gpt2"]["n_layer"] == 6  # the tables have six layers
    for table in (paper.PAPER_TABLE1, paper.PAPER_TABLE2):
        assert all(len(rows) == 6 for rows in table.values())
    assert all(len(rows) == len(paper.TABLE3_LAYERS) for rows in paper.PAPER_TABLE3.values())


def test_agreement_gate_against_counting():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    predicted = np.where(rng.random(200) < 0.85, labels, 1 - labels)
    attractors = rng.integers(0, 4, 200)
    gate = paper.agreement_gate(torch.tensor(predicted), labels.tolist(), attractors)
    assert gate.accuracy == pytest.approx(
        sum(p == y for p, y in zip(predicted, labels, strict=True)) / 200
    )
    none = [p == y for p, y, a in zip(predicted, labels, attractors, strict=True) if a == 0]
    assert gate.accuracy_no_attractors == pytest.approx(sum(none) / len(none))
    for k in range(4):
        rows = [p == y for p, y, a in zip(predicted, labels, attractors, strict=True) if a == k]
        assert gate.by_attractors.loc[k, "accuracy"] == pytest.approx(sum(rows) / len(rows))
        assert gate.by_attractors.loc[k, "examples"] == len(rows)
    assert gate.by_attractors.loc["all", "examples"] == 200
    expected = gate.accuracy >= 0.9 and gate.accuracy_no_attractors >= 0.9
    assert gate.passed == expected
    assert list(gate.requires("m").values()) == [
        gate.accuracy >= 0.9,
        sum(none) / len(none) >= 0.9,
    ]


def test_gate_needs_both_overall_and_attractor_free_accuracy():
    labels = [0] * 10 + [1] * 10
    attractors = [0] * 10 + [2] * 10
    wrong_without = [1] * 2 + [0] * 8 + [1] * 10  # 0.8 without attractors, 0.9 overall
    gate = paper.agreement_gate(wrong_without, labels, attractors)
    assert gate.accuracy == pytest.approx(0.9) and gate.accuracy_no_attractors == pytest.approx(0.8)
    assert not gate.passed
    assert paper.agreement_gate(labels, labels, attractors).passed
    table = paper.gates_table({"a": gate, "b": paper.agreement_gate(labels, labels, attractors)})
    assert table.loc["gate passed"].tolist() == ["", "no", "yes"]


def test_agreement_gate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per item"):
        paper.agreement_gate([0, 1], [0, 1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="at least one item"):
        paper.agreement_gate([], [], [])


# ------------------------------------------------------------------ maps, bound, degeneracy


def test_cls_maps_match_head_mean_numpy_rollout_and_networkx_flow():
    attn = random_attentions(layers=3, batch=2, tokens=5, lengths=[5, 4], seed=1)
    maps = paper.cls_maps(attn)
    for b in range(2):
        n = int(attn.mask[b].sum())
        caps = capacities(attn, b)
        raw = attn.weights[:, b, :, 0, :n].mean(1).numpy()
        np.testing.assert_allclose(maps.raw[:, b, :n].numpy(), raw, atol=1e-12)
        np.testing.assert_allclose(
            maps.rollout[:, b, :n].numpy(), numpy_rollout(caps)[:, 0], atol=1e-12
        )
        for layer in range(3):
            values = networkx_cls_flow(caps, layer)
            np.testing.assert_allclose(maps.flow_value[layer, b, :n].numpy(), values, atol=1e-9)
            np.testing.assert_allclose(
                maps.flow[layer, b, :n].numpy(), values / values.sum(), atol=1e-9
            )
        assert not maps.raw[:, b, n:].any() and not maps.flow[:, b, n:].any()  # zero at padding


def test_max_row_maps_are_the_maximum_over_real_query_rows():
    attn = random_attentions(layers=2, batch=2, tokens=5, lengths=[5, 3], seed=2)
    maps = paper.cls_maps(attn, row="max")
    assert maps.flow_value is None
    for b, n in enumerate([5, 3]):
        caps = capacities(attn, b)
        expected = numpy_rollout(caps)[:, :n, :n].max(axis=1)
        np.testing.assert_allclose(maps.rollout[:, b, :n].numpy(), expected, atol=1e-12)
        raw = attn.weights[:, b, :, :n, :n].mean(1).numpy().max(axis=1)
        np.testing.assert_allclose(maps.raw[:, b, :n].numpy(), raw, atol=1e-12)
    with pytest.raises(ValueError, match="row must be a position"):
        paper.cls_maps(attn, row="min")


def test_layer1_bound_caps_every_flow_and_degeneracy_counts_pairs_at_it():
    attn = random_attentions(
        layers=4, batch=3, tokens=6, lengths=[6, 5, 4], seed=3, temperature=0.3
    )
    maps = paper.cls_maps(attn)
    share = paper.flow_degeneracy(maps)
    at_bound, pairs = np.zeros(4), 0
    for b in range(3):
        n = int(attn.mask[b].sum())
        caps = capacities(attn, b)
        bound = np.minimum(1.0, caps[0].sum(axis=0))  # oracle: layer-1 column sums
        np.testing.assert_allclose(paper.layer1_bound(attn)[b, :n].numpy(), bound, atol=1e-12)
        pairs += n
        for layer in range(4):
            values = networkx_cls_flow(caps, layer)
            assert (values <= bound + 1e-9).all()
            at_bound[layer] += (np.abs(values - bound) <= 1e-6).sum()
    np.testing.assert_allclose(share.values, at_bound / pairs, atol=1e-12)
    assert list(share.index) == ["L1", "L2", "L3", "L4"]


def test_flow_degeneracy_needs_a_single_row_and_a_valid_tolerance():
    attn = random_attentions(layers=2, batch=1, tokens=4)
    with pytest.raises(ValueError, match="one query row"):
        paper.flow_degeneracy(paper.cls_maps(attn, row="max"))
    with pytest.raises(ValueError, match="tol must be"):
        paper.flow_degeneracy(paper.cls_maps(attn), tol=-1.0)


# ------------------------------------------------------------------ tables and rules


def explained_for(attn: Attentions, seed: int = 0) -> paper.Explained:
    gen = torch.Generator().manual_seed(seed)
    B, T = attn.mask.shape
    special = torch.zeros(B, T, dtype=torch.bool)
    special[:, 0] = True
    labels = torch.zeros(B, dtype=torch.long)
    return paper.Explained(
        attentions=attn,
        blank_out=torch.rand(B, T, generator=gen, dtype=torch.float64) * attn.mask,
        gradient=torch.rand(B, T, generator=gen, dtype=torch.float64) * attn.mask,
        labels=labels,
        predicted=labels.clone(),
        special=special,
        gradient_score="test",
    )


def test_tables_match_scipy_spearman_under_both_conventions():
    attn = random_attentions(layers=3, batch=4, tokens=6, lengths=[6, 5, 6, 4], seed=4)
    explained = explained_for(attn)
    maps = paper.cls_maps(attn)
    tables = paper.tables_1_2(explained, maps)
    for importance in paper.IMPORTANCES:
        scores = explained.importance(importance)
        for convention, first in (("authors", 0), ("words", 1)):
            for method in paper.METHODS:
                for layer in range(3):
                    rhos = []
                    for b in range(4):
                        n = int(attn.mask[b].sum())
                        relevance = maps.method(method)[layer, b, first:n].numpy()
                        rhos.append(spearmanr(relevance, scores[b, first:n].numpy()).statistic)
                    rhos = np.array(rhos)
                    rhos = rhos[~np.isnan(rhos)]
                    got = tables.mean(importance, convention, method, layer + 1)
                    assert got == pytest.approx(rhos.mean(), abs=1e-9)
    wide = tables.side_by_side("blank-out", "authors")
    assert list(wide.index) == list(paper.METHODS)
    assert wide.loc["raw", ("L1", "paper")] == "0.69±0.27"


def test_correlation_rows_rejects_mismatched_shapes():
    attn = random_attentions(layers=2, batch=2, tokens=5)
    maps = paper.cls_maps(attn)
    with pytest.raises(ValueError, match="must all be \\(batch, tokens\\)"):
        paper.correlation_rows(maps, torch.zeros(2, 4), attn.mask)


def test_explained_rejects_unknown_convention_and_missing_scores():
    explained = explained_for(random_attentions(layers=1, batch=1, tokens=3))
    with pytest.raises(ValueError, match="unknown convention"):
        explained.score_mask("cls")
    explained.blank_out = None
    with pytest.raises(ValueError, match="no 'blank-out' scores"):
        explained.importance("blank-out")


def hand_tables() -> paper.Tables:
    rows = []
    values = {
        ("blank-out", "raw"): [0.7, 0.1, 0.0, 0.0, 0.1, 0.2],
        ("blank-out", "rollout"): [0.3, 0.4, 0.5, 0.6, 0.65, 0.7],
        ("blank-out", "flow"): [0.3, 0.4, 0.6, 0.62, 0.6, 0.71],
        ("gradient", "raw"): [0.5] * 6,
        ("gradient", "rollout"): [0.2, 0.3, 0.4, 0.5, 0.5, 0.58],
        ("gradient", "flow"): [0.2, 0.3, 0.4, 0.45, 0.45, 0.5],
    }
    for (importance, method), means in values.items():
        for layer, mean in enumerate(means, start=1):
            for convention in paper.CONVENTIONS:
                shift = 0.0 if convention == "authors" else -0.05
                rows.append(
                    dict(
                        importance=importance,
                        convention=convention,
                        method=method,
                        layer=layer,
                        mean=mean + shift,
                        std=0.1,
                        n=10,
                        n_nan=0,
                    )
                )
    return paper.Tables(pd.DataFrame(rows), paper.PAPER_TABLES)


def test_rule_values_from_a_hand_made_table():
    t = hand_tables()
    assert paper.beats_raw(t, "rollout", "blank-out") == pytest.approx(0.5)
    assert paper.beats_raw(t, "flow", "gradient") == pytest.approx(0.0)
    assert paper.beats_raw(t, "rollout", "gradient", layer=1) == pytest.approx(-0.3)
    fall, rise = paper.raw_fall_rollout_rise(t)
    assert (fall, rise) == (pytest.approx(0.6), pytest.approx(0.4))
    assert paper.flow_minus_rollout(t, "blank-out") == pytest.approx((0.02 - 0.05 + 0.01) / 3)
    assert paper.flow_minus_rollout(t, "gradient") == pytest.approx((-0.05 - 0.05 - 0.08) / 3)
    with pytest.raises(KeyError, match="no row"):
        t.mean("blank-out", "authors", "raw", 7)


def test_table_3_reports_the_paper_layers_under_three_conventions():
    attn = random_attentions(layers=6, batch=3, tokens=5, seed=5)
    explained = explained_for(attn)
    table = paper.table_3(explained)
    assert set(table.long.convention) == {"authors", "words", "cls-row"}
    assert sorted(set(table.long.layer)) == list(paper.TABLE3_LAYERS)
    maps = paper.cls_maps(attn, row="max")
    expected = paper.correlation_rows(maps, explained.gradient, attn.mask)
    for layer in paper.TABLE3_LAYERS:
        got = table.mean("gradient", "authors", "flow", layer)
        want = expected[(expected.method == "flow") & (expected.layer == layer)]["mean"].item()
        assert got == pytest.approx(want)


# ------------------------------------------------------------------ uniformity


def test_raw_cls_uniformity_against_scipy_entropy():
    attn = random_attentions(layers=2, batch=3, tokens=5, lengths=[5, 3, 1], seed=6)
    got = paper.raw_cls_uniformity(attn)
    for layer in range(2):
        values = []
        for b, n in enumerate([5, 3]):  # the 1-token sentence is left out
            row = attn.weights[layer, b, :, 0, :n].mean(0).numpy()
            values.append(scipy_entropy(row) / np.log(n))
        assert got.iloc[layer] == pytest.approx(np.mean(values))
    uniform = Attentions(torch.full((1, 1, 1, 4, 4), 0.25, dtype=torch.float64))
    assert paper.raw_cls_uniformity(uniform).iloc[0] == pytest.approx(1.0)


def test_uniformity_contrast_and_its_errors():
    series = pd.Series([0.5, 0.6, 0.7, 0.95, 0.9, 1.0])
    assert paper.uniformity_contrast(series) == (pytest.approx(0.95), pytest.approx(0.6))
    with pytest.raises(ValueError, match="above=6 leaves no layers"):
        paper.uniformity_contrast(series, above=6)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        paper.raw_cls_uniformity(random_attentions(layers=1, batch=1, tokens=3, lengths=[1]))


# ------------------------------------------------------------------ number flips


def test_flip_number_regular_and_irregular_forms():
    known = {"key", "keys", "city", "cities", "box", "boxes", "man", "men", "glass"}
    assert paper.flip_number("key", known) == "keys"
    assert paper.flip_number("keys", known) == "key"
    assert paper.flip_number("city", known) == "cities"
    assert paper.flip_number("cities", known) == "city"
    assert paper.flip_number("boxes", known) == "box"
    assert paper.flip_number("men", known) == "man"
    assert paper.flip_number("glass", known) is None  # no other form known
    assert paper.flip_number("door", known) is None
    with pytest.raises(ValueError, match="non-empty word"):
        paper.flip_number("", known)


def test_number_flip_finds_the_subject_flip(monkeypatch):
    """A rule model (the first noun decides the number) against the search: the flip it
    returns must be the subject, and the sentence the first correct one with an attractor."""
    nouns = {"key": 0, "keys": 1, "cabinet": 0, "cabinets": 1}

    def rule(words):
        return next(nouns[w] for w in words if w in nouns)

    def fake_probabilities(model, data):
        labels = torch.tensor([rule(words) for words in data.texts])
        return torch.nn.functional.one_hot(labels, 2).double()

    def fake_explain(model, data, with_blank_out=True):
        attn = random_attentions(layers=2, batch=len(data), tokens=max(map(len, data.texts)) + 1)
        return explained_for(attn)

    monkeypatch.setattr(paper, "_probabilities", fake_probabilities)
    monkeypatch.setattr(
        paper, "predicted_classes", lambda m, d: fake_probabilities(m, d).argmax(-1)
    )
    monkeypatch.setattr(paper, "explain_minilm", fake_explain)
    texts = [
        ["the", "key"],
        ["the", "keys", "to", "the", "cabinet"],
        ["the", "key", "to", "the", "cabinets"],
    ]
    data = TextDataset(
        texts=texts,
        labels=[0, 1, 0],
        label_names=("singular", "plural"),
        origin="test",
        raw=[" ".join(t) for t in texts],
        extra={"n_attractors": [0, 1, 1]},
    )
    model = paper.FineTuned(model=None, tokenizer=None, training=None, max_len=8)
    flip = paper.number_flip(model, data, set(nouns))
    assert flip.words == texts[1] and flip.position == 1 and flip.flipped_words[1] == "key"
    assert flip.probabilities.argmax(-1).tolist() == [1, 0]
    assert paper.number_flip(model, data.subset([0]), set(nouns)) is None  # no attractor


def test_pick_example():
    explained = explained_for(random_attentions(layers=1, batch=4, tokens=3))
    explained.predicted = torch.tensor([1, 0, 0, 0])
    assert paper.pick_example(explained, [2, 0, 1, 0]) == 2
    assert paper.pick_example(explained, [2, 0, 1, 0], attractor=False) == 1
    assert paper.pick_example(explained, [2, 0, 1, 0], correct=False, attractor=None) == 0
    assert paper.pick_example(explained, [0, 0, 0, 0], correct=False) is None
    with pytest.raises(ValueError, match="one per explained sentence"):
        paper.pick_example(explained, [0, 1])


# ------------------------------------------------------------------ models and explain


def tiny_run(**gpt2):
    sizes = {**paper.SIZES["smoke"], "gpt2": {**paper.SIZES["smoke"]["gpt2"], **gpt2}}
    return paper.Run("smoke", 0, sizes, progress=False)


def synthetic_agreement(n, seed):
    from attnkit.data.synthetic.agreement_grammar import make_agreement_dataset

    return make_agreement_dataset(n, seed=seed)


def test_train_gpt2_and_explain_blank_out_against_brute_force(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    data = paper.AgreementData(
        synthetic_agreement(64, 0), synthetic_agreement(16, 1), synthetic_agreement(4, 2)
    )
    run = tiny_run(n_train=64, n_layer=2, n_head=2, d_model=16, epochs=1)
    trained = paper.train_gpt2(run, data)
    assert trained.model.config.n_layer == 2
    explained = paper.explain_gpt2(trained, data.test)
    assert explained.attentions.weights.shape[:3] == (2, 4, 2)
    ids, mask = trained.vocab.encode(data.test.texts)
    labels = torch.tensor(data.test.labels)
    with torch.no_grad():
        base = trained.model(input_ids=ids, attention_mask=mask).softmax(-1)
        for t in (0, 1):  # the CLS position is blanked out too (the authors' script)
            blanked = ids.clone()
            blanked[:, t] = paper.UNK_ID
            probs = trained.model(input_ids=blanked, attention_mask=mask).softmax(-1)
            expected = (base - probs).abs()[torch.arange(4), labels]
            torch.testing.assert_close(
                explained.blank_out[:, t], expected.float(), atol=1e-5, rtol=1e-4
            )
    assert explained.special[:, 0].all() and not explained.special[:, 1:].any()
    assert paper.predicted_classes(trained, data.test).tolist() == explained.predicted.tolist()


@pytest.mark.slow
def test_explain_minilm_ranks_special_tokens_and_blanks_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    train, dev, test = (
        synthetic_agreement(8, 0),
        synthetic_agreement(4, 1),
        synthetic_agreement(2, 2),
    )
    run = tiny_run()
    tuned = paper.fine_tune_minilm(run, train, dev, epochs=1, lr=1e-5, max_len=32)
    explained = paper.explain_minilm(tuned, test)
    ids = tuned.tokenizer(paper.sentences(test), padding=True, return_tensors="pt")["input_ids"]
    assert (
        explained.special.tolist()
        == ((ids == tuned.tokenizer.cls_token_id) | (ids == tuned.tokenizer.sep_token_id)).tolist()
    )
    assert (explained.blank_out[:, 0] > 0).all()  # [CLS] is blanked out as well
    assert explained.score_mask("authors").sum() == explained.attentions.mask.sum()


# ------------------------------------------------------------------ figures


def test_figures_draw():
    attn = random_attentions(layers=6, batch=2, tokens=5, seed=7)
    explained = explained_for(attn)
    maps = paper.cls_maps(attn)
    tables = paper.tables_1_2(explained, maps)
    flip = paper.NumberFlip(
        ["the", "key"],
        ["the", "keys"],
        1,
        ["singular", "plural"],
        explained,
        maps,
        torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
    )
    figures = [
        paper.figure_tables_by_layer(tables, "authors"),
        paper.figure_degeneracy({"m": paper.flow_degeneracy(maps)}),
        paper.figure_maps(explained, maps, 0, "x"),
        paper.figure_attention_graph(explained, maps, 1),
        paper.figure_number_flip(flip),
        paper.figure_per_head(attn, 0),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures[0].axes) == 2 and len(figures[4].axes) >= 6


def test_notebook_markdown_has_no_tab_characters():
    """ "\\tfrac12" once lost its backslash to a TAB (rendered "⇥frac12")."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "notebooks" / "abnar2020_attention_flow.ipynb"
    for cell in json.loads(path.read_text())["cells"]:
        text = "".join(cell["source"])
        assert "\t" not in text, f"TAB in a {cell['cell_type']} cell: {text[:80]!r}"


def test_flow_same_ranking_against_scipy():
    attn = random_attentions(layers=3, batch=3, tokens=5, lengths=[5, 4, 2], seed=8)
    maps = paper.cls_maps(attn)
    got = paper.flow_same_ranking(maps)
    for layer in range(3):
        same = []
        for b, n in enumerate([5, 4]):  # the 2-token sentence is left out
            rho = spearmanr(maps.flow[layer, b, :n], maps.flow[0, b, :n]).statistic
            same.append(rho >= 1 - 1e-9)
        assert got.iloc[layer] == pytest.approx(np.mean(same))
    assert got.iloc[0] == 1.0  # layer 1 ranks as itself
    copied = paper.Maps(
        maps.raw, maps.rollout, maps.flow[:1].expand(3, -1, -1) * 2, None, maps.bound, maps.mask
    )
    assert (paper.flow_same_ranking(copied) == 1.0).all()
    with pytest.raises(ValueError, match="at least 3 tokens"):
        paper.flow_same_ranking(paper.cls_maps(random_attentions(layers=1, batch=1, tokens=2)))
