"""attnkit.papers._sparse_seq2seq: splits, translator tables, the untrained baseline, speed."""

import pytest
import torch

from attnkit.papers._sparse_seq2seq import (
    attention_speed,
    attention_statistics,
    speed_at,
    toy_translation_splits,
    train_translator,
    translation_table,
    untrained_translator,
)

torch.set_num_threads(1)
TINY = dict(d_model=8, d_ff=16, n_head=2, dropout=0.0)


def test_toy_translation_splits_are_disjoint():
    train, dev, test = toy_translation_splits(60, 10, 10, seed=3)
    seen = {(e.src, e.tgt) for e in train}
    assert len(train) == 60 and len(dev) == 10 and len(test) == 10
    assert not any((e.src, e.tgt) in seen for e in [*dev, *test])


def test_toy_translation_splits_of_several_sentences_are_longer():
    single = toy_translation_splits(40, 5, 5, seed=0)[0]
    double = toy_translation_splits(40, 5, 5, seed=0, sentences=2)[0]
    assert max(len(e.src) for e in single) <= 12
    assert min(len(e.src) for e in double) >= 2 * min(len(e.src) for e in single)


def test_translator_tables_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE_DIR", str(tmp_path))
    train, dev, test = toy_translation_splits(40, 4, 4, seed=0)
    translators = [
        train_translator(train, dev, n, epochs=1, batch_size=40, progress=False, **TINY)
        for n in ("softmax", "rela")
    ]
    table, stats = translation_table(translators, test)
    assert set(table.index) == {"softmax", "rela"}
    assert 0 <= table.loc["rela", "sparsity"] <= 1
    assert table.loc["softmax", "null_rate"] == 0
    assert len(stats["rela"]["aer_best_head"]) == 2


def test_untrained_rela_sparsity_is_the_share_of_nonpositive_scores():
    """Oracle: ReLU zeroes exactly the scores ≤ 0, so the cross-attention sparsity of the
    untrained model equals the share of real cross-attention scores ≤ 0, read off the scores
    the normaliser receives; at initialisation that share is near one half."""
    train, _, test = toy_translation_splits(50, 2, 30, seed=1)
    model = untrained_translator(train, "rela", seed=0, **TINY)
    assert model.training is None and not model.model.training
    scores = []
    hooks = [
        layer.cross_attn.normalizer.register_forward_hook(
            lambda module, args, kwargs, out: scores.append((args[0], kwargs.get("mask"))),
            with_kwargs=True,
        )
        for layer in model.model.decoder_layers
    ]
    stats = attention_statistics(model, test)
    for hook in hooks:
        hook.remove()
    cross = stats["attentions"].cross
    real = cross.mask[:, None, :, None] & cross.key_mask[:, None, None, :]  # (B, 1, T, S)
    zero = torch.stack([s <= 0 for s, _ in scores])  # (L, B, H, T, S): ReLU gives 0 here
    real = real[None].expand_as(zero)
    share = float((zero & real).sum().double() / real.sum().double())
    assert stats["sparsity"] == pytest.approx(share, abs=1e-12)
    assert 0.3 < stats["sparsity"] < 0.7
    again = untrained_translator(train, "rela", seed=0, **TINY)
    assert attention_statistics(again, test)["sparsity"] == stats["sparsity"]


def test_attention_speed_table_and_speed_at():
    rows = ["softmax", "rela", "top-k (k=8)", "sparsemax"]
    speed = attention_speed(
        (8, 16), batch=2, heads=2, d_head=4, repeats=1, rows=rows, progress=False
    )
    assert list(speed.index.get_level_values("n").unique()) == [8, 16]
    assert (speed.xs("softmax", level="normalizer")["train_speedup"] == 1.0).all()
    assert (speed[["train_ms", "inference_ms"]] > 0).all().all()
    assert speed_at(speed, 16)[0] == 16 and speed_at(speed, 128)[0] == 16
    assert list(speed_at(speed, 8)[1].index) == rows
    with pytest.raises(ValueError, match="softmax"):
        attention_speed((8,), rows=["rela"], progress=False)


def test_interleaved_rounds_ratio_cancels_load_of_a_round(monkeypatch):
    """A fake clock: job `a` takes 1 unit and `b` 2, and in round 2 other work slows both 3×.
    The per-round times must be exactly those, so the within-round ratio a / b is 0.5 in every
    round although the rounds' times vary (the fastest round per job would have hidden that)."""
    from attnkit.papers import _sparse_seq2seq as module

    clock = {"now": 0.0, "round": 0}  # round 0 is the warm-up
    slowdown = {2: 3.0}

    def a():
        clock["now"] += 1.0 * slowdown.get(clock["round"], 1.0)

    def b():  # runs last in a round
        clock["now"] += 2.0 * slowdown.get(clock["round"], 1.0)
        clock["round"] += 1

    monkeypatch.setattr(module.time, "perf_counter", lambda: clock["now"])
    times = module._interleaved_rounds({"a": a, "b": b}, repeats=3)
    assert times["a"].tolist() == [1.0, 3.0, 1.0]
    assert times["b"].tolist() == [2.0, 6.0, 2.0]
    assert (times["a"] / times["b"]).tolist() == [0.5, 0.5, 0.5]


def test_attention_speed_pools_rounds_of_fresh_blocks(monkeypatch):
    """A fake clock: softmax takes 1 unit; rela 2 units with block 0's inputs and 1 with block
    1's. Each block must build its inputs from seed + block, and the speedup must be the median
    of all six within-round ratios [0.5, 0.5, 0.5, 1, 1, 1] = 0.75."""
    from attnkit.papers import _sparse_seq2seq as module

    clock = {"now": 0.0}
    built = []

    def fake_job(name, n, batch, heads, d_head, train, seed):
        built.append((name, train, seed))
        cost = 2.0 if (name == "rela" and seed == 0) else 1.0

        def run():
            clock["now"] += cost

        return run

    monkeypatch.setattr(module, "_attention_job", fake_job)
    monkeypatch.setattr(module.time, "perf_counter", lambda: clock["now"])
    speed = attention_speed(
        (8,), repeats=3, blocks=2, rows=["softmax", "rela"], seed=0, progress=False
    )
    assert sorted(built) == sorted(
        (name, train, seed)
        for name in ("softmax", "rela")
        for train in (True, False)
        for seed in (0, 1)
    )
    for mode in ("train", "inference"):
        assert speed.loc[(8, "rela"), f"{mode}_speedup"] == 0.75
        assert speed.loc[(8, "rela"), f"{mode}_ms"] == 1.5e3  # median of [2, 2, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="blocks"):
        attention_speed((8,), blocks=0, progress=False)


def test_keep_freed_memory_stops_page_faults_on_reallocation():
    """Oracle: the kernel's count of minor page faults (getrusage). Under glibc's default, each
    allocation of a 64 MB tensor faults in all its pages (a block that large is mmapped and
    unmapped); after `keep_freed_memory` the freed block is reused, so after three warm-up
    allocations the next four fault almost nothing. In a child process, so the setting does
    not stay in the test process."""
    import subprocess
    import sys

    script = """
import resource, sys, torch
from attnkit.papers._sparse_seq2seq import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    print("unsupported"); sys.exit()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # warm-up: the first allocations fault in either case
    torch.ones(16 * 2**20)
before = faults()
for _ in range(4):
    torch.ones(16 * 2**20)
print(faults() - before)
"""
    counts = {}
    for mode in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        if out == "unsupported":
            pytest.skip("keep_freed_memory needs glibc's mallopt")
        counts[mode] = int(out)
    pages = 64 * 2**20 // 4096
    assert counts["default"] >= 4 * pages * 0.9  # every allocation faulted in its pages
    assert counts["keep"] <= 0.1 * pages
