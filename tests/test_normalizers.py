"""Tests for attnkit.normalizers against independent oracles.

Oracles: the `entmax` package (exact and bisection variants), sparsemax's sort-based closed
form and a 1.5-entmax bisection written here, softmax over the unmasked sub-vector, finite
differences (gradcheck), torch's own scaled_dot_product_attention.
"""

from __future__ import annotations

import math

import entmax as entmax_package
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.attentions import AttentionInputError
from attnkit.normalizers import (
    DEFAULT_K,
    NORMALIZERS,
    RMSNormGate,
    entmax15,
    get_normalizer,
    rela,
    rela_output_norm,
    scaled_dot_product_attention,
    softmax,
    sparsemax,
    topk,
)

torch.set_num_threads(1)

NAMES = list(NORMALIZERS)
ROW_STOCHASTIC = ["softmax", "sparsemax", "entmax15", "topk"]
FUNCTIONS = {
    "softmax": softmax,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
    "rela": rela,
    "topk": lambda scores, dim=-1, mask=None: topk(scores, dim=dim, mask=mask, k=3),
}


def _scores(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype) * 2


def _random_mask(*shape: int, seed: int = 1, p: float = 0.6) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator) < p


# --- oracles written here -------------------------------------------------------------------


def sparsemax_closed_form(z: Tensor) -> Tensor:
    """Martins & Astudillo 2016, Alg. 1: sort, k(z) = max{k : 1 + k z_(k) > Σ_{j≤k} z_(j)}."""
    out = torch.empty_like(z)
    for row in range(z.shape[0]):
        values = sorted(z[row].tolist(), reverse=True)
        cumulative, support, support_sum = 0.0, 0, 0.0
        for rank, value in enumerate(values, start=1):
            cumulative += value
            if 1 + rank * value > cumulative:
                support, support_sum = rank, cumulative
        tau = (support_sum - 1) / support
        out[row] = (z[row] - tau).clamp(min=0)
    return out


def entmax15_bisection(z: Tensor, iterations: int = 200) -> Tensor:
    """α = 1.5: p_i = [z_i/2 − τ]₊², τ found by bisection on Σ p_i = 1 in [max z/2 − 1, max z/2]."""
    half = z / 2
    low = half.max(-1, keepdim=True).values - 1  # Σ p ≥ 1 here
    high = half.max(-1, keepdim=True).values  # Σ p = 0 here
    for _ in range(iterations):
        mid = (low + high) / 2
        total = (half - mid).clamp(min=0).pow(2).sum(-1, keepdim=True)
        low = torch.where(total >= 1, mid, low)
        high = torch.where(total >= 1, high, mid)
    return (half - low).clamp(min=0).pow(2)


def run(name: str, scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    return FUNCTIONS[name](scores, dim=dim, mask=mask)


# --- sparsemax / entmax against the package and the brute-force oracles --------------------------


def test_sparsemax_equals_package_and_closed_form():
    z = _scores(16, 7)
    ours = sparsemax(z)
    torch.testing.assert_close(ours, entmax_package.sparsemax(z, dim=-1))
    torch.testing.assert_close(ours, sparsemax_closed_form(z))
    assert (ours == 0).any(), "sparsemax on these scores should give exact zeros"


def test_entmax15_equals_package_and_bisection():
    z = _scores(16, 7, seed=3)
    ours = entmax15(z)
    torch.testing.assert_close(ours, entmax_package.entmax15(z, dim=-1))
    torch.testing.assert_close(ours, entmax15_bisection(z))
    torch.testing.assert_close(
        ours, entmax_package.entmax_bisect(z, alpha=1.5, dim=-1, n_iter=100), atol=1e-6, rtol=0
    )
    assert (ours == 0).any()


def test_softmax_equals_torch_without_mask():
    z = _scores(4, 9)
    torch.testing.assert_close(softmax(z), torch.softmax(z, -1))


# --- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_masked_equals_sub_vector_with_zeros(name):
    z = _scores(12, 8, seed=5)
    mask = _random_mask(12, 8, seed=6)
    mask[:, 0] = True  # at least one key per row here; empty rows are tested below
    out = run(name, z, mask)
    assert (out[~mask] == 0).all()
    for row in range(z.shape[0]):
        sub = run(name, z[row, mask[row]].unsqueeze(0))[0]
        torch.testing.assert_close(out[row, mask[row]], sub)


@pytest.mark.parametrize("name", NAMES)
def test_neg_inf_scores_count_as_masked(name):
    z = _scores(6, 8, seed=7)
    mask = _random_mask(6, 8, seed=8)
    mask[:, 0] = True
    torch.testing.assert_close(
        run(name, z.masked_fill(~mask, float("-inf"))), run(name, z, mask), rtol=0, atol=0
    )


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
@pytest.mark.parametrize("name", NAMES)
def test_fully_masked_rows_are_zero_with_finite_gradients(name):
    z = _scores(3, 2, 6, seed=9)
    z[0, 1] = float("-inf")  # a row that is all −inf scores, no mask needed
    z = z.requires_grad_()
    mask = torch.ones(3, 2, 6, dtype=torch.bool)
    mask[1, 0] = False  # fully masked by the mask
    mask[2, :, 3:] = False
    out = run(name, z, mask)
    assert torch.isfinite(out).all()
    assert (out[0, 1] == 0).all() and (out[1, 0] == 0).all()
    weights = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(0))
    # Anomaly mode fails on NaN inside any backward step, not only in the final gradient.
    with torch.autograd.detect_anomaly(check_nan=True):
        (out.sum() + (out * weights).sum()).backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad[0, 1] == 0).all() and (z.grad[1, 0] == 0).all()
    assert (z.grad[2, :, 3:] == 0).all()  # masked keys get no gradient either


def test_batch_element_with_no_key_at_all():
    z = _scores(2, 4, 4, seed=10)
    mask = torch.tensor([True, False])[:, None, None]  # (B, 1, 1): example 1 is all padding
    for name in NAMES:
        out = run(name, z, mask)
        assert (out[1] == 0).all() and (out[0] != 0).any()


# --- row sums, sparsity patterns --------------------------------------------------------------


@pytest.mark.parametrize("name", ROW_STOCHASTIC)
def test_rows_sum_to_one(name):
    z = _scores(5, 3, 9, seed=11)
    mask = _random_mask(5, 3, 9, seed=12)
    mask[..., 4] = True
    out = run(name, z, mask)
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(5, 3, dtype=z.dtype))


def test_rela_non_negative_zero_where_scores_not_positive_not_normalised():
    z = _scores(8, 10, seed=13)
    z[0, :3] = 0.0
    mask = _random_mask(8, 10, seed=14)
    out = rela(z, mask=mask)
    assert (out >= 0).all()
    assert (out[z <= 0] == 0).all()
    assert (out[~mask] == 0).all()
    keep = mask & (z > 0)
    torch.testing.assert_close(out[keep], z[keep], rtol=0, atol=0)  # ReLU, no normalisation


def test_topk_keeps_exactly_k_without_ties():
    z = _scores(20, 12, seed=15)
    for k in (1, 3, 8):
        out = topk(z, k=k)
        assert ((out > 0).sum(-1) == k).all()
        # the kept keys are the k largest scores
        kept = out > 0
        assert (
            z[kept].view(20, k).min(-1).values > z.masked_fill(kept, -math.inf).max(-1).values
        ).all()


def test_topk_default_k_is_papers_eight():
    z = _scores(3, 20, seed=16)
    assert DEFAULT_K == 8
    assert ((topk(z) > 0).sum(-1) == 8).all()


def test_topk_div_counts_attendable_keys():
    z = _scores(30, 11, seed=17)
    mask = _random_mask(30, 11, seed=18)
    mask[:, 0] = True
    for div in (1, 2, 3, 4, 2.5):
        out = topk(z, mask=mask, div=div)
        expected = torch.ceil(mask.sum(-1) / div).clamp(max=11).long()
        assert torch.equal((out > 0).sum(-1), expected)
    out = topk(z, mask=mask, div=4, min_k=3)
    expected = torch.minimum(torch.ceil(mask.sum(-1) / 4).long().clamp(min=3), mask.sum(-1))
    assert torch.equal((out > 0).sum(-1), expected)


def test_topk_fixed_k_counts_attendable_keys():
    z = _scores(10, 9, seed=19)
    mask = _random_mask(10, 9, seed=20)
    mask[:, 0] = True
    out = topk(z, mask=mask, k=4)
    assert torch.equal((out > 0).sum(-1), mask.sum(-1).clamp(max=4))


@pytest.mark.parametrize("kw", [{"k": 6}, {"k": 100}, {"div": 1}, {"div": 0.5}])
def test_topk_with_k_at_least_n_is_softmax(kw):
    z = _scores(4, 6, seed=21)
    mask = _random_mask(4, 6, seed=22)
    mask[:, 0] = True
    torch.testing.assert_close(topk(z, mask=mask, **kw), softmax(z, mask=mask))


def test_topk_keeps_ties_at_threshold():
    z = torch.tensor([[3.0, 2.0, 2.0, 1.0, 2.0]])
    out = topk(z, k=2)
    assert torch.equal(out > 0, torch.tensor([[True, True, True, False, True]]))
    torch.testing.assert_close(out, softmax(z, mask=out > 0))


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_under_mask(name):
    z = _scores(3, 7, seed=23)
    z = z + torch.sign(z) * 0.05  # keep rela away from its kink at 0
    mask = _random_mask(3, 7, seed=24)
    mask[:, :2] = True
    mask[2] = False  # a fully masked row as well
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda s: run(name, s, mask), (z,))


def test_gradcheck_topk_div_and_entmax_dim0():
    z = _scores(8, 3, seed=25).requires_grad_()
    mask = _random_mask(8, 1, seed=26)
    mask[0] = True
    assert torch.autograd.gradcheck(lambda s: topk(s, dim=0, mask=mask, div=2), (z,))
    assert torch.autograd.gradcheck(lambda s: entmax15(s, dim=0, mask=mask), (z,))


# --- batching and dim -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_looped(name):
    z = _scores(3, 2, 4, 7, seed=27)
    mask = _random_mask(3, 1, 1, 7, seed=28)  # a padding mask, broadcast over heads and queries
    mask[:, ..., 0] = True
    out = run(name, z, mask)
    for b in range(3):
        for h in range(2):
            for t in range(4):
                torch.testing.assert_close(out[b, h, t], run(name, z[b, h, t], mask[b, 0, 0]))


@pytest.mark.parametrize("name", NAMES)
def test_dim_argument_equals_transposed(name):
    z = _scores(2, 7, 5, seed=29)
    mask = _random_mask(2, 7, 1, seed=30)
    mask[:, 0] = True
    torch.testing.assert_close(
        run(name, z, mask, dim=1),
        run(name, z.transpose(1, 2), mask.transpose(1, 2)).transpose(1, 2),
    )


@pytest.mark.parametrize("name", NAMES)
def test_float32_dtype_is_kept(name):
    z = _scores(4, 6, dtype=torch.float32)
    assert run(name, z, torch.ones(6, dtype=torch.bool)).dtype == torch.float32


# --- modules and registry --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_registry_modules_match_functions(name):
    module = get_normalizer(name, **({"k": 3} if name == "topk" else {}))
    assert module.name == name
    assert module.extra_repr() and "dim=-1" in repr(module)
    assert module.normalized == (name != "rela")
    z = _scores(2, 3, 6, seed=31)
    mask = _random_mask(2, 1, 6, seed=32)
    torch.testing.assert_close(module(z, mask=mask), run(name, z, mask))


def test_registry_topk_div_and_case():
    module = get_normalizer(" TopK ", div=4)
    assert repr(module) == "TopK(div=4, min_k=1, dim=-1)"
    assert repr(get_normalizer("topk")) == "TopK(k=8, dim=-1)"


def test_unknown_normalizer_lists_names():
    with pytest.raises(ValueError, match="softmax, sparsemax, entmax15, rela, topk"):
        get_normalizer("alpha-entmax")


def test_unexpected_keyword_is_named():
    with pytest.raises(ValueError, match="does not take k.*takes: dim"):
        get_normalizer("softmax", k=3)


# --- ReLA output norm --------------------------------------------------------------------------


def test_rela_output_norm_formula_and_module():
    x = _scores(2, 5, 8, seed=33)
    scale = _scores(8, seed=34)
    gate = _scores(8, seed=35)
    expected = (
        scale * x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-8) * torch.sigmoid(gate * x)
    )
    torch.testing.assert_close(rela_output_norm(x, scale, gate), expected)
    module = RMSNormGate(8).double()
    assert torch.equal(module.scale, torch.ones(8, dtype=torch.float64))
    bound = math.sqrt(3 / 8)
    assert module.gate.abs().max() <= bound and module.gate.std() > 0
    torch.testing.assert_close(module(x), rela_output_norm(x, module.scale, module.gate))
    plain = RMSNormGate(8, gated=False).double()
    assert plain.gate is None and "gated=False" in repr(plain)
    torch.testing.assert_close(plain(x).pow(2).mean(-1), torch.ones(2, 5, dtype=x.dtype))


def test_rela_output_norm_zero_output_query_is_finite():
    # A query that attends to nothing ("switched off") has W · V = 0.
    x = torch.zeros(2, 3, 4, dtype=torch.float64, requires_grad=True)
    module = RMSNormGate(4).double()
    out = module(x)
    assert (out == 0).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(module.gate.grad).all()


def test_rela_output_norm_shape_mismatch():
    with pytest.raises(AttentionInputError, match="Combine heads"):
        rela_output_norm(torch.randn(2, 3, 4), scale=torch.ones(5))


# --- the attention helper ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_attention_helper_with_each_normalizer(name):
    generator = torch.Generator().manual_seed(36)
    q = torch.randn(2, 3, 4, 8, dtype=torch.float64, generator=generator)
    k = torch.randn(2, 3, 5, 8, dtype=torch.float64, generator=generator)
    v = torch.randn(2, 3, 5, 6, dtype=torch.float64, generator=generator)
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])  # (B, S)
    module = get_normalizer(name)
    out, weights = scaled_dot_product_attention(q, k, v, padding[:, None, None, :], module)
    assert out.shape == (2, 3, 4, 6) and weights.shape == (2, 3, 4, 5)
    expected = module(q @ k.transpose(-2, -1) / math.sqrt(8), mask=padding[:, None, None, :])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, weights @ v)
    assert (weights[1, ..., 3:] == 0).all()
    # by name and as a plain function as well
    by_name, _ = scaled_dot_product_attention(q, k, v, padding[:, None, None, :], name)
    torch.testing.assert_close(by_name, out)


def test_attention_helper_softmax_equals_torch_sdpa():
    generator = torch.Generator().manual_seed(37)
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=generator) for _ in range(3))
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    out, weights = scaled_dot_product_attention(q, k, v, causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=causal))
    assert (weights.triu(1) == 0).all()


def test_attention_helper_fully_masked_query_gives_zero_output():
    q, k, v = (torch.randn(1, 1, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert (out[0, 0, 1] == 0).all() and (weights[0, 0, 1] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_attention_helper_bad_inputs():
    q = torch.randn(2, 1, 3, 4)
    with pytest.raises(AttentionInputError, match=r"mask\[:, None, None, :\]"):
        scaled_dot_product_attention(q, q, q, torch.ones(2, 3, dtype=torch.bool)[:, :, None])
    with pytest.raises(AttentionInputError, match="same feature size"):
        scaled_dot_product_attention(q, torch.randn(2, 1, 3, 5), q)
    with pytest.raises(AttentionInputError, match="same number of keys"):
        scaled_dot_product_attention(q, q, torch.randn(2, 1, 4, 4))
    with pytest.raises(AttentionInputError, match="last"):
        scaled_dot_product_attention(q, q, q, normalizer=get_normalizer("softmax", dim=1))


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{"k": 0}, {"k": -2}, {"k": 2.5}, {"k": True}])
def test_topk_bad_k(kw):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        topk(torch.randn(2, 4), **kw)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        get_normalizer("topk", **kw)


@pytest.mark.parametrize("div", [0, -1, -0.5, float("nan"), float("inf")])
def test_topk_bad_div(div):
    with pytest.raises(ValueError, match="div must be a finite number > 0"):
        topk(torch.randn(2, 4), div=div)


def test_topk_k_and_div_together_and_bad_min_k():
    with pytest.raises(ValueError, match="not both"):
        topk(torch.randn(2, 4), k=2, div=2)
    with pytest.raises(ValueError, match="min_k"):
        topk(torch.randn(2, 4), div=2, min_k=0)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_get_clear_errors(name):
    z = torch.randn(2, 3, 4)
    with pytest.raises(AttentionInputError, match="does not broadcast"):
        run(name, z, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(AttentionInputError, match="does not broadcast"):
        run(name, z[:1], torch.ones(2, 3, 4, dtype=torch.bool))  # would enlarge the scores
    with pytest.raises(AttentionInputError, match="must be boolean"):
        run(name, z, torch.ones(4))
    bad = z.clone()
    bad[1, 2, 3] = float("nan")
    with pytest.raises(AttentionInputError, match=r"NaN or \+inf \(first at index \[1, 2, 3\]"):
        run(name, bad)
    bad[1, 2, 3] = float("inf")
    with pytest.raises(AttentionInputError, match="NaN or"):
        run(name, bad)
    with pytest.raises(AttentionInputError, match="floating-point"):
        run(name, torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(AttentionInputError, match="no keys"):
        run(name, torch.randn(2, 0))


def test_integer_mask_is_accepted():
    z = _scores(3, 5, seed=38)
    mask = _random_mask(3, 5, seed=39)
    torch.testing.assert_close(softmax(z, mask=mask.long()), softmax(z, mask=mask))


# --- CPU vs CUDA ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cpu_equals_cuda(name):
    z = _scores(2, 3, 5, 9, seed=40)
    mask = _random_mask(2, 1, 5, 9, seed=41)
    mask[1, 0, 2] = False  # a fully masked query row
    mask[0, ..., 0] = True
    z_cpu = z.clone().requires_grad_()
    z_gpu = z.cuda().requires_grad_()
    out_cpu = run(name, z_cpu, mask)
    out_gpu = run(name, z_gpu, mask.cuda())
    torch.testing.assert_close(out_gpu.cpu(), out_cpu)
    weights = torch.randn(out_cpu.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(0))
    (out_cpu * weights).sum().backward()
    (out_gpu * weights.cuda()).sum().backward()
    torch.testing.assert_close(z_gpu.grad.cpu(), z_cpu.grad)
    q = z.cuda()[..., :4].contiguous()
    out, attn = scaled_dot_product_attention(q, q, q, mask.cuda()[..., :5], name)
    assert out.is_cuda and attn.is_cuda and torch.isfinite(out).all()


# --- the fast paths: partial sorting for sparsemax/entmax, the fused CPU kernel for top-k ------


@pytest.mark.parametrize("scale", [0.05, 2.0])  # supports far above / below the kernel buffer
def test_long_rows_equal_closed_forms_on_both_paths(scale):
    from attnkit.normalizers.sparsemax import package_sparse_map

    z = _scores(12, 200, seed=31) * scale
    mask = _random_mask(12, 200, seed=32, p=0.8)
    mask[0] = False  # a row with no key
    z[1, :5] = float("-inf")  # −inf scores count as masked
    attend = mask & ~torch.isinf(z)
    fused = {"sparsemax": sparsemax(z, mask=mask), "entmax15": entmax15(z, mask=mask)}
    oracle = {"sparsemax": sparsemax_closed_form, "entmax15": entmax15_bisection}
    for name, project in [
        ("sparsemax", entmax_package.sparsemax),
        ("entmax15", entmax_package.entmax15),
    ]:
        expected = torch.zeros_like(z)
        for row in range(1, 12):
            expected[row, attend[row]] = oracle[name](z[row, attend[row]][None])[0]
        torch.testing.assert_close(fused[name], expected)
        # The package path (GPU, half precision) with every partial-sort size k.
        for k in (1, 5, 64, 500, None):
            torch.testing.assert_close(package_sparse_map(project, z, ~attend, -1, k), expected)
    with pytest.raises(ValueError, match="k .*integer >= 1"):
        sparsemax(z, k=0)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_kernel_equals_package_path_values_and_gradients(name, dtype):
    from attnkit.normalizers.sparsemax import package_sparse_map

    project = {"sparsemax": entmax_package.sparsemax, "entmax15": entmax_package.entmax15}[name]
    z = _scores(3, 5, 40, 70, seed=39, dtype=dtype) * 0.3  # supports of all sizes
    mask = _random_mask(3, 1, 1, 70, seed=40, p=0.7)
    mask[1] = False
    weights = torch.randn(3, 5, 40, 70, generator=torch.Generator().manual_seed(41), dtype=dtype)
    leaf_a, leaf_b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    fused = FUNCTIONS[name](leaf_a, dim=-1, mask=mask)
    package = package_sparse_map(project, leaf_b, ~mask, -1, None)
    tolerance = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(fused, package, **tolerance)
    (fused * weights).sum().backward()
    (package * weights).sum().backward()
    torch.testing.assert_close(leaf_a.grad, leaf_b.grad, **tolerance)
    assert fused.dtype == dtype


def _topk_by_sorting(z: Tensor, attend: Tensor, keep: Tensor) -> Tensor:
    """Softmax over the keep[r] largest attendable scores of each row (and ties), by sorting."""
    out = torch.zeros_like(z)
    for row in range(z.shape[0]):
        values = z[row][attend[row]]
        if values.numel() == 0:
            continue
        threshold = values.sort(descending=True).values[int(keep[row]) - 1]
        kept = attend[row] & (z[row] >= threshold)
        out[row, kept] = torch.softmax(z[row, kept], 0)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kw", [{"k": 1}, {"k": 8}, {"k": 16}, {"k": 17}, {"k": 40}, {"div": 2}, {"div": 7, "min_k": 3}]
)
def test_fused_topk_equals_sorting_on_long_rows(kw, dtype):
    z = _scores(40, 90, seed=33, dtype=dtype)
    z[:5] = z[:5].round()  # ties at the threshold
    z[7] = 1.5  # all equal
    z[8, 3] = 1e4  # one outlier: the other keys share one value bucket
    mask = _random_mask(40, 90, seed=34, p=0.7)
    mask[6] = False
    attend = mask.clone()
    n_keys = attend.sum(-1)
    if "k" in kw:
        keep = n_keys.clamp(max=kw["k"])
    else:
        keep = torch.minimum(
            torch.ceil(n_keys / kw["div"]).long().clamp(min=kw.get("min_k", 1)), n_keys
        )
    expected = _topk_by_sorting(z, attend, keep)
    out = topk(z, mask=mask, **kw)
    assert out.dtype == dtype
    assert torch.equal(out > 0, expected > 0)
    torch.testing.assert_close(out, expected)
    # The same on a batch laid out along another dimension, and through the torch path.
    from attnkit.normalizers.topk import topk_reference

    torch.testing.assert_close(topk(z.T, dim=0, mask=mask.T, **kw), expected.T)
    reference = topk_reference(z, attend, -1, kw.get("k"), kw.get("div"), kw.get("min_k", 1))
    torch.testing.assert_close(out, reference)


def test_fused_topk_parallel_rows_equal_serial_rows():
    from attnkit.normalizers import _topk_kernel

    z = _scores(2048, 40, seed=35, dtype=torch.float32)  # ≥ PARALLEL_MIN_SCORES: parallel
    assert z.numel() >= _topk_kernel.PARALLEL_MIN_SCORES
    attend = _random_mask(2048, 40, seed=36).numpy()
    serial = torch.empty_like(z).numpy()
    _topk_kernel._rows_serial(z.numpy(), attend, serial, 8, 0.0, 1)
    parallel = torch.empty_like(z).numpy()
    _topk_kernel._rows_parallel(z.numpy(), attend, parallel, 8, 0.0, 1)
    assert (serial == parallel).all()


def test_fused_kernels_run_serially_when_torch_has_one_thread():
    from attnkit.normalizers import _sparse_kernel
    from attnkit.normalizers._rows import wants_parallel

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert not wants_parallel(1 << 20, 1 << 16)
        torch.set_num_threads(2)
        assert wants_parallel(1 << 20, 1 << 16) and not wants_parallel(100, 1 << 16)
    finally:
        torch.set_num_threads(old)
    z = _scores(2048, 40, seed=39, dtype=torch.float32)
    attend = _random_mask(2048, 40, seed=40).numpy()
    serial, parallel = torch.empty_like(z).numpy(), torch.empty_like(z).numpy()
    _sparse_kernel._rows_serial(z.numpy(), attend, serial, _sparse_kernel.SPARSEMAX)
    _sparse_kernel._rows_parallel(z.numpy(), attend, parallel, _sparse_kernel.SPARSEMAX)
    assert (serial == parallel).all()


def test_fused_topk_gradcheck_long_rows():
    z = _scores(6, 50, seed=37).requires_grad_(True)
    mask = _random_mask(6, 50, seed=38)
    assert torch.autograd.gradcheck(lambda s: topk(s, mask=mask, k=20), (z,))
    assert torch.autograd.gradcheck(lambda s: topk(s, mask=mask, div=3), (z,))
