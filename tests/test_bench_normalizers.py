"""Smoke test of benchmarks/bench_normalizers.py on a tiny size (timings are not checked)."""

from __future__ import annotations

from benchmarks import bench_normalizers as bench


def test_main_prints_table_and_goals(capsys):
    assert bench.main(["--sizes", "8", "--repeats", "1", "--decode-loops", "1"]) == 0
    out = capsys.readouterr().out
    for name in bench.ROWS:
        assert name in out
    assert "goals:" in out
    assert out.count("] ") >= len(bench.SPEED_GOALS) + len(bench.PACKAGE_OF)


def test_inputs_and_goal_logic():
    scores, mask = bench.make_inputs(20, 1)
    assert scores.shape == (bench.BATCH, bench.HEADS, 1, 20)
    assert mask.shape == (bench.BATCH, 1, 1, 20) and mask.sum(-1).unique().tolist() == [18]
    fast = {name: 1.0 for name in bench.ROWS}
    goals = bench.check_goals({8: {"fwd_bwd": fast, "decode": fast}}, tolerance=0.0)
    assert all(met for _, met, _ in goals)
    slow = {**fast, "rela": 2.0, "sparsemax": 1.1}
    goals = dict(
        (g, met) for g, met, _ in bench.check_goals({8: {"fwd_bwd": slow, "decode": fast}}, 0.05)
    )
    assert not goals["rela >= 0.9x softmax's speed"]
    assert not any(met for g, met in goals.items() if g.startswith("attnkit sparsemax"))
    assert all(met for g, met in goals.items() if g.startswith("topk"))
