"""Per-head rollout and flow (Abnar & Zuidema 2020, appendix A.1) against references written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_flow import capacities, networkx_flow, normalized, pad, random_attention

from attnkit.attentions import AttentionInputError
from attnkit.propagate import flow, flow_per_head, rollout, rollout_per_head


def head_capacities(attn, layer, b=0, residual=0.5):
    """Â^h = rownorm((1 - residual) A_{layer,h} + residual I), numpy (H, T, T)."""
    a = attn[layer, b].numpy()
    aug = (1 - residual) * a + residual * np.eye(a.shape[-1])
    return aug / aug.sum(-1, keepdims=True)


@pytest.mark.parametrize("layer", [0, 2, 3])
def test_rollout_per_head_is_head_on_top_of_mean_rollout(layer):
    attn = random_attention(4, 2, 3, 7, seed=30)
    got = rollout_per_head(attn, layer).numpy()  # (B, H, T, T)
    for b in range(2):
        below = np.eye(7)
        for depth in range(layer):  # head-mean rollout of the layers below, one by one
            below = capacities(attn, b)[depth] @ below
        for h, head in enumerate(head_capacities(attn, layer, b)):
            np.testing.assert_allclose(got[b, h], head @ below, atol=1e-12)


def test_rollout_per_head_with_identical_heads_is_rollout():
    attn = random_attention(3, 2, 1, 6, seed=31).expand(3, 2, 4, 6, 6)
    torch.testing.assert_close(rollout_per_head(attn, -1)[:, 2], rollout(attn)[-1])
    start = rollout_per_head(attn, 2, start_layer=1, discard_ratio=0.3)[:, 0]
    torch.testing.assert_close(start, rollout(attn, start_layer=1, discard_ratio=0.3)[-1])


@pytest.mark.parametrize("layer,temperature", [(0, 1.0), (1, 0.3), (3, 0.3), (3, 2.0)])
def test_flow_per_head_matches_networkx(layer, temperature):
    attn = random_attention(4, 1, 3, 7, temperature, seed=32)
    got = flow_per_head(attn, layer, normalize=False)[0].numpy()  # (H, T, T)
    caps = capacities(attn)
    for h, head in enumerate(head_capacities(attn, layer)):
        np.testing.assert_allclose(got[h], networkx_flow(caps, layer, head), atol=1e-9, rtol=0)
    normed = flow_per_head(attn, layer, rows=[0, 4])[0].numpy()
    np.testing.assert_allclose(normed, normalized(got[:, [0, 4]]), atol=1e-12)


def test_flow_per_head_with_identical_heads_is_flow():
    attn = random_attention(4, 2, 1, 6, 0.4, seed=33).expand(4, 2, 3, 6, 6)
    per_head = flow_per_head(attn, rows=[1, 5])
    for h in range(3):
        torch.testing.assert_close(per_head[:, h], flow(attn, rows=[1, 5]))


def test_padded_equals_unpadded():
    attn = random_attention(3, 1, 2, 6, 0.5, seed=34)
    padded, real = pad(attn, 1, 2)
    out = flow_per_head(padded, mask=real[None])[0]  # (H, T, T)
    torch.testing.assert_close(out[:, real][:, :, real], flow_per_head(attn)[0], atol=1e-6, rtol=0)
    assert out[:, ~real].abs().max() == 0 and out[:, :, ~real].abs().max() == 0
    roll = rollout_per_head(padded, mask=real[None])[0]
    torch.testing.assert_close(
        roll[:, real][:, :, real], rollout_per_head(attn)[0], atol=1e-6, rtol=0
    )
    assert roll[:, ~real].abs().max() == 0 and roll[:, :, ~real].abs().max() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_equals_gpu():
    attn = random_attention(3, 2, 2, 6, seed=35)
    torch.testing.assert_close(flow_per_head(attn.cuda()).cpu(), flow_per_head(attn))
    torch.testing.assert_close(rollout_per_head(attn.cuda()).cpu(), rollout_per_head(attn))


@pytest.mark.parametrize(
    "method,kwargs,match",
    [
        (flow_per_head, {"layer": 5}, "layer=5 is out of range"),
        (flow_per_head, {"rows": [9]}, "row 9 is out of range"),
        (flow_per_head, {"residual": -1}, "residual"),
        (rollout_per_head, {"layer": -5}, "out of range"),
        (rollout_per_head, {"discard_ratio": 1}, "discard_ratio"),
        (rollout_per_head, {"head_fusion": "mode"}, "head_fusion"),
    ],
)
def test_bad_options(method, kwargs, match):
    with pytest.raises(AttentionInputError, match=match):
        method(random_attention(), **kwargs)


def test_rows_must_sum_to_one():
    with pytest.raises(AttentionInputError, match="sum to 1"):
        flow_per_head(random_attention() * 2)
