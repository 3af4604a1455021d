"""Benchmark attnkit.normalizers: every normaliser against masked softmax, measured in one run.

    python benchmarks/bench_normalizers.py
    python -m benchmarks.bench_normalizers --sizes 32 128 --repeats 3 --threads 1

Two workloads per key length n, batch 32 x 8 heads, float32, a padding mask with the last 10% of
the keys masked (mask[:, None, None, :] from (B, n)):
    fwd+bwd       scores (32, 8, n, n) requiring grad; normaliser(scores, mask).sum().backward()
    decode step   scores (32, 8, 1, n), forward only under torch.no_grad() (one new query per
                  sequence, as in incremental decoding); each sample times --decode-loops calls
                  and reports the mean per call, since one call is far shorter than the timer's
                  noise
Normalisers: softmax, sparsemax, entmax15, rela, topk(k=8), topk(div=4) (all attnkit, masked),
and the `entmax` package's sparsemax / entmax15 called directly on the same scores, unmasked
(the package has no mask argument), as the baseline for attnkit's masked maps. On CPU attnkit's
sparsemax, entmax15 and top-k run fused numba kernels (attnkit/normalizers/_sparse_kernel.py,
_topk_kernel.py); the first call compiles them (cached on disk afterwards), which the warm-up
absorbs.

Timing: every row runs once at n = 16 first (warm-up); then, per n, one warm-up call of every
row and --repeats rounds in which every row runs once in turn (interleaved, so load on a shared
machine hits all rows alike); each cell is its best round. n >= --big gets max(1, repeats // 2)
fwd+bwd rounds and no per-n fwd+bwd warm-up call (n = 512 fwd+bwd is 67M scores per call, up to
~14 s for entmax15 on 2 cores).
"speed" is softmax's time / the row's time from the same n and workload (> 1 = faster than
softmax); for the package rows the "vs pkg" column gives package time / attnkit time.

Goals (from the issue): ReLA >= 0.9x softmax's speed, top-k >= 0.8x (both top-k variants),
attnkit sparsemax / entmax15 no slower than the package direct (speed vs package >= 1 -
--tolerance, default 0.05 for timer noise). A goal is met when it holds in every cell (each n,
both workloads); the worst cell is printed.
"""

from __future__ import annotations

import os

# torch's OpenMP threads spin while they wait; on a shared 2-core machine that distorts short
# timings. Must be set before torch loads (as in bench_propagate).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import entmax  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from attnkit.normalizers import entmax15, rela, softmax, sparsemax, topk  # noqa: E402

BATCH, HEADS = 32, 8
PAD_FRACTION = 0.1

# name -> f(scores, mask) ; "pkg" rows ignore the mask.
ROWS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "softmax": lambda s, m: softmax(s, mask=m),
    "sparsemax": lambda s, m: sparsemax(s, mask=m),
    "entmax15": lambda s, m: entmax15(s, mask=m),
    "rela": lambda s, m: rela(s, mask=m),
    "topk(k=8)": lambda s, m: topk(s, mask=m, k=8),
    "topk(div=4)": lambda s, m: topk(s, mask=m, div=4),
    "pkg sparsemax": lambda s, m: entmax.sparsemax(s, dim=-1),
    "pkg entmax15": lambda s, m: entmax.entmax15(s, dim=-1),
}
# attnkit row -> the package row it must not be slower than
PACKAGE_OF = {"sparsemax": "pkg sparsemax", "entmax15": "pkg entmax15"}
SPEED_GOALS = {"rela": 0.9, "topk(k=8)": 0.8, "topk(div=4)": 0.8}


def make_inputs(n: int, queries: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Scores (B, H, queries, n) ~ N(0, 1) and a padding mask (B, 1, 1, n), last 10% keys off."""
    gen = torch.Generator().manual_seed(seed + n + queries)
    scores = torch.randn(BATCH, HEADS, queries, n, generator=gen)
    valid = n - int(PAD_FRACTION * n)
    mask = torch.zeros(BATCH, 1, 1, n, dtype=torch.bool)
    mask[..., :valid] = True
    return scores, mask


def fwd_bwd_call(fn: Callable, scores: Tensor, mask: Tensor) -> Callable[[], None]:
    leaf = scores.clone().requires_grad_(True)

    def run() -> None:
        leaf.grad = None
        fn(leaf, mask).sum().backward()

    return run


def decode_call(fn: Callable, scores: Tensor, mask: Tensor, loops: int) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            for _ in range(loops):
                fn(scores, mask)

    return run


def interleaved_best(
    calls: dict[str, Callable[[], None]], rounds: int, warm: bool = True
) -> dict[str, float]:
    """Warm up every call once (if `warm`), then `rounds` rounds of one call each in turn; best
    per call."""
    if warm:
        for run in calls.values():
            run()
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, run in calls.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_size(
    n: int, rounds: int, decode_loops: int, warm: bool = True
) -> dict[str, dict[str, float]]:
    """Seconds per call: {"fwd_bwd": {row: s}, "decode": {row: s}} for key length n.

    `warm=False` skips the fwd+bwd warm-up call (for big n, after `warm_up` has run every row).
    """
    scores, mask = make_inputs(n, n)
    fb = interleaved_best(
        {name: fwd_bwd_call(fn, scores, mask) for name, fn in ROWS.items()}, rounds, warm
    )
    del scores
    dec_scores, dec_mask = make_inputs(n, 1)
    dec = interleaved_best(
        {name: decode_call(fn, dec_scores, dec_mask, decode_loops) for name, fn in ROWS.items()},
        max(rounds, 3),
    )
    return {"fwd_bwd": fb, "decode": {name: t / decode_loops for name, t in dec.items()}}


def warm_up() -> None:
    """Run every row once on a small input, both workloads, before anything is timed."""
    bench_size(16, 1, 1)


def speed_ratios(times: dict[str, float]) -> dict[str, float]:
    """softmax time / row time for every row (or package time / attnkit time for wrapped maps)."""
    return {name: times["softmax"] / t for name, t in times.items()}


def print_table(results: dict[int, dict[str, dict[str, float]]]) -> None:
    head = (
        f"{'normaliser':<15}{'n':>5}{'fwd+bwd ms':>12}{'speed':>8}{'vs pkg':>8}"
        f"{'decode ms':>12}{'speed':>8}{'vs pkg':>8}"
    )
    print(head)
    print("-" * len(head))
    for n, res in results.items():
        fb, dec = res["fwd_bwd"], res["decode"]
        sfb, sdec = speed_ratios(fb), speed_ratios(dec)
        for name in ROWS:
            pkg = PACKAGE_OF.get(name)
            vs_fb = f"{fb[pkg] / fb[name]:.2f}x" if pkg else ""
            vs_dec = f"{dec[pkg] / dec[name]:.2f}x" if pkg else ""
            print(
                f"{name:<15}{n:>5}{fb[name] * 1e3:>12.3f}{sfb[name]:>7.2f}x{vs_fb:>8}"
                f"{dec[name] * 1e3:>12.4f}{sdec[name]:>7.2f}x{vs_dec:>8}"
            )
        print()


def check_goals(
    results: dict[int, dict[str, dict[str, float]]], tolerance: float
) -> list[tuple[str, bool, str]]:
    """[(goal, met, worst cell text)] over every n and both workloads."""
    goals = []
    for name, need in SPEED_GOALS.items():
        cells = [
            (res[w]["softmax"] / res[w][name], n, w) for n, res in results.items() for w in res
        ]
        worst = min(cells)
        goals.append(
            (
                f"{name} >= {need}x softmax's speed",
                worst[0] >= need,
                f"worst {worst[0]:.2f}x at n={worst[1]} {worst[2]}",
            )
        )
    for name, pkg in PACKAGE_OF.items():
        cells = [(res[w][pkg] / res[w][name], n, w) for n, res in results.items() for w in res]
        worst = min(cells)
        goals.append(
            (
                f"attnkit {name} (masked) no slower than {pkg} (direct, unmasked)",
                worst[0] >= 1.0 - tolerance,
                f"worst {worst[0]:.2f}x at n={worst[1]} {worst[2]} (tolerance {tolerance:g})",
            )
        )
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[32, 128, 512], help="key lengths n"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (best is kept)")
    parser.add_argument(
        "--big", type=int, default=512, help="n from which fwd+bwd gets max(1, repeats // 2) rounds"
    )
    parser.add_argument(
        "--decode-loops", type=int, default=20, help="decode calls per timed sample"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="noise allowance for the 'no slower' goals"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's default)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 1 or any(n < 2 for n in args.sizes):
        parser.error("--repeats must be >= 1 and every size >= 2")

    print(
        f"attnkit normaliser bench: batch {BATCH} x {HEADS} heads, float32, last "
        f"{PAD_FRACTION:.0%} of keys masked, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); speed = softmax time / time (same run)",
        flush=True,
    )
    warm_up()
    results = {}
    for n in args.sizes:
        big = n >= args.big
        rounds = max(1, args.repeats // 2) if big else args.repeats
        start = time.perf_counter()
        results[n] = bench_size(n, rounds, args.decode_loops, warm=not big)
        print(f"  done: n={n} ({rounds} round(s), {time.perf_counter() - start:.1f} s)", flush=True)
    print()
    print_table(results)
    print("goals:")
    for goal, met, detail in check_goals(results, args.tolerance):
        print(f"  [{'met' if met else 'NOT met'}] {goal}: {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
