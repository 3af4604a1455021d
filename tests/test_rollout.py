"""Rollout against an explicit per-layer numpy product written here (Abnar & Zuidema 2020)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnkit.attentions import AttentionInputError, Attentions
from attnkit.propagate import rollout


def random_attention(layers=3, batch=2, heads=4, tokens=7, temperature=1.0, seed=0):
    """(L, B, H, T, T) float64 softmax attention."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(layers, batch, heads, tokens, tokens, generator=gen, dtype=torch.float64)
    return (scores / temperature).softmax(-1)


def numpy_rollout(attn, residual=0.5, fusion="mean", discard=0.0, start=0, renormalize=True):
    """One example at a time, one layer at a time: R_l = Â_l R_{l-1}."""
    attn = attn.numpy()
    L, B, H, T, _ = attn.shape
    out = np.zeros((L, B, T, T))
    for b in range(B):
        joint = np.eye(T)
        for layer in range(L):
            a = {"mean": np.mean, "max": np.max, "min": np.min}[fusion](attn[layer, b], axis=0)
            if discard > 0:  # vit-explain: lowest entries of the flattened map, CLS column spared
                flat = a.flatten()
                for index in np.argsort(flat, kind="stable")[: int(T * T * discard)]:
                    if index % T != 0:
                        flat[index] = 0.0
                a = flat.reshape(T, T)
            aug = (1 - residual) * a + residual * np.eye(T)
            if renormalize:
                aug = aug / aug.sum(1, keepdims=True)
            if layer == start:
                joint = aug
            elif layer > start:
                joint = aug @ joint
            out[layer, b] = joint
    return out


def test_defaults_match_numpy_product():
    attn = random_attention()
    np.testing.assert_allclose(rollout(attn).numpy(), numpy_rollout(attn), atol=1e-12)


def test_defaults_are_abnar_zuidema_half_identity():
    attn = random_attention(layers=1)
    head_mean = attn[0].mean(1)  # (B, T, T)
    expected = 0.5 * head_mean + 0.5 * torch.eye(7)
    torch.testing.assert_close(rollout(attn)[0], expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("residual", [0.0, 0.3, 1.0])
def test_fusion_and_residual(fusion, residual):
    attn = random_attention(temperature=0.5, seed=1)
    got = rollout(attn, residual=residual, head_fusion=fusion).numpy()
    np.testing.assert_allclose(got, numpy_rollout(attn, residual, fusion), atol=1e-12)


@pytest.mark.parametrize("fusion", ["mean", "max"])
def test_discard_ratio_is_vit_explain(fusion):
    attn = random_attention(layers=4, tokens=9, seed=2)
    got = rollout(attn, head_fusion=fusion, discard_ratio=0.7).numpy()
    np.testing.assert_allclose(got, numpy_rollout(attn, fusion=fusion, discard=0.7), atol=1e-12)


def test_discard_never_drops_cls_column():
    attn = random_attention(layers=1, tokens=6, seed=3)
    attn[..., 0] = 1e-9  # the CLS column holds the smallest entries
    attn = attn / attn.sum(-1, keepdim=True)
    out = rollout(attn, residual=0.0, discard_ratio=0.5)
    assert (out[0, :, :, 0] > 0).all()


def test_start_layer_is_chefer():
    attn = random_attention(layers=5, seed=4)
    got = rollout(attn, start_layer=2)
    np.testing.assert_allclose(got.numpy(), numpy_rollout(attn, start=2), atol=1e-12)
    torch.testing.assert_close(got[:2], torch.eye(7).expand(2, 2, 7, 7).double())
    torch.testing.assert_close(rollout(attn, start_layer=-3), got)


def test_renormalize_false_keeps_raw_rows():
    attn = random_attention(seed=5)
    got = rollout(attn, head_fusion="max", renormalize=False).numpy()
    np.testing.assert_allclose(
        got, numpy_rollout(attn, fusion="max", renormalize=False), atol=1e-12
    )


def test_batched_equals_one_by_one():
    attn = random_attention(batch=4, seed=6)
    batched = rollout(attn, discard_ratio=0.4)
    for b in range(4):
        torch.testing.assert_close(
            batched[:, b : b + 1], rollout(attn[:, b : b + 1], discard_ratio=0.4)
        )


def pad(attn, left, right):
    """Insert padding tokens: pad keys get zero attention (masked softmax); pad rows are noise."""
    L, B, H, T, _ = attn.shape
    size = left + T + right
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(L, B, H, size, size, generator=gen, dtype=attn.dtype)
    real = torch.zeros(size, dtype=torch.bool)
    real[left : left + T] = True
    scores[..., ~real] = -1e9  # what a masked model does to padding keys
    padded = scores.softmax(-1)
    padded[:, :, :, left : left + T, left : left + T] = attn
    return padded, real


@pytest.mark.parametrize("left,right", [(0, 3), (2, 1)])
def test_padding_never_leaks(left, right):
    attn = random_attention(batch=1, seed=8)
    padded, real = pad(attn, left, right)
    out = rollout(padded, discard_ratio=0.3, mask=real[None])
    expected = rollout(attn, discard_ratio=0.3)
    torch.testing.assert_close(out[:, :, real][:, :, :, real], expected, atol=1e-6, rtol=0)
    assert out[:, :, ~real].abs().max() == 0 and out[:, :, :, ~real].abs().max() == 0


def test_mixed_padding_batch_and_attentions_container():
    short, _ = pad(random_attention(batch=1, seed=9), 0, 2)
    long_ = random_attention(batch=1, tokens=9, seed=10)
    mask = torch.tensor([[1] * 7 + [0] * 2, [1] * 9])
    attn = Attentions(torch.cat([short, long_], 1), mask=mask)
    out = rollout(attn)
    torch.testing.assert_close(out[:, 1:], rollout(long_))
    torch.testing.assert_close(out[:, :1, :7, :7], rollout(short[..., :7, :7]), atol=1e-6, rtol=0)


def test_float32_and_input_device_kept():
    out = rollout(random_attention().float())
    assert out.dtype == torch.float32 and out.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_equals_gpu():
    attn = random_attention(batch=3)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [0] + [1] * 6])
    cpu = rollout(attn, discard_ratio=0.5, mask=mask)
    gpu = rollout(attn.cuda(), discard_ratio=0.5, mask=mask.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"head_fusion": "median"}, "head_fusion"),
        ({"residual": 1.5}, "residual"),
        ({"residual": -0.1}, "residual"),
        ({"discard_ratio": 1.0}, "discard_ratio"),
        ({"discard_ratio": -0.2}, "discard_ratio"),
        ({"start_layer": 3}, "start_layer=3 is out of range"),
        ({"mask": torch.ones(2, 6)}, "padding mask must have shape"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(AttentionInputError, match=match):
        rollout(random_attention(), **kwargs)


@pytest.mark.parametrize(
    "weights,match",
    [
        (torch.rand(2, 3, 4, 4), "5 dimensions"),
        (torch.rand(2, 1, 2, 4, 5).softmax(-1), "square"),
        (torch.rand(2, 1, 2, 0, 0), "empty"),
    ],
)
def test_bad_shapes(weights, match):
    with pytest.raises(AttentionInputError, match=match):
        rollout(weights)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf(bad):
    attn = random_attention()
    attn[1, 0, 2, 3, 4] = bad
    with pytest.raises(AttentionInputError, match="NaN or inf"):
        rollout(attn)


def test_scores_instead_of_probabilities():
    scores = torch.randn(2, 1, 2, 5, 5)
    with pytest.raises(AttentionInputError, match="negative"):
        rollout(scores)
    with pytest.raises(AttentionInputError, match="sum to 1"):
        rollout(scores.exp(), renormalize=False)  # rows off 1; the fix is named
    rollout(scores.exp())  # renormalize=True accepts unnormalised non-negative rows


def test_mask_inside_and_outside_attentions():
    attn = Attentions(random_attention())
    with pytest.raises(AttentionInputError, match="not both"):
        rollout(attn, mask=torch.ones(2, 7))
