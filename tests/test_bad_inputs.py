"""Bad input across the package: one table, one test.

Every case asserts that the call fails with the right exception type (never a raw torch or
numpy error from deep inside), that the message names the problem *and* the fix, and that
nothing already there is lost: input tensors (and model parameters) are unchanged, and files
or folders that existed before the call are byte-identical after it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import torch
from conftest import write_notebook
from torch import Tensor, nn

from attnkit import cli, metrics
from attnkit.adversarial import (
    AdversaryConfig,
    adversarial_attention,
    permutation_scores,
)
from attnkit.attentions import AttentionInputError, Attentions
from attnkit.capture import capture
from attnkit.data import DatasetFormatError, DatasetNotFoundError, load, read_imdb, read_sst2
from attnkit.data import fetch as data_fetch
from attnkit.importance import (
    ImportanceInputError,
    blank_out,
    input_gradient,
    integrated_gradients,
    lime_text,
)
from attnkit.metrics import MetricInputError
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig
from attnkit.models.lopardo import LopardoClassifier, LopardoConfig
from attnkit.models.vocab import CLS_ID, PAD_ID
from attnkit.normalizers import get_normalizer, softmax, sparsemax, topk
from attnkit.propagate import flow, rollout
from attnkit.report import ReportError, run_report

pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------- the table's frame


@dataclass
class Env:
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch


@dataclass
class Setup:
    """The failing call, the tensors it must not change, and the paths it must not touch."""

    call: Callable[[], object]
    tensors: Sequence[Tensor] = ()
    paths: Sequence[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Bad:
    build: Callable[[Env], Setup]
    error: type[BaseException]
    problem: str  # regex: what is wrong
    fix: str  # regex: what to do about it


class CliFailed(Exception):
    """`attnkit ...` exited non-zero; the message is its exit code and stderr."""


def run_cli(argv: list[str]) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    if code != 0:
        raise CliFailed(f"exit {code}: {stderr.getvalue()}")


def snapshot(path: Path) -> object:
    """Everything a user could lose at `path`: a file's bytes, a folder's files' bytes."""
    if path.is_file():
        return ("file", path.read_bytes())
    if path.is_dir():
        return (
            "dir",
            sorted(
                (str(p.relative_to(path)), p.read_bytes() if p.is_file() else None)
                for p in path.rglob("*")
            ),
        )
    return ("missing",)


# --------------------------------------------------------------------------- small models


class BagClassifier(nn.Module):
    """Embedding -> masked mean -> Linear, 12 tokens, 3 classes; no config (no PAD id)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(12, 4)
        self.out = nn.Linear(4, 3)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids=None, attention_mask=None) -> Tensor:
        weight = attention_mask.to(torch.float32)[..., None]  # (B, T, 1)
        return self.out((self.embed(input_ids) * weight).sum(1) / weight.sum(1))  # (B, 3)


class TinyAttention(nn.Module):
    """Single-head self-attention following the capture contract (returns the weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        weights = (x @ self.proj(x).transpose(-1, -2)).softmax(-1)  # (B, T, T)
        return weights @ x, weights


@cache
def bag() -> BagClassifier:
    return BagClassifier().eval()


@cache
def additive() -> AdditiveClassifier:
    torch.manual_seed(0)
    return AdditiveClassifier(AdditiveConfig(vocab_size=20, embed_dim=8, hidden_size=8)).eval()


@cache
def lopardo() -> LopardoClassifier:
    torch.manual_seed(0)
    config = LopardoConfig(vocab_size=30, max_len=12, n_head=2, d_in=8, d_attn=4, d_out=4)
    return LopardoClassifier(config).eval()


def token_batch() -> tuple[Tensor, Tensor, Tensor]:
    ids = torch.tensor([[2, 5, 6, 7, 0, 0], [2, 4, 8, 9, 10, 11], [2, 3, 0, 0, 0, 0]])
    return ids, (ids != 0).long(), torch.tensor([0, 1, 1])


def additive_batch() -> tuple[Tensor, Tensor]:
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, PAD_ID, PAD_ID]])
    return ids, (ids != PAD_ID).long()


def attention(layers: int = 3, batch: int = 2, heads: int = 2, tokens: int = 4) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(layers, batch, heads, tokens, tokens, generator=generator)
    return scores.softmax(-1)


def parameters(model: nn.Module) -> list[Tensor]:
    return [p.detach() for p in model.parameters()]


# --------------------------------------------------------------------------- capture


def capture_not_a_module(env: Env) -> Setup:
    x = torch.randn(2, 4, 8)
    return Setup(lambda: capture(lambda x: x, x), [x])


def capture_without_attention_modules(env: Env) -> Setup:
    model, x = nn.Sequential(nn.Linear(8, 8)), torch.randn(2, 4, 8)
    return Setup(lambda: capture(model, x), [x, *parameters(model)])


def capture_unknown_module_name(env: Env) -> Setup:
    model, x = nn.Sequential(TinyAttention(), TinyAttention()), torch.randn(2, 4, 8)
    return Setup(lambda: capture(model, x, modules=["2"]), [x, *parameters(model)])


def capture_padding_mask_of_wrong_shape(env: Env) -> Setup:
    model, x = nn.Sequential(TinyAttention()), torch.randn(2, 4, 8)
    mask = torch.ones(2, 3)
    return Setup(
        lambda: capture(model, x, modules=TinyAttention, padding_mask=mask),
        [x, mask, *parameters(model)],
    )


def attentions_tokens_for_another_batch(env: Env) -> Setup:
    weights = attention()
    return Setup(lambda: Attentions(weights, tokens=[["[CLS]", "a", "b", "c"]]), [weights])


# --------------------------------------------------------------------------- rollout and flow


def rollout_on_logits(env: Env) -> Setup:
    logits = torch.randn(3, 2, 2, 4, 4)
    return Setup(lambda: rollout(logits), [logits])


def rollout_on_one_layer(env: Env) -> Setup:
    layer = attention()[0]  # (B, H, T, T)
    return Setup(lambda: rollout(layer), [layer])


def rollout_on_integer_maps(env: Env) -> Setup:
    hard = torch.eye(4, dtype=torch.long).expand(3, 2, 2, 4, 4)  # 0/1 maps, not probabilities
    return Setup(lambda: rollout(hard), [hard])


def attentions_unknown_kind(env: Env) -> Setup:
    weights = attention()
    return Setup(lambda: Attentions(weights, kind="crosss"), [weights])


def rollout_mask_of_wrong_shape(env: Env) -> Setup:
    weights, mask = attention(), torch.ones(2, 5)
    return Setup(lambda: rollout(weights, mask=mask), [weights, mask])


def rollout_mask_given_twice(env: Env) -> Setup:
    weights, mask = attention(), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    attn = Attentions(weights, mask=mask)
    return Setup(lambda: rollout(attn, mask=mask), [weights, mask, attn.mask])


def rollout_start_layer_out_of_range(env: Env) -> Setup:
    weights = attention()
    return Setup(lambda: rollout(weights, start_layer=7), [weights])


def rollout_empty_example(env: Env) -> Setup:
    weights, mask = attention(), torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    return Setup(lambda: rollout(weights, mask=mask), [weights, mask])


def flow_with_nan(env: Env) -> Setup:
    weights = attention()
    weights[1, 0, 1, 2, 3] = float("nan")
    return Setup(lambda: flow(weights), [weights])


def flow_row_out_of_range(env: Env) -> Setup:
    weights = attention()
    return Setup(lambda: flow(weights, rows=[9]), [weights])


def flow_on_cross_attention(env: Env) -> Setup:
    weights = torch.rand(2, 1, 2, 3, 5).softmax(-1)
    return Setup(lambda: flow(weights), [weights])


def flow_attention_on_unmasked_padding(env: Env) -> Setup:
    weights = attention(batch=1)  # the model ran without its mask: padding keys got attention
    mask = torch.tensor([[1, 1, 1, 0]])
    return Setup(lambda: flow(weights, mask=mask), [weights, mask])


# --------------------------------------------------------------------------- importance


def blank_out_mask_of_wrong_shape(env: Env) -> Setup:
    ids, _, target = token_batch()
    mask = torch.ones(3, 4)
    return Setup(lambda: blank_out(bag(), ids, mask, target, 1), [ids, mask, target])


def blank_out_unk_outside_vocabulary(env: Env) -> Setup:
    ids, mask, target = token_batch()
    return Setup(
        lambda: blank_out(bag(), ids, mask, target, 99), [ids, mask, target, *parameters(bag())]
    )


def blank_out_positions_of_wrong_length(env: Env) -> Setup:
    ids, mask, target = token_batch()
    positions = torch.tensor([False, True, True, True])
    return Setup(
        lambda: blank_out(bag(), ids, mask, target, 1, positions=positions),
        [ids, mask, target, positions],
    )


def gradient_without_embedding_module(env: Env) -> Setup:
    ids, mask, target = token_batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    model = nn.Sequential(nn.Embedding(12, 4))
    return Setup(lambda: input_gradient(model, inputs, target), [ids, mask, target])


def gradient_target_out_of_range(env: Env) -> Setup:
    ids, mask, _ = token_batch()
    target = torch.tensor([0, 3, 1])
    inputs = {"input_ids": ids, "attention_mask": mask}
    return Setup(lambda: input_gradient(bag(), inputs, target), [ids, mask, target])


def integrated_gradients_without_pad_id(env: Env) -> Setup:
    ids, mask, target = token_batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    return Setup(lambda: integrated_gradients(bag(), inputs, target), [ids, mask, target])


def integrated_gradients_zero_steps(env: Env) -> Setup:
    ids, mask, target = token_batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    return Setup(
        lambda: integrated_gradients(bag(), inputs, target, baseline_id=0, n_steps=0),
        [ids, mask, target],
    )


def lime_on_a_batch(env: Env) -> Setup:
    ids = torch.tensor([[CLS_ID, 5, 6, 7], [CLS_ID, 8, 9, 10]])
    return Setup(lambda: lime_text(lopardo(), ids, n_samples=10), [ids])


def lime_left_padded(env: Env) -> Setup:
    ids, mask = torch.tensor([PAD_ID, CLS_ID, 5, 6]), torch.tensor([0, 1, 1, 1])
    return Setup(lambda: lime_text(lopardo(), ids, mask, n_samples=10), [ids, mask])


def lime_replacement_outside_vocabulary(env: Env) -> Setup:
    ids = torch.tensor([CLS_ID, 5, 6, 7])
    return Setup(
        lambda: lime_text(lopardo(), ids, n_samples=10, replacement_id=99),
        [ids, *parameters(lopardo())],
    )


def lime_without_seeds(env: Env) -> Setup:
    ids = torch.tensor([CLS_ID, 5, 6, 7])
    return Setup(lambda: lime_text(lopardo(), ids, n_samples=10, seeds=()), [ids])


# --------------------------------------------------------------------------- normalisers


def normalizer_unknown_name(env: Env) -> Setup:
    return Setup(lambda: get_normalizer("sparsmax"))


def normalizer_unexpected_option(env: Env) -> Setup:
    return Setup(lambda: get_normalizer("softmax", k=3))


def topk_k_zero(env: Env) -> Setup:
    scores = torch.randn(2, 4)
    return Setup(lambda: topk(scores, k=0), [scores])


def normalizer_mask_of_wrong_shape(env: Env) -> Setup:
    scores, mask = torch.randn(2, 2, 4, 4), torch.ones(2, 4, dtype=torch.bool)
    return Setup(lambda: softmax(scores, mask=mask), [scores, mask])


def normalizer_dim_out_of_range(env: Env) -> Setup:
    scores = torch.randn(2, 4)
    return Setup(lambda: softmax(scores, dim=2), [scores])


def normalizer_float_mask(env: Env) -> Setup:
    scores, mask = torch.randn(2, 4), torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 0]])
    return Setup(lambda: sparsemax(scores, mask=mask), [scores, mask])


# --------------------------------------------------------------------------- data


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def data_missing_with_require_data(env: Env) -> Setup:
    root = env.tmp_path / "data"
    write_text(root / "README", "an unrelated file that must survive\n")
    return Setup(lambda: load("sst2", "train", root, require_data=True), paths=[root])


def data_no_directory_with_require_data(env: Env) -> Setup:
    env.monkeypatch.delenv("ATTNKIT_DATA_DIR", raising=False)
    return Setup(lambda: load("sst2", "dev", require_data=True))


def data_truncated_sst(env: Env) -> Setup:
    file = write_text(env.tmp_path / "sst" / "stsa.binary.train", "1 a fine film\n0")
    return Setup(lambda: read_sst2(env.tmp_path, "train"), paths=[file])


def data_wrong_format_sst(env: Env) -> Setup:
    text = "1 a fine film\n0 a dull one\npositive\tthe label is a word\n"
    file = write_text(env.tmp_path / "sst" / "stsa.binary.dev", text)
    return Setup(lambda: load("sst2", "dev", env.tmp_path), paths=[file])


def data_truncated_gzip_imdb(env: Env) -> Setup:
    rows = "".join(
        f"{i},{i % 2},{1 + 9 * (i % 2)},review number {i} was fine\n" for i in range(800)
    )
    packed = gzip.compress(("id,label,rating,text\n" + rows).encode())
    file = env.tmp_path / "imdb" / "test.csv.gz"
    file.parent.mkdir(parents=True)
    file.write_bytes(packed[: len(packed) // 2])
    return Setup(lambda: read_imdb(env.tmp_path, "test"), paths=[file])


def data_unknown_dataset(env: Env) -> Setup:
    return Setup(lambda: load("sst3", "train", env.tmp_path))


def data_negative_limit(env: Env) -> Setup:
    file = write_text(env.tmp_path / "sst" / "stsa.binary.test", "1 a fine film\n")
    return Setup(lambda: load("sst2", "test", env.tmp_path, limit=-1), paths=[file])


def data_unknown_split(env: Env) -> Setup:
    return Setup(lambda: load("sst2", "validation", env.tmp_path))


def fetch_unknown_dataset(env: Env) -> Setup:
    root = env.tmp_path / "data"
    write_text(root / "sst" / "stsa.binary.train", "1 kept as it is\n")
    return Setup(lambda: data_fetch.fetch("sst3", root), paths=[root])


def cli_fetch_without_data_dir(env: Env) -> Setup:
    env.monkeypatch.delenv("ATTNKIT_DATA_DIR", raising=False)
    return Setup(lambda: run_cli(["data", "fetch", "sst"]))


# --------------------------------------------------------------------------- adversarial


def adversary_without_candidates(env: Env) -> Setup:
    return Setup(lambda: AdversaryConfig(k=0))


def adversarial_on_another_model(env: Env) -> Setup:
    ids, mask = additive_batch()
    return Setup(lambda: adversarial_attention(nn.Linear(4, 2), ids, mask), [ids, mask])


def adversarial_instance_ids_for_another_batch(env: Env) -> Setup:
    ids, mask = additive_batch()
    config = AdversaryConfig(k=1, steps=1)
    return Setup(
        lambda: adversarial_attention(additive(), ids, mask, config=config, instance_ids=[0]),
        [ids, mask, *parameters(additive())],
    )


def adversarial_ids_outside_vocabulary(env: Env) -> Setup:
    ids, mask = additive_batch()
    ids[0, 1] = 40  # the vocabulary has 20 entries
    config = AdversaryConfig(k=1, steps=1)
    return Setup(
        lambda: adversarial_attention(additive(), ids, mask, config=config),
        [ids, mask, *parameters(additive())],
    )


def permutation_without_permutations(env: Env) -> Setup:
    ids, mask = additive_batch()
    return Setup(lambda: permutation_scores(additive(), ids, mask, n_permutations=0), [ids, mask])


def imposed_attention_on_padding(env: Env) -> Setup:
    ids, mask = additive_batch()
    imposed = torch.full((2, 4), 0.25)
    return Setup(lambda: additive()(ids, mask, attention=imposed), [ids, mask, imposed])


# --------------------------------------------------------------------------- metrics


def kendall_scores_of_different_lengths(env: Env) -> Setup:
    a, b = torch.rand(2, 3), torch.rand(2, 4)
    return Setup(lambda: metrics.kendall(a, b), [a, b])


def spearman_mask_of_wrong_shape(env: Env) -> Setup:
    a, b, mask = torch.rand(2, 3), torch.rand(2, 3), torch.ones(2, 4)
    return Setup(lambda: metrics.spearman(a, b, mask), [a, b, mask])


def jsd_not_normalised(env: Env) -> Setup:
    p, q = torch.tensor([[0.5, 0.5, 0.5]]), torch.tensor([[0.2, 0.3, 0.5]])
    return Setup(lambda: metrics.jsd(p, q), [p, q])


def tvd_on_logits(env: Env) -> Setup:
    p, q = torch.tensor([[1.2, -0.3, 0.1]]), torch.tensor([[0.2, 0.3, 0.5]])
    return Setup(lambda: metrics.tvd(p, q), [p, q])


def jsd_dim_out_of_range(env: Env) -> Setup:
    p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.8]])
    return Setup(lambda: metrics.jsd(p, q, dim=2), [p, q])


def sparsity_mask_of_wrong_shape(env: Env) -> Setup:
    values, mask = torch.rand(2, 4), torch.ones(3, dtype=torch.bool)
    return Setup(lambda: metrics.sparsity(values, mask), [values, mask])


def kendall_exact_with_ties(env: Env) -> Setup:
    a, b = torch.tensor([[1.0, 1.0, 2.0, 3.0]]), torch.tensor([[0.1, 0.4, 0.2, 0.3]])
    return Setup(lambda: metrics.kendall(a, b, method="exact"), [a, b])


# --------------------------------------------------------------------------- the report runner


def previous_report(env: Env) -> Path:
    """A report folder from an earlier run, which a failed run must leave alone."""
    out = env.tmp_path / "reports" / "smoke"
    write_text(out / "index.html", "<p>previous report</p>")
    write_text(out / "scorecard.json", "[]")
    return out


def report_unknown_profile(env: Env) -> Setup:
    notebooks, out = env.tmp_path / "notebooks", previous_report(env)
    write_notebook(notebooks, "tour")
    return Setup(lambda: run_report("fast", notebooks_dir=notebooks, out=out), paths=[out])


def report_unknown_notebook(env: Env) -> Setup:
    notebooks, out = env.tmp_path / "notebooks", previous_report(env)
    write_notebook(notebooks, "tour")
    return Setup(
        lambda: run_report("smoke", only=["tuor"], notebooks_dir=notebooks, out=out),
        paths=[out, notebooks],
    )


def report_out_is_a_file(env: Env) -> Setup:
    notebooks = env.tmp_path / "notebooks"
    write_notebook(notebooks, "tour")
    out = write_text(env.tmp_path / "report.html", "<p>not a folder</p>")
    return Setup(lambda: run_report("smoke", notebooks_dir=notebooks, out=out), paths=[out])


def report_out_inside_a_file(env: Env) -> Setup:
    notebooks = env.tmp_path / "notebooks"
    write_notebook(notebooks, "tour")
    blocker = write_text(env.tmp_path / "reports", "a file where a folder should be")
    return Setup(
        lambda: run_report("smoke", notebooks_dir=notebooks, out=blocker / "smoke"),
        paths=[blocker],
    )


def report_out_is_a_folder_of_other_work(env: Env) -> Setup:
    """`--out .` or `--out notebooks`: the swap-in would replace (delete) the folder."""
    project = env.tmp_path / "project"
    write_notebook(project / "notebooks", "tour")
    write_text(project / "thesis.tex", "months of work")
    return Setup(
        lambda: run_report(
            "smoke", notebooks_dir=project / "notebooks", out=project, progress=False
        ),
        paths=[project],
    )


def report_notebook_without_parameters_cell(env: Env) -> Setup:
    notebooks, out = env.tmp_path / "notebooks", previous_report(env)
    write_notebook(notebooks, "plain", parameters=False)
    return Setup(lambda: run_report("smoke", notebooks_dir=notebooks, out=out), paths=[out])


def report_required_data_dir_missing(env: Env) -> Setup:
    notebooks, out = env.tmp_path / "notebooks", previous_report(env)
    write_notebook(notebooks, "tour")
    missing = env.tmp_path / "no-such-data"
    return Setup(
        lambda: run_report(
            "smoke", notebooks_dir=notebooks, out=out, data_dir=missing, require_data=True
        ),
        paths=[out],
    )


def cli_report_unknown_profile(env: Env) -> Setup:
    notebooks, out = env.tmp_path / "notebooks", previous_report(env)
    write_notebook(notebooks, "tour")
    argv = ["report", "--profile", "fast", "--notebooks", str(notebooks), "--out", str(out)]
    return Setup(lambda: run_cli(argv), paths=[out])


# --------------------------------------------------------------------------- the table

CASES = [
    # capture
    pytest.param(
        Bad(
            capture_not_a_module,
            AttentionInputError,
            r"capture needs a torch\.nn\.Module, got function",
            r"pass the model first and its inputs as keyword arguments",
        ),
        id="capture-not-a-module",
    ),
    pytest.param(
        Bad(
            capture_without_attention_modules,
            AttentionInputError,
            "no attention modules found in Sequential",
            r"Pass modules=\[names\] or a predicate",
        ),
        id="capture-no-attention-modules",
    ),
    pytest.param(
        Bad(
            capture_unknown_module_name,
            AttentionInputError,
            r"no submodules named \['2'\]",
            r"Names come from model\.named_modules\(\)",
        ),
        id="capture-unknown-module-name",
    ),
    pytest.param(
        Bad(
            capture_padding_mask_of_wrong_shape,
            AttentionInputError,
            r"padding mask must have shape \(batch, tokens\) = \(2, 4\), got \(2, 3\)",
            r"Pass the tokenizer's attention_mask",
        ),
        id="capture-padding-mask-shape",
    ),
    pytest.param(
        Bad(
            attentions_tokens_for_another_batch,
            AttentionInputError,
            "tokens has 1 examples but the weights have batch size 2",
            "pass one token list per example",
        ),
        id="attentions-tokens-count",
    ),
    # rollout and flow
    pytest.param(
        Bad(
            rollout_on_logits,
            AttentionInputError,
            "attention has negative values",
            r"Pass probabilities \(softmax output\), not scores",
        ),
        id="rollout-logits",
    ),
    pytest.param(
        Bad(
            rollout_on_one_layer,
            AttentionInputError,
            r"must have 5 dimensions .* got shape \(2, 2, 4, 4\)",
            r"needs \.unsqueeze\(0\)",
        ),
        id="rollout-4d-tensor",
    ),
    pytest.param(
        Bad(
            rollout_on_integer_maps,
            AttentionInputError,
            "must hold floating-point probabilities, got dtype torch.int64",
            r"convert hard \(0/1\) maps with \.float\(\)",
        ),
        id="rollout-integer-weights",
    ),
    pytest.param(
        Bad(
            attentions_unknown_kind,
            AttentionInputError,
            "unknown attention kind 'crosss'",
            "use one of 'self', 'decoder_self', 'cross'",
        ),
        id="attentions-unknown-kind",
    ),
    pytest.param(
        Bad(
            rollout_mask_of_wrong_shape,
            AttentionInputError,
            r"mask must have shape \(batch, tokens\) = \(2, 4\), got \(2, 5\)",
            "Pass the tokenizer's attention_mask",
        ),
        id="rollout-mask-shape",
    ),
    pytest.param(
        Bad(
            rollout_mask_given_twice,
            AttentionInputError,
            "not both",
            "pass the padding mask either inside the Attentions or as mask=",
        ),
        id="rollout-mask-twice",
    ),
    pytest.param(
        Bad(
            rollout_start_layer_out_of_range,
            AttentionInputError,
            "start_layer=7 is out of range for attention with 3 layers",
            r"use 0\.\.2",
        ),
        id="rollout-start-layer",
    ),
    pytest.param(
        Bad(
            rollout_empty_example,
            AttentionInputError,
            r"examples \[1\] have no real tokens",
            "drop them from the batch",
        ),
        id="rollout-empty-example",
    ),
    pytest.param(
        Bad(
            flow_with_nan,
            AttentionInputError,
            r"contains NaN or inf \(first at index \[1, 0, 1, 2, 3\]",
            "Check the model's forward pass",
        ),
        id="flow-nan",
    ),
    pytest.param(
        Bad(
            flow_row_out_of_range,
            AttentionInputError,
            "row 9 is out of range for sequences of 4 tokens",
            r"use positions 0\.\.3",
        ),
        id="flow-row-out-of-range",
    ),
    pytest.param(
        Bad(
            flow_on_cross_attention,
            AttentionInputError,
            "must be square self-attention .* got 3x5",
            "pass encoder or decoder self-attention",
        ),
        id="flow-cross-attention",
    ),
    pytest.param(
        Bad(
            flow_attention_on_unmasked_padding,
            AttentionInputError,
            "rows must sum to 1 over real tokens",
            "rerun it with the mask",
        ),
        id="flow-attention-on-padding",
    ),
    # post-hoc importance
    pytest.param(
        Bad(
            blank_out_mask_of_wrong_shape,
            ImportanceInputError,
            r"attention_mask must have the shape of input_ids \(3, 6\), got \(3, 4\)",
            "pass the mask produced with these ids",
        ),
        id="blank-out-mask-shape",
    ),
    pytest.param(
        Bad(
            blank_out_unk_outside_vocabulary,
            ImportanceInputError,
            r"unk_id=99 is outside the model's vocabulary of 12 tokens",
            "pass an id from the tokenizer or Vocab",
        ),
        id="blank-out-unk-outside-vocab",
    ),
    pytest.param(
        Bad(
            blank_out_positions_of_wrong_length,
            ImportanceInputError,
            r"positions must be .* \(tokens,\) = \(6,\) boolean mask, got shape \(4,\)",
            "pass one flag per token of input_ids",
        ),
        id="blank-out-positions-length",
    ),
    pytest.param(
        Bad(
            gradient_without_embedding_module,
            ImportanceInputError,
            r"Sequential has no get_input_embeddings\(\)",
            "pass the token embedding module as embedding=",
        ),
        id="gradient-no-embedding-module",
    ),
    pytest.param(
        Bad(
            gradient_target_out_of_range,
            ImportanceInputError,
            r"target 3 \(example 1\) is out of range: the model has 3 classes",
            "pass class ids in that range, or target=None",
        ),
        id="gradient-target-out-of-range",
    ),
    pytest.param(
        Bad(
            integrated_gradients_without_pad_id,
            ImportanceInputError,
            r"cannot find a PAD id on BagClassifier\.config",
            "pass baseline_id=",
        ),
        id="ig-no-pad-id",
    ),
    pytest.param(
        Bad(
            integrated_gradients_zero_steps,
            ImportanceInputError,
            "n_steps must be an int >= 1 .* got 0",
            "captum's default is 50",
        ),
        id="ig-zero-steps",
    ),
    pytest.param(
        Bad(
            lime_on_a_batch,
            ImportanceInputError,
            "LIME explains one document at a time, got a batch of 2",
            "loop over the documents",
        ),
        id="lime-batch",
    ),
    pytest.param(
        Bad(
            lime_left_padded,
            ImportanceInputError,
            r"position 0 \(CLS\) is padding",
            "pad on the right",
        ),
        id="lime-left-padded",
    ),
    pytest.param(
        Bad(
            lime_replacement_outside_vocabulary,
            ImportanceInputError,
            "replacement_id=99 is outside the model's vocabulary of 30 tokens",
            "pass an id from the tokenizer or Vocab",
        ),
        id="lime-replacement-outside-vocab",
    ),
    pytest.param(
        Bad(lime_without_seeds, ImportanceInputError, "seeds is empty", "pass at least one seed"),
        id="lime-no-seeds",
    ),
    # normalisers
    pytest.param(
        Bad(
            normalizer_unknown_name,
            ValueError,
            "unknown normalizer 'sparsmax'",
            "choose one of: softmax, sparsemax, entmax15, rela, topk",
        ),
        id="normalizer-unknown-name",
    ),
    pytest.param(
        Bad(
            normalizer_unexpected_option,
            ValueError,
            "normalizer 'softmax' does not take k",
            "it takes: dim",
        ),
        id="normalizer-unexpected-option",
    ),
    pytest.param(
        Bad(topk_k_zero, ValueError, "topk: k must be .* got 0", "k must be an integer >= 1"),
        id="topk-k-zero",
    ),
    pytest.param(
        Bad(
            normalizer_mask_of_wrong_shape,
            AttentionInputError,
            r"mask of shape \(2, 4\) does not broadcast to the scores' shape \(2, 2, 4, 4\)",
            r"mask\[:, None, None, :\]",
        ),
        id="normalizer-mask-shape",
    ),
    pytest.param(
        Bad(
            normalizer_dim_out_of_range,
            AttentionInputError,
            r"softmax: dim=2 is not a dimension of the scores \(shape \(2, 4\)\)",
            "pass the key dimension, e.g. dim=-1",
        ),
        id="normalizer-dim-out-of-range",
    ),
    pytest.param(
        Bad(
            normalizer_float_mask,
            AttentionInputError,
            "mask must be boolean .* got torch.float32",
            r"pass `mask\.bool\(\)`",
        ),
        id="normalizer-float-mask",
    ),
    # data
    pytest.param(
        Bad(
            data_missing_with_require_data,
            DatasetNotFoundError,
            r"dataset 'sst2': expected file\(s\) not found: .*stsa\.binary\.train",
            "run `attnkit data fetch sst --data-dir",
        ),
        id="data-missing-require-data",
    ),
    pytest.param(
        Bad(
            data_no_directory_with_require_data,
            DatasetNotFoundError,
            r"no data directory given .*\$ATTNKIT_DATA_DIR is unset",
            r"point \$ATTNKIT_DATA_DIR \(or --data-dir / data_dir=\)",
        ),
        id="data-no-data-dir",
    ),
    pytest.param(
        Bad(
            data_truncated_sst,
            DatasetFormatError,
            r"stsa\.binary\.train:2: expected '<label> <text>', found a label with no text",
            r"re-fetch it with `attnkit data fetch .* --force`",
        ),
        id="data-truncated-sst",
    ),
    pytest.param(
        Bad(
            data_wrong_format_sst,
            DatasetFormatError,
            r"stsa\.binary\.dev:3: expected an integer label .* found 'positive\\tthe'",
            r"re-fetch it with `attnkit data fetch",
        ),
        id="data-wrong-format-sst",
    ),
    pytest.param(
        Bad(
            data_truncated_gzip_imdb,
            DatasetFormatError,
            r"test\.csv\.gz:\d+: expected a complete gzip stream",
            r"re-fetch it with `attnkit data fetch",
        ),
        id="data-truncated-gzip-imdb",
    ),
    pytest.param(
        Bad(
            data_unknown_dataset,
            ValueError,
            "unknown dataset 'sst3'; known: sst2, imdb",
            "Pass one of these names",
        ),
        id="data-unknown-dataset",
    ),
    pytest.param(
        Bad(
            data_negative_limit,
            ValueError,
            r"limit must be None \(every example\) or an int >= 0, got -1",
            "pass e.g. limit=200",
        ),
        id="data-negative-limit",
    ),
    pytest.param(
        Bad(
            data_unknown_split,
            ValueError,
            "dataset 'sst2' has no split 'validation'",
            r"choose from \('train', 'dev', 'test'\)",
        ),
        id="data-unknown-split",
    ),
    pytest.param(
        Bad(
            fetch_unknown_dataset,
            ValueError,
            "unknown dataset 'sst3'; known datasets: .*sst",
            "Pass one of these names",
        ),
        id="fetch-unknown-dataset",
    ),
    pytest.param(
        Bad(
            cli_fetch_without_data_dir,
            CliFailed,
            "exit 2: attnkit: error: no data directory to fetch into",
            "pass --data-dir DIR or set ATTNKIT_DATA_DIR",
        ),
        id="cli-fetch-no-data-dir",
    ),
    # adversarial attention and the classifier it analyses
    pytest.param(
        Bad(
            adversary_without_candidates,
            ValueError,
            "needs k >= 1 candidates .* got k=0",
            "use J&W's k=5, steps=500",
        ),
        id="adversary-k-zero",
    ),
    pytest.param(
        Bad(
            adversarial_on_another_model,
            TypeError,
            r"needs a model with separate embed/encode/attend/decode steps.*Linear lacks",
            r"like attnkit\.models\.AdditiveClassifier",
        ),
        id="adversarial-other-model",
    ),
    pytest.param(
        Bad(
            adversarial_instance_ids_for_another_batch,
            ValueError,
            "instance_ids has 1 entries for a batch of 2 examples",
            "pass one id per example",
        ),
        id="adversarial-instance-ids",
    ),
    pytest.param(
        Bad(
            adversarial_ids_outside_vocabulary,
            AttentionInputError,
            r"input_ids hold ids outside the vocabulary 0\.\.19 \(min 0, max 40\)",
            "encode the text with the Vocab the model was built for",
        ),
        id="adversarial-ids-outside-vocab",
    ),
    pytest.param(
        Bad(
            permutation_without_permutations,
            ValueError,
            "n_permutations must be >= 1, got 0",
            "J&W use 100",
        ),
        id="permutation-zero",
    ),
    pytest.param(
        Bad(
            imposed_attention_on_padding,
            AttentionInputError,
            "imposed attention puts weight on padding positions",
            "zero it there",
        ),
        id="additive-imposed-attention-on-padding",
    ),
    # metrics
    pytest.param(
        Bad(
            kendall_scores_of_different_lengths,
            MetricInputError,
            r"got \(2, 3\) and \(2, 4\)",
            "align them to the same tokens first",
        ),
        id="kendall-shapes",
    ),
    pytest.param(
        Bad(
            spearman_mask_of_wrong_shape,
            MetricInputError,
            r"mask must have the scores' shape \(2, 3\), got \(2, 4\)",
            r"pass the \(batch, tokens\) real-token mask",
        ),
        id="spearman-mask-shape",
    ),
    pytest.param(
        Bad(
            jsd_not_normalised,
            MetricInputError,
            "p rows must sum to 1 over the real entries",
            "pass probabilities, or normalize=True",
        ),
        id="jsd-not-normalised",
    ),
    pytest.param(
        Bad(
            tvd_on_logits,
            MetricInputError,
            "p must be finite and non-negative",
            "not scores or logits",
        ),
        id="tvd-logits",
    ),
    pytest.param(
        Bad(
            jsd_dim_out_of_range,
            MetricInputError,
            r"dim=2 is not a dimension of the distributions \(shape \(1, 2\)\)",
            "pass the axis the probabilities sum over",
        ),
        id="jsd-dim-out-of-range",
    ),
    pytest.param(
        Bad(
            sparsity_mask_of_wrong_shape,
            MetricInputError,
            r"mask of shape \(3,\) does not broadcast to the values' shape \(2, 4\)",
            r"align it from the right",
        ),
        id="sparsity-mask-shape",
    ),
    pytest.param(
        Bad(
            kendall_exact_with_ties,
            MetricInputError,
            "example 0 has tied scores",
            "Use method='auto' or 'asymptotic'",
        ),
        id="kendall-exact-ties",
    ),
    # the report runner and the command line
    pytest.param(
        Bad(
            report_unknown_profile,
            ReportError,
            "unknown profile 'fast'",
            "choose one of smoke, quick, full",
        ),
        id="report-unknown-profile",
    ),
    pytest.param(
        Bad(
            report_unknown_notebook,
            ReportError,
            r"unknown notebook name\(s\) in --only: tuor",
            "Available: tour",
        ),
        id="report-unknown-notebook",
    ),
    pytest.param(
        Bad(report_out_is_a_file, ReportError, "is a file, not a folder", "pass a folder path"),
        id="report-out-is-a-file",
    ),
    pytest.param(
        Bad(
            report_out_inside_a_file,
            ReportError,
            "cannot create the report folder",
            "Pass a writable --out",
        ),
        id="report-out-inside-a-file",
    ),
    pytest.param(
        Bad(
            report_out_is_a_folder_of_other_work,
            ReportError,
            r"(is not|isn't|not) an? (attnkit )?report",
            r"[Pp]ass a new or empty folder|[Pp]ass --out",
        ),
        id="report-out-is-a-folder-of-other-work",
    ),
    pytest.param(
        Bad(
            report_notebook_without_parameters_cell,
            ReportError,
            "plain.ipynb has no cell tagged 'parameters'",
            "Add the tag to the cell that sets",
        ),
        id="report-no-parameters-cell",
    ),
    pytest.param(
        Bad(
            report_required_data_dir_missing,
            ReportError,
            r"data directory .*no-such-data does not exist \(--require-data is set\)",
            "Point --data-dir at the datasets",
        ),
        id="report-require-data-missing-dir",
    ),
    pytest.param(
        Bad(
            cli_report_unknown_profile,
            CliFailed,
            "exit 2: attnkit: error: unknown profile 'fast'",
            "choose one of smoke, quick, full",
        ),
        id="cli-report-unknown-profile",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_clearly_and_loses_nothing(case: Bad, tmp_path, monkeypatch):
    setup = case.build(Env(tmp_path, monkeypatch))
    tensors_before = [tensor.detach().clone() for tensor in setup.tensors]
    paths_before = [snapshot(path) for path in setup.paths]

    with pytest.raises(case.error) as raised:
        setup.call()

    message = str(raised.value)
    assert re.search(case.problem, message, re.DOTALL), f"problem not named in: {message}"
    assert re.search(case.fix, message, re.DOTALL), f"no fix named in: {message}"
    for before, tensor in zip(tensors_before, setup.tensors, strict=True):
        torch.testing.assert_close(tensor, before, rtol=0, atol=0, equal_nan=True)
    for before, path in zip(paths_before, setup.paths, strict=True):
        assert snapshot(path) == before, f"{path} changed"
    leftovers = [*tmp_path.rglob("*.part"), *tmp_path.rglob("*.building-*")]
    assert not leftovers, f"partial output left behind: {leftovers}"
