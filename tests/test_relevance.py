"""attnkit.relevance against implementations written here, on tiny models built from configs.

The oracles: a BERT forward written out by hand (its attention kept in the graph for the
gradient methods), explicit loops over query and key tokens for the decompositions, and for
value zeroing a loop that runs the model's own layer with one value row zeroed by a hook.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2Model,
    RobertaConfig,
    RobertaForSequenceClassification,
    ViTConfig,
    ViTForImageClassification,
)

from attnkit.models import GPT2Encoder, GPT2EncoderConfig
from attnkit.models.gpt2_encoder import Block as GPT2Block
from attnkit.relevance import (
    RelevanceInputError,
    alti,
    attention_norm,
    contribution_rollout,
    gae,
    globenc,
    grad_rollout,
    value_zeroing,
)
from attnkit.relevance._encoder import encoder_layers, record

pytestmark = pytest.mark.usefixtures("single_thread")

SIZES = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32)


def tiny_bert(num_labels: int = 3, seed: int = 0, **overrides) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=40,
        max_position_embeddings=16,
        num_labels=num_labels,
        initializer_range=0.4,  # large weights: attention far from uniform, gradients not tiny
        attn_implementation="eager",
        **{**SIZES, **overrides},
    )
    return BertForSequenceClassification(config).eval()


def tiny_distilbert() -> DistilBertForSequenceClassification:
    torch.manual_seed(1)
    config = DistilBertConfig(
        vocab_size=40, max_position_embeddings=16, dim=16, n_layers=2, n_heads=4, hidden_dim=32,
        initializer_range=0.4, attn_implementation="eager",
    )  # fmt: skip
    return DistilBertForSequenceClassification(config).eval()


def tiny_roberta() -> RobertaForSequenceClassification:
    torch.manual_seed(2)
    config = RobertaConfig(
        vocab_size=40, max_position_embeddings=20, pad_token_id=1, initializer_range=0.4,
        attn_implementation="eager", **SIZES,
    )  # fmt: skip
    return RobertaForSequenceClassification(config).eval()


def tiny_gpt2_encoder() -> GPT2Encoder:
    torch.manual_seed(3)
    model = GPT2Encoder(
        GPT2EncoderConfig(vocab_size=40, max_len=16, n_layer=2, n_head=4, d_model=16, dropout=0.0)
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.4)
    return model.eval()


def tiny_vit() -> ViTForImageClassification:
    torch.manual_seed(4)
    config = ViTConfig(
        image_size=12, patch_size=4, num_channels=3, num_labels=3, initializer_range=0.4,
        attn_implementation="eager", **SIZES,
    )  # fmt: skip
    return ViTForImageClassification(config).eval()


def images(n: int = 3) -> dict[str, torch.Tensor]:
    """n random 12 × 12 images: 9 patches + CLS = 10 tokens, none of them padding."""
    return {"pixel_values": torch.randn(n, 3, 12, 12, generator=torch.Generator().manual_seed(0))}


def batch(pad_id: int = 0, first: int = 3) -> dict[str, torch.Tensor]:
    """Three sequences of lengths 7, 5 and 3, right-padded."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(first, 40, (3, 7), generator=generator)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, pad_id), "attention_mask": mask}


def one(inputs: dict, b: int) -> dict:
    """Example b alone, without its padding."""
    n = int(inputs["attention_mask"][b].sum())
    return {k: v[b : b + 1, :n] for k, v in inputs.items()}


# --- the hand-written BERT ------------------------------------------------------------------


def manual_bert(model: BertForSequenceClassification, inputs: dict, shift=None):
    """Logits, per-layer inputs x (B, T, D) and attentions A (B, H, T, T) (grad retained).

    `shift=(layer, b, h, i, j, delta)` adds delta to one attention probability (finite differences).
    """
    bert, ids, mask = model.bert, inputs["input_ids"], inputs["attention_mask"]
    emb = bert.embeddings
    T = ids.shape[1]
    x = emb.word_embeddings(ids) + emb.position_embeddings(torch.arange(T))[None]
    x = emb.LayerNorm(x + emb.token_type_embeddings(torch.zeros_like(ids)))
    H = model.config.num_attention_heads
    xs, attentions = [], []
    for layer in bert.encoder.layer:
        xs.append(x)
        sa = layer.attention.self
        B, _, D = x.shape

        q, k, v = (p(x).view(B, T, H, D // H).transpose(1, 2) for p in (sa.query, sa.key, sa.value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, -1e30)
        A = scores.softmax(-1)
        if A.requires_grad:
            A.retain_grad()
        if shift is not None and shift[0] == len(xs) - 1:
            A = A.clone()
            A[shift[1:5]] += shift[5]
        attentions.append(A)
        context = (A @ v).transpose(1, 2).reshape(B, T, D)
        h = layer.attention.output.LayerNorm(x + layer.attention.output.dense(context))
        ffn = layer.output.dense(F.gelu(layer.intermediate.dense(h)))
        x = layer.output.LayerNorm(h + ffn)
    logits = model.classifier(torch.tanh(bert.pooler.dense(x[:, 0])))
    return logits, xs, attentions


def manual_attention_gradients(model, inputs, target=None):
    logits, xs, attentions = manual_bert(model, inputs)
    target = logits.argmax(-1) if target is None else torch.as_tensor(target).expand(len(logits))
    logits.gather(1, target[:, None]).sum().backward()
    return [a.detach() for a in attentions], [a.grad for a in attentions], logits.detach()


def test_hand_written_bert_matches_the_model():
    model, inputs = tiny_bert(), batch()
    logits, _, attentions = manual_bert(model, inputs)
    out = model(**inputs, output_attentions=True)
    torch.testing.assert_close(logits, out.logits, atol=1e-5, rtol=1e-5)
    mask = inputs["attention_mask"].bool()
    for ours, theirs in zip(attentions, out.attentions, strict=True):
        torch.testing.assert_close(ours * mask[:, None, :, None], theirs * mask[:, None, :, None])


def test_attention_gradient_matches_finite_differences():
    """∂logit/∂A (what GAE weights with) against a central difference on single entries."""
    model, inputs = tiny_bert(), batch()
    _, gradients, _ = manual_attention_gradients(model, inputs, target=1)
    eps = 1e-3
    for layer_index, (b, h, i, j) in [(0, (0, 1, 2, 3)), (1, (1, 2, 0, 4))]:
        with torch.no_grad():
            up = manual_bert(model, inputs, shift=(layer_index, b, h, i, j, eps))[0][b, 1]
            down = manual_bert(model, inputs, shift=(layer_index, b, h, i, j, -eps))[0][b, 1]
        numeric = (up - down) / (2 * eps)
        analytic = gradients[layer_index][b, h, i, j]
        assert numeric.item() == pytest.approx(analytic.item(), rel=2e-2, abs=1e-4)
        assert abs(analytic.item()) > 1e-3  # the check has signal


def manual_vit(model: ViTForImageClassification, inputs: dict):
    """Logits, per-layer inputs x and attentions A (grad retained) of a pre-LN ViT, by hand.

    The embedding (patches, CLS, positions) is the model's own; every layer is written out.
    """
    vit = model.vit
    x = vit.embeddings(inputs["pixel_values"])  # (B, T, D)
    B, T, D = x.shape
    H = model.config.num_attention_heads
    xs, attentions = [], []
    for layer in vit.layers:
        xs.append(x)
        a = layer.attention
        y = layer.layernorm_before(x)
        q, k, v = (
            p(y).view(B, T, H, D // H).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj)
        )
        A = (q @ k.transpose(-1, -2) / math.sqrt(D // H)).softmax(-1)  # (B, H, T, T)
        if A.requires_grad:
            A.retain_grad()
        attentions.append(A)
        h = x + a.o_proj((A @ v).transpose(1, 2).reshape(B, T, D))
        x = h + layer.mlp.fc2(F.gelu(layer.mlp.fc1(layer.layernorm_after(h))))
    logits = model.classifier(vit.layernorm(x)[:, 0])
    return logits, xs, attentions


def test_hand_written_vit_matches_the_model_and_gae_follows_the_formula():
    model, inputs = tiny_vit(), images()
    logits, xs, attentions = manual_vit(model, inputs)
    torch.testing.assert_close(logits, model(**inputs).logits, atol=1e-5, rtol=1e-4)
    target = logits.argmax(-1)
    logits.gather(1, target[:, None]).sum().backward()
    grads = [a.grad for a in attentions]
    ours = gae(model, inputs)
    for b in range(3):
        R = torch.eye(10)
        for A, G in zip(attentions, grads, strict=True):
            R = R + (G[b] * A[b].detach()).clamp(min=0).mean(0) @ R
        torch.testing.assert_close(ours[b], R, atol=1e-5, rtol=1e-4)
        expected = vit_explain_rollout(
            [a[b].detach() for a in attentions], [g[b] for g in grads], 0.5
        )
        torch.testing.assert_close(
            grad_rollout(model, inputs, discard_ratio=0.5)[b], expected, atol=1e-5, rtol=1e-4
        )
    assert not torch.allclose(ours[0], torch.eye(10), atol=1e-3)  # the test has signal
    # Kobayashi's norm, pre-LN: ‖Σ_h A^h_ij (LN1(x_j) W_V^h + b_V^h) W_O^h‖ by a loop over heads
    norms = attention_norm(model, inputs)
    with torch.no_grad():
        for index, (layer, x, A) in enumerate(zip(model.vit.layers, xs, attentions, strict=True)):
            a, y = layer.attention, layer.layernorm_before(x[0])  # (T, D)
            Dh = y.shape[-1] // A.shape[1]
            z = 0
            for h in range(A.shape[1]):
                rows = slice(h * Dh, (h + 1) * Dh)
                f = (y @ a.v_proj.weight[rows].T + a.v_proj.bias[rows]) @ a.o_proj.weight[:, rows].T
                z = z + A[0, h][:, :, None] * f[None]  # (T, T, D)
            torch.testing.assert_close(norms[index, 0], z.norm(dim=-1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["gae", "grad_rollout", "attention_norm", "globenc", "alti"])
def test_vit_batched_equals_one_by_one(name):
    model, inputs = tiny_vit(), images()
    method = METHODS[name]
    together = method(model, inputs)
    for b in range(3):
        alone = method(model, {"pixel_values": inputs["pixel_values"][b : b + 1]})
        torch.testing.assert_close(
            together[..., b, :, :], alone[..., 0, :, :], atol=1e-5, rtol=1e-4
        )


# --- gradient-weighted methods ----------------------------------------------------------------


def test_gae_matches_the_formula_written_out():
    model, inputs = tiny_bert(), batch()
    attentions, gradients, _ = manual_attention_gradients(model, inputs)
    ours = gae(model, inputs)
    for b in range(3):
        n = int(inputs["attention_mask"][b].sum())
        R = torch.eye(n)
        for A, G in zip(attentions, gradients, strict=True):
            heads = [(G[b, h, :n, :n] * A[b, h, :n, :n]).clamp(min=0) for h in range(A.shape[1])]
            R = R + (sum(heads) / len(heads)) @ R
        torch.testing.assert_close(ours[b, :n, :n], R, atol=1e-5, rtol=1e-4)
        assert (ours[b, n:] == 0).all() and (ours[b, :, n:] == 0).all()
    assert not torch.allclose(ours[0], torch.eye(7), atol=1e-3)  # the test has signal


def test_gae_one_layer_closed_form():
    """One layer: R = I + E_h[(∇A ⊙ A)⁺]."""
    model, inputs = tiny_bert(num_hidden_layers=1), batch()
    (A,), (G,), _ = manual_attention_gradients(model, inputs, target=2)
    expected = torch.eye(7) + (G * A).clamp(min=0).mean(1)
    mask = inputs["attention_mask"].bool()
    pairs = mask[:, :, None] & mask[:, None, :]
    torch.testing.assert_close(
        gae(model, inputs, target=2)[pairs], expected[pairs], atol=1e-5, rtol=1e-4
    )


def vit_explain_rollout(attentions, gradients, discard_ratio):
    """vit-explain's loop for one example, with the row sums taken per row (keepdim)."""
    n = attentions[0].shape[-1]
    result = torch.eye(n)
    for A, G in zip(attentions, gradients, strict=True):
        fused = (A * G).mean(0)
        fused[fused < 0] = 0
        flat = fused.flatten()
        _, indices = flat.topk(int(flat.numel() * discard_ratio), largest=False)
        keep = torch.zeros(n, n, dtype=torch.bool)
        keep[:, 0] = True  # the CLS column is spared
        for index in indices.tolist():
            if not keep.flatten()[index]:
                flat[index] = 0
        a = (flat.view(n, n) + torch.eye(n)) / 2
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result


@pytest.mark.parametrize("discard_ratio", [0.0, 0.5])
def test_grad_rollout_matches_a_vit_explain_loop(discard_ratio):
    model, inputs = tiny_bert(), batch()
    attentions, gradients, _ = manual_attention_gradients(model, inputs)
    ours = grad_rollout(model, inputs, discard_ratio=discard_ratio)
    for b in range(3):
        n = int(inputs["attention_mask"][b].sum())
        expected = vit_explain_rollout(
            [a[b, :, :n, :n] for a in attentions],
            [g[b, :, :n, :n] for g in gradients],
            discard_ratio,
        )
        torch.testing.assert_close(ours[b, :n, :n], expected, atol=1e-5, rtol=1e-4)


# --- decompositions --------------------------------------------------------------------------


def head_vectors(layer, x):
    """f^h(x_j) written out: (H, T, D) per example, x (T, D)."""
    sa, dense = layer.attention.self, layer.attention.output.dense
    H = sa.num_attention_heads
    Dh = x.shape[-1] // H
    out = []
    for h in range(H):
        rows = slice(h * Dh, (h + 1) * Dh)
        v = x @ sa.value.weight[rows].T + sa.value.bias[rows]  # (T, Dh)
        out.append(v @ dense.weight[:, rows].T)  # (T, D)
    return torch.stack(out)


def ln_part(ln, v, total):
    s = torch.sqrt(((total - total.mean()) ** 2).mean() + ln.eps)
    return ln.weight * (v - v.mean()) / s


@torch.no_grad()
def oracle_decompositions(model, inputs):
    """Kobayashi norms, GlobEnc N and ALTI C per layer, with loops over examples, i and j."""
    _, xs, attentions = manual_bert(model, inputs)
    mask = inputs["attention_mask"]
    L, (B, T, _) = len(xs), xs[0].shape
    norms, glob, glob1, contrib = (torch.zeros(L, B, T, T) for _ in range(4))
    for index, (layer, x, A) in enumerate(
        zip(model.bert.encoder.layer, xs, attentions, strict=True)
    ):
        dense, ln1, ln2 = (
            layer.attention.output.dense,
            layer.attention.output.LayerNorm,
            layer.output.LayerNorm,
        )
        for b in range(B):
            n = int(mask[b].sum())
            f = head_vectors(layer, x[b, :n])  # (H, n, D)
            for i in range(n):
                z = [sum(A[b, h, i, j] * f[h, j] for h in range(f.shape[0])) for j in range(n)]
                pre1 = x[b, i] + sum(z) + dense.bias
                y = ln1(pre1)
                pre2 = y + layer.output.dense(F.gelu(layer.intermediate.dense(y)))
                parts = []
                for j in range(n):
                    norms[index, b, i, j] = z[j].norm()
                    vec = z[j] + (x[b, i] if i == j else 0)
                    t = ln_part(ln1, vec, pre1)
                    parts.append(t)
                    glob[index, b, i, j] = ln_part(ln2, t, pre2).norm()
                    glob1[index, b, i, j] = t.norm()
                size = y.abs().sum()
                c = torch.stack([(size - (y - t).abs().sum()).clamp(min=0) for t in parts])
                contrib[index, b, i, :n] = c / c.sum()
                glob[index, b, i, :n] /= glob[index, b, i, :n].sum()
                glob1[index, b, i, :n] /= glob1[index, b, i, :n].sum()
    return norms, glob, glob1, contrib


def test_decompositions_match_loops_over_tokens():
    model, inputs = tiny_bert(), batch()
    norms, glob, glob1, contrib = oracle_decompositions(model, inputs)
    torch.testing.assert_close(attention_norm(model, inputs), norms, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(globenc(model, inputs, aggregate=False), glob, atol=1e-5, rtol=1e-4)
    first_only = globenc(model, inputs, aggregate=False, second_layer_norm=False)
    torch.testing.assert_close(first_only, glob1, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alti(model, inputs, aggregate=False), contrib, atol=1e-5, rtol=1e-4)
    mask = inputs["attention_mask"].bool()
    # the paper's aggregation: products of the per-layer matrices, no extra identity
    for b in range(3):
        n = int(mask[b].sum())
        torch.testing.assert_close(
            alti(model, inputs)[1, b, :n, :n], contrib[1, b, :n, :n] @ contrib[0, b, :n, :n]
        )
        torch.testing.assert_close(
            globenc(model, inputs)[1, b, :n, :n], glob[1, b, :n, :n] @ glob[0, b, :n, :n]
        )
    assert (contrib >= 0).all()


def test_attention_norm_closed_form_with_identity_projections():
    """One layer, one head, W_V = W_O = I and no biases: ‖α_ij x_j‖ = α_ij ‖x_j‖."""
    model, inputs = tiny_bert(num_hidden_layers=1, num_attention_heads=1), batch()
    layer = model.bert.encoder.layer[0]
    with torch.no_grad():
        for linear in (layer.attention.self.value, layer.attention.output.dense):
            linear.weight.copy_(torch.eye(16))
            linear.bias.zero_()
    recorded = record(model, inputs)
    x, A = recorded.inputs[0], recorded.attentions[0][:, 0]  # (B, T, D), (B, T, T)
    mask = recorded.mask
    expected = A * x.norm(dim=-1)[:, None, :] * (mask[:, :, None] & mask[:, None, :])
    torch.testing.assert_close(attention_norm(model, inputs)[0], expected)


def zero_value_row(layer, j: int):
    """A forward hook on the layer's value projection that zeroes token j's value (all heads)."""
    if isinstance(
        layer.module, GPT2Block
    ):  # q, k, v come from one Linear: the value is the last third
        D = layer.module.attn.c_proj.in_features

        def zero(module, args, output):
            output = output.clone()
            output[:, j, 2 * D :] = 0
            return output

        return layer.module.attn.c_attn.register_forward_hook(zero)

    def zero(module, args, output):
        output = output.clone()
        output[:, j] = 0
        return output

    return layer.value.register_forward_hook(zero)


@torch.no_grad()
def value_zeroing_loop(model, inputs):
    """Per layer and token: the model run with one value row zeroed by a hook, layer output read."""
    _, layers = encoder_layers(model)
    if "pixel_values" in inputs:  # tiny_vit's images: 9 patches + CLS, all real
        mask = torch.ones(len(inputs["pixel_values"]), 10, dtype=torch.bool)
    else:
        mask = inputs["attention_mask"].bool()
    L, (B, T) = len(layers), mask.shape
    out = torch.zeros(L, B, T, T)
    pairs = (mask[:, :, None] & mask[:, None, :]).float()
    for index, layer in enumerate(layers):
        seen = []
        grab = layer.module.register_forward_hook(
            lambda m, a, o, seen=seen: seen.append(o[0] if isinstance(o, tuple) else o)
        )
        model(**inputs)
        for j in range(T):
            handle = zero_value_row(layer, j)
            model(**inputs)
            handle.remove()
            out[index, :, :, j] = 1 - F.cosine_similarity(seen[-1], seen[0], dim=-1)
        grab.remove()
        out[index] *= pairs
        out[index] /= out[index].sum(-1, keepdim=True).clamp_min(1e-30)
    return out


@pytest.mark.parametrize("build", [tiny_bert, tiny_distilbert, tiny_gpt2_encoder, tiny_vit])
def test_value_zeroing_matches_the_model_run_per_token(build):
    model = build()
    inputs = images() if build is tiny_vit else batch(first=3)
    torch.testing.assert_close(
        value_zeroing(model, inputs), value_zeroing_loop(model, inputs), atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(
        value_zeroing(model, inputs, chunk_size=2), value_zeroing(model, inputs)
    )


@pytest.mark.parametrize(
    "build", [tiny_bert, tiny_distilbert, tiny_roberta, tiny_gpt2_encoder, tiny_vit]
)
def test_layer_parts_rebuild_every_layer(build):
    """The parts each method reads recompute the model's own layer outputs, for every family."""
    model = build()
    inputs = images() if build is tiny_vit else batch(pad_id=1 if build is tiny_roberta else 0)
    _, layers = encoder_layers(model)
    recorded = record(model, inputs)
    mask = recorded.mask
    for index in range(len(layers) - 1):
        layer, x, A = layers[index], recorded.inputs[index], recorded.attentions[index]
        rebuilt = layer.ffn_block(layer.attention_block(x, A, layer.values(x)))
        torch.testing.assert_close(
            rebuilt[mask], recorded.inputs[index + 1][mask], atol=1e-5, rtol=1e-4
        )


# --- batching, padding, families, bad input --------------------------------------------------

METHODS = {
    "gae": lambda m, x: gae(m, x, target=1),
    "grad_rollout": lambda m, x: grad_rollout(m, x, target=1, discard_ratio=0.5),
    "attention_norm": attention_norm,
    "globenc": globenc,
    "alti": alti,
    "value_zeroing": value_zeroing,
}


@pytest.mark.parametrize("build", [tiny_bert, tiny_distilbert, tiny_roberta, tiny_gpt2_encoder])
@pytest.mark.parametrize("name", list(METHODS))
def test_batched_padded_equals_one_by_one(build, name):
    model = build()
    inputs = batch(pad_id=1 if build is tiny_roberta else 0)
    if build is tiny_roberta:  # RoBERTa's positions start after its padding id: keep them real
        inputs["input_ids"] = (
            inputs["input_ids"].clamp_min(2).masked_fill(inputs["attention_mask"] == 0, 1)
        )
    method = METHODS[name]
    together = method(model, inputs)
    for b in range(3):
        alone = method(model, one(inputs, b))
        n = alone.shape[-1]
        torch.testing.assert_close(
            together[..., b, :n, :n], alone[..., 0, :, :], atol=1e-5, rtol=1e-4
        )
        assert (together[..., b, n:, :] == 0).all() and (together[..., b, :, n:] == 0).all()


def test_contribution_rollout_is_rollout_of_one_head():
    from attnkit.propagate import rollout

    C = torch.rand(3, 2, 5, 5)
    C = C / C.sum(-1, keepdim=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    torch.testing.assert_close(
        contribution_rollout(C, mask, residual=0.0),
        torch.stack([C[0], C[1] @ C[0], C[2] @ C[1] @ C[0]]),
    )
    torch.testing.assert_close(contribution_rollout(C, mask), rollout(C[:, :, None], mask=mask))


def test_bad_input_gets_clear_errors():
    model, inputs = tiny_bert(), batch()
    with pytest.raises(RelevanceInputError, match=r"expects \(3, 12, 12\)"):
        attention_norm(tiny_vit(), {"pixel_values": torch.randn(1, 3, 8, 8)})
    with pytest.raises(RelevanceInputError, match="attention_mask"):
        gae(model, {"input_ids": inputs["input_ids"]})
    with pytest.raises(RelevanceInputError, match="out of range"):
        gae(model, inputs, target=3)
    torch.manual_seed(0)
    gpt2 = GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=40, n_positions=16))
    with pytest.raises(RelevanceInputError, match="BERT, RoBERTa, DistilBERT"):
        alti(gpt2, inputs)
    with pytest.raises(RelevanceInputError, match="GPT2Encoder"):
        attention_norm(torch.nn.Linear(3, 3), inputs)
    bare = BertModel(model.config).eval()
    assert attention_norm(bare, inputs).shape == (2, 3, 7, 7)  # no head needed without gradients
    with pytest.raises(RelevanceInputError, match="classification head"):
        gae(bare, inputs)
    with pytest.raises(RelevanceInputError, match="chunk_size"):
        value_zeroing(model, inputs, chunk_size=0)
