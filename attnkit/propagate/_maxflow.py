"""Compiled max-flow kernels for attention flow on Abnar & Zuidema's layered attention graph.

Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers", define attention flow from a
node u to an input token t as the max-flow value u -> t in the graph whose edges run from position i
at layer l to position j at layer l-1 with capacity Â_l[i, j]. Their code runs networkx's
Edmonds-Karp once per (u, t) pair. Here every pair is solved exactly (float64) but faster:

1. The graph is kept as dense per-layer (n, n) capacity matrices, never as an edge list; the other
   input tokens are dead ends and drop out, so sink t only changes the last column used, Â_1[:, t].
2. Bounds settle pairs without a solve (`pair_bounds`). Upper: cuts (the source's out-capacity, the
   sink's in-capacity, a depth-1 sink cut). Lower: a feasible flow assembled from work shared by all
   pairs: a proportional push down from each source (rollout-like matrix products), a proportional
   pull up into each sink, joined through one middle layer by a product transport plan. Where the
   bounds meet (within 1e-12) the value is proven. On diffuse attention this settles every pair.
3. Every other pair gets a highest-label push-relabel specialised to the layered graph
   (`_push_relabel`): exact initial labels, gap heuristic, flows kept sparse (only edges carrying
   flow are listed, so back-arcs are never scanned densely), and an early stop once the flow
   reaches the upper bound.
4. Pairs run in parallel: the kernels release the GIL and run in plain threads.

Kernel graph convention (one pair): node layers q = 1..M, each with n positions; layer 1 feeds the
sink, and the source is position 0 of the top layer M.

    mid[q-1][i, j]  capacity (q+1, i) -> (q, j)       # (M-1, n, n); mid[M-2][0] = source's edges
    snk[k]          capacity (1, k) -> sink           # (n,)

For A&Z with the source s at layer Ls (1-based): M = Ls, mid = Â_2..Â_{Ls-1} and then a matrix
whose row 0 is Â_Ls[s] (other rows zero), snk = Â_1[:, t].
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

EPS = 1e-13  # residual capacity at or below this counts as saturated (float64 round-off guard)
STOP_TOL = 1e-12  # a flow this close to a proven upper bound is the max flow


# ---------------------------------------------------------------------------------------------
# push-relabel for one (source, sink) pair
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _workspace(n, M):
    """Scratch for `_push_relabel` on graphs of M layers of n positions (one per thread)."""
    V = M * n + 2
    fmid = np.zeros((max(M - 1, 1), n, n))  # flows on the middle edges; kept zero between pairs
    in_nbr = np.empty((V, n), np.int32)  # positions one layer up that send flow into a node
    out_nbr = np.empty((V, n), np.int32)  # positions one layer down a node sends flow to
    in_cnt = np.zeros(V, np.int64)
    out_cnt = np.zeros(V, np.int64)
    fsnk = np.zeros(n)  # flows layer 1 -> sink
    excess = np.zeros(V)
    label = np.empty(V, np.int64)
    current = np.zeros(V, np.int64)  # current-arc pointers
    queue = np.empty(V, np.int64)
    unlabeled = np.empty((M, n), np.int64)
    n_unlabeled = np.empty(M, np.int64)
    bucket_next = np.empty(V, np.int64)  # active nodes: one stack per label
    bucket_head = np.empty(V + 1, np.int64)
    count = np.zeros(V + 1, np.int64)  # nodes per label, for the gap heuristic
    queued = np.zeros(V, np.bool_)
    layer_of = np.empty(V, np.int64)  # node -> (layer, position) without integer division
    pos_of = np.empty(V, np.int64)
    for u in range(M * n):
        layer_of[u] = u // n + 1
        pos_of[u] = u % n
    return (
        fmid, in_nbr, out_nbr, in_cnt, out_cnt, fsnk, excess, label, current, queue, unlabeled,
        n_unlabeled, bucket_next, bucket_head, count, queued, layer_of, pos_of,
    )  # fmt: skip


@njit(cache=True)
def _relabel_globally(n, M, mid, snk, ws):
    """Exact distance-to-sink labels by a reverse BFS over residual arcs.

    Dense down-arcs are almost never saturated, so instead of scanning every column we keep a list
    of still-unlabeled positions per layer: the first labelled node of a layer labels nearly all of
    the layer above, and later nodes only look at the few that are left.
    """
    fmid, _, out_nbr, _, out_cnt, fsnk, _, label, _, queue, unlabeled, n_unlabeled = ws[:12]
    count = ws[14]
    layer_of, pos_of = ws[16], ws[17]
    V = M * n + 2
    label[:] = V
    count[:] = 0
    head = 0
    tail = 0
    for k in range(n):  # layer 1 -> sink
        if snk[k] - fsnk[k] > EPS:
            label[k] = 1
            queue[tail] = k
            tail += 1
    for q in range(M):
        c = 0
        for i in range(n):
            if label[q * n + i] == V:
                unlabeled[q, c] = i
                c += 1
        n_unlabeled[q] = c
    while head < tail:
        u = queue[head]
        head += 1
        q = layer_of[u]
        i = pos_of[u]
        next_label = label[u] + 1
        if q < M:  # (q+1, j) -> (q, i) down-arcs with residual capacity
            kept = 0
            for r in range(n_unlabeled[q]):
                j = unlabeled[q, r]
                v = q * n + j
                if label[v] == V and mid[q - 1, j, i] - fmid[q - 1, j, i] > EPS:
                    label[v] = next_label
                    queue[tail] = v
                    tail += 1
                else:
                    unlabeled[q, kept] = j
                    kept += 1
            n_unlabeled[q] = kept
        if q > 1:  # (q-1, j) -> (q, i) back-arcs: flow (q, i) -> (q-1, j) can be cancelled
            for r in range(out_cnt[u]):
                j = out_nbr[u, r]
                v = (q - 2) * n + j
                if label[v] == V and fmid[q - 2, i, j] > EPS:
                    label[v] = next_label
                    queue[tail] = v
                    tail += 1
    for u in range(V - 2):
        if label[u] < V:
            count[label[u]] += 1


@njit(cache=True, inline="always")
def _activate(v, lab, queued, bucket_next, bucket_head):
    if not queued[v]:
        queued[v] = True
        bucket_next[v] = bucket_head[lab]
        bucket_head[lab] = v


@njit(cache=True)
def _push_relabel(mid, snk, upper, ws):
    """Max-flow value source -> sink of one layered graph (see `_solve_pairs` for the layout).

    Highest-label push-relabel with exact initial labels, the gap heuristic and a global relabel
    after every 2V relabels (rare here: more often costs more arc rescans than it saves). Only the first phase runs (the value is known once no active node can
    reach the sink), and it returns as soon as the flow reaches `upper`, a proven upper bound.
    The source starts with min(upper, out-capacity) of excess rather than saturating its edges:
    the max flow is unchanged (it never exceeds `upper`) and less surplus has to be proven stuck.

    `ws` is `_workspace(n, M)`; its middle-edge flows are zero on entry and again on return.
    Flows stay sparse, so each node lists the neighbours it exchanges flow with: back-arcs
    (cancelling flow) are scanned from these lists, never densely.
    """
    fmid, in_nbr, out_nbr, in_cnt, out_cnt, fsnk, excess, label, current = ws[:9]
    bucket_next, bucket_head, count, queued, layer_of, pos_of = ws[12:]
    n = snk.shape[0]
    M = mid.shape[0] + 1
    V = M * n + 2
    S = M * n
    fsnk[:] = 0.0
    excess[:] = 0.0
    current[:] = 0
    in_cnt[:] = 0
    out_cnt[:] = 0
    bucket_head[:] = -1
    queued[:] = False
    _relabel_globally(n, M, mid, snk, ws)

    source = (M - 1) * n  # position 0 of the top layer
    excess[source] = min(upper, mid[M - 2, 0].sum())
    highest = label[source]
    if highest >= V:  # the sink is unreachable
        return 0.0
    _activate(source, highest, queued, bucket_next, bucket_head)

    value = 0.0  # flow into the sink
    relabels_since_global = 0
    while highest >= 0:
        u = bucket_head[highest]
        if u < 0:
            highest -= 1
            continue
        bucket_head[highest] = bucket_next[u]
        queued[u] = False
        if label[u] != highest:
            continue
        q = layer_of[u]
        i = pos_of[u]
        n_down = 1 if q == 1 else n
        down = (q - 2) * n  # first node of the layer below (q > 1)
        up = q * n  # first node of the layer above (q < M)
        ex = excess[u]
        a = current[u]
        lu = label[u]
        # discharge u: arcs 0..n_down-1 go down (rotated so the diagonal, Â's residual, comes
        # first), the rest go back up along the edges that carry flow into u
        while ex > EPS:
            n_up = 0 if q == M else in_cnt[u]
            if a >= n_down + n_up:
                # relabel: 1 + the lowest label over residual arcs; point current at that arc.
                # Arcs join adjacent layers, so labels alternate in parity and no residual arc
                # can be below lu + 1 here: the first arc at lu + 1 ends the scan.
                best = V
                best_arc = 0
                lowest = lu + 1
                if q == 1:
                    if snk[i] - fsnk[i] > EPS:
                        best = 0
                else:
                    for b in range(n):
                        j = i + b if i + b < n else i + b - n
                        lv = label[down + j]
                        if lv < best and mid[q - 2, i, j] - fmid[q - 2, i, j] > EPS:
                            best = lv
                            best_arc = b
                            if lv <= lowest:
                                break
                if best > lowest:
                    for r in range(n_up):
                        j = in_nbr[u, r]
                        lv = label[up + j]
                        if lv < best and fmid[q - 1, j, i] > EPS:
                            best = lv
                            best_arc = n_down + r
                            if lv <= lowest:
                                break
                count[lu] -= 1
                if count[lu] == 0:
                    # gap: nothing at or above this label can reach the sink any more
                    for v in range(S):
                        if lu < label[v] < V:
                            count[label[v]] -= 1
                            label[v] = V
                    lu = V
                else:
                    lu = min(best + 1, V)
                label[u] = lu
                a = best_arc
                if lu >= V:
                    break
                count[lu] += 1
                relabels_since_global += 1
                if relabels_since_global >= 2 * V:
                    relabels_since_global = 0
                    excess[u] = ex
                    _relabel_globally(n, M, mid, snk, ws)
                    bucket_head[:] = -1
                    queued[:] = False
                    current[:] = 0
                    highest = 0
                    for v in range(S):
                        if excess[v] > EPS and label[v] < V and v != u:
                            _activate(v, label[v], queued, bucket_next, bucket_head)
                            highest = max(highest, label[v])
                    lu = label[u]
                    a = 0
                    if lu >= V:
                        break
                continue
            below = lu - 1
            if a < n_down:
                if q == 1:
                    r = snk[i] - fsnk[i]
                    if r > EPS and below == 0:
                        delta = min(ex, r)
                        fsnk[i] += delta
                        ex -= delta
                        value += delta
                        if value >= upper - STOP_TOL:
                            return value
                        continue
                else:
                    j = i + a if i + a < n else i + a - n
                    v = down + j
                    if label[v] == below:
                        r = mid[q - 2, i, j] - fmid[q - 2, i, j]
                        if r > EPS:
                            delta = min(ex, r)
                            if fmid[q - 2, i, j] == 0.0:  # first flow on this edge: list it
                                in_nbr[v, in_cnt[v]] = i
                                in_cnt[v] += 1
                                out_nbr[u, out_cnt[u]] = j
                                out_cnt[u] += 1
                            fmid[q - 2, i, j] += delta
                            ex -= delta
                            excess[v] += delta
                            _activate(v, below, queued, bucket_next, bucket_head)
                            highest = max(highest, below)
                            continue
            else:
                j = in_nbr[u, a - n_down]
                v = up + j
                if label[v] == below:
                    r = fmid[q - 1, j, i]
                    if r > EPS:
                        delta = min(ex, r)
                        # a tiny positive value keeps the edge marked as listed
                        fmid[q - 1, j, i] = max(r - delta, 1e-300)
                        ex -= delta
                        excess[v] += delta
                        _activate(v, below, queued, bucket_next, bucket_head)
                        highest = max(highest, below)
                        continue
            a += 1
        excess[u] = ex
        current[u] = a
        if ex > EPS and lu < V:
            _activate(u, lu, queued, bucket_next, bucket_head)
            highest = max(highest, lu)
    return value


@njit(cache=True)
def _clear_flows(n, M, ws):
    """Zero the middle-edge flows of the last solve, visiting only the edges that carried flow."""
    fmid, _, out_nbr, _, out_cnt = ws[:5]
    for q in range(2, M + 1):
        for i in range(n):
            u = (q - 1) * n + i
            for r in range(out_cnt[u]):
                fmid[q - 2, i, out_nbr[u, r]] = 0.0


# ---------------------------------------------------------------------------------------------
# bounds shared by all pairs
# ---------------------------------------------------------------------------------------------


def _upper_bounds(sources: np.ndarray, mid: np.ndarray, snk_cols: np.ndarray) -> np.ndarray:
    """Cut capacities that bound every (source, sink) value from above.         # (S, n)

    min(source out-capacity, sink in-capacity c_t = sum_k Â_1[k, t], and the depth-1 sink cut
    sum_k min(Â_1[k, t], in-capacity of position k at layer 1)): each is an s-t cut.
    """
    into_1 = mid[0].sum(0)  # (n,) in-capacity of the layer-1 positions
    sink_cap = snk_cols.sum(0)  # (n,)
    cut_1 = np.minimum(snk_cols, into_1[:, None]).sum(0)  # (n,)
    return np.minimum(sources.sum(1)[:, None], np.minimum(sink_cap, cut_1)[None, :])


@njit(cache=True, nogil=True)
def _push_down(sources, mid, rows, push):
    """Proportional flow from each listed source: push[s, q, j] reaches position j of layer q.

    Every node splits what it receives over its out-edges in proportion to capacity (what
    rollout does with attention), forwarding at most its out-capacity: a feasible flow.
    sources (S, n), mid (M-1, n, n), push (S, M+1, n). (Plain loops, not BLAS: OpenBLAS's own
    threads spin-wait and crawl on a busy 2-core machine.)
    """
    n = sources.shape[1]
    M = mid.shape[0] + 1
    out = np.empty((M - 1, n))
    for q in range(M - 1):
        for i in range(n):
            out[q, i] = mid[q, i].sum()
    for s in rows:
        P = push[s]
        P[:] = 0.0
        P[M] = sources[s]
        for q in range(M, 1, -1):
            caps = mid[q - 2]  # (n, n) (q, i) -> (q-1, j)
            for i in range(n):
                if P[q, i] <= 0.0 or out[q - 2, i] <= 0.0:
                    continue
                share = min(P[q, i], out[q - 2, i]) / out[q - 2, i]
                P[q - 1] += share * caps[i]


@njit(cache=True, nogil=True)
def _pull_up(snk_cols, mid, sinks, rows, pull):
    """Proportional flow into sinks: pull[r, q, j] can go from (q, j) to sink sinks[r].

    Each node draws what it forwards from the layer above in proportion to its in-edges, at most
    their total: a feasible flow into the sink.   snk_cols (n, n) = Â_1, pull (Z, M+1, n).
    """
    n = snk_cols.shape[0]
    M = mid.shape[0] + 1
    into = np.empty((M - 1, n))
    for q in range(M - 1):
        into[q] = mid[q].sum(0)
    share = np.empty(n)
    for r in rows:
        D = pull[r]
        D[:] = 0.0
        D[1] = snk_cols[:, sinks[r]]
        for q in range(1, M):
            caps = mid[q - 1]  # (n, n) (q+1, j) -> (q, k)
            for k in range(n):
                c = into[q - 1, k]
                share[k] = min(D[q, k], c) / c if c > 0.0 else 0.0
            for j in range(n):
                D[q + 1, j] = np.dot(caps[j], share)


@njit(cache=True, nogil=True)
def _lower_bounds(push, pull, mid, rows, lower):
    """A feasible flow value for the listed sources and every sink.

    For each middle edge layer m, ship the source's push-down P[m] to the sink's pull-up D[m-1]
    through that one layer with the product plan x_ij = phi (P_i/|P|) (D_j/|D|), feasible while
    x_ij <= cap_ij, i.e. phi <= |P| |D| / max_j (D_j max_i P_i / cap_ij); keep the best m.
    W[m, j] = max_i P_i / cap_ij is per source, so each pair costs O(M n).
    push (S, M+1, n), pull (Z, M+1, n) for Z sinks, mid (M-1, n, n), lower (S, Z).
    """
    n = push.shape[2]
    Z = pull.shape[0]
    M = mid.shape[0] + 1
    pull_mass = np.zeros((Z, M + 1))
    for t in range(Z):
        for q in range(M + 1):
            pull_mass[t, q] = pull[t, q].sum()
    W = np.zeros((M + 1, n))
    for s in rows:
        P = push[s]
        W[:] = 0.0
        for m in range(2, M + 1):
            caps = mid[m - 2]
            for i in range(n):
                if P[m, i] <= 0.0:
                    continue
                for j in range(n):
                    c = caps[i, j]
                    w = P[m, i] / c if c > 0.0 else np.inf
                    if w > W[m, j]:
                        W[m, j] = w
        for t in range(Z):
            best = 0.0
            for m in range(2, M + 1):
                supply = P[m].sum()
                demand = pull_mass[t, m - 1]
                if supply <= 0.0 or demand <= 0.0:
                    continue
                press = 0.0
                for j in range(n):
                    press = max(press, W[m, j] * pull[t, m - 1, j])
                phi = min(supply, demand)
                if press > 0.0:
                    phi = min(phi, supply * demand / press)
                best = max(best, phi)
            lower[s, t] = best


# ---------------------------------------------------------------------------------------------
# all pairs
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _solve_pairs(sources, mid, snk_cols, pair_source, pair_sink, upper, values):
    """Push-relabel for the listed (source row, sink) pairs, one after another (one thread).

    The kernel sees M + 1 node layers: the M layers of positions and, on top, a layer whose
    position 0 is the source (its row of the top capacity matrix is the source's out-edges, the
    other rows are zero and stay unreachable).
    """
    n = sources.shape[1]
    M = mid.shape[0] + 1
    caps = np.zeros((M, n, n))  # (M, n, n): mid, then the source's layer
    caps[: M - 1] = mid
    ws = _workspace(n, M + 1)
    snk = np.empty(n)
    for p in range(pair_source.shape[0]):
        s = pair_source[p]
        t = pair_sink[p]
        caps[M - 1, 0] = sources[s]
        snk[:] = snk_cols[:, t]
        values[s, t] = _push_relabel(caps, snk, upper[s, t], ws)
        _clear_flows(n, M + 1, ws)


def _in_threads(
    work: Callable[[np.ndarray], None], items: np.ndarray, threads: int, min_share: int = 1
) -> None:
    """Run `work` on up to `threads` strided shares of `items` (at least `min_share` each) at once.

    The kernels release the GIL (nogil), so plain threads run them in parallel; unlike a numba
    parallel region they do not spin-wait, which matters on a shared 2-core machine.
    """
    threads = max(1, min(threads, len(items) // max(min_share, 1)))
    # contiguous shares: one array layout, so numba compiles (and caches) one specialisation
    shares = [np.ascontiguousarray(items[k::threads]) for k in range(threads)]
    if threads == 1:
        if len(items):
            work(shares[0])
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, shares))


def default_threads() -> int:
    """Threads for the flow kernels: NUMBA_NUM_THREADS if set, else the CPUs this process may use."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return max(1, int(os.environ["NUMBA_NUM_THREADS"]))
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def pair_bounds(
    sources: np.ndarray,
    below: np.ndarray,
    threads: int | None = None,
    sinks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on (source, input token) max-flow values: (S, Z) each.

    Arguments as `layered_max_flow` (needs K >= 2 layers below); `sinks` picks Z input tokens
    (default all n). Where lower >= upper - 1e-12 the value is proven without a solve.
    """
    sources = np.ascontiguousarray(sources, dtype=np.float64)
    below = np.ascontiguousarray(below, dtype=np.float64)
    mid = np.ascontiguousarray(below[1:])  # (K-1, n, n)
    snk_cols = below[0]
    S, n = sources.shape
    M = mid.shape[0] + 1
    sinks = np.arange(n) if sinks is None else np.asarray(sinks, dtype=np.int64)
    threads = threads or default_threads()
    min_share = max(1, 2**16 // (M * n * n))  # threads only for real work
    upper = _upper_bounds(sources, mid, snk_cols)[:, sinks]  # (S, Z)
    push = np.empty((S, M + 1, n))
    pull = np.empty((len(sinks), M + 1, n))
    _in_threads(lambda rs: _push_down(sources, mid, rs, push), np.arange(S), threads, min_share)
    _in_threads(
        lambda rs: _pull_up(snk_cols, mid, sinks, rs, pull),
        np.arange(len(sinks)),
        threads,
        min_share,
    )
    lower = np.zeros_like(upper)
    _in_threads(
        lambda rs: _lower_bounds(push, pull, mid, rs, lower), np.arange(S), threads, min_share
    )
    return lower, upper


def _bounds_pay_off(sources: np.ndarray, below: np.ndarray, threads: int) -> bool:
    """Whether bounds settle any pair of a small probe (a few sources, 16 sinks).

    On peaked attention (real models) they rarely do, and for big graphs the shared work is
    then pure overhead; on diffuse attention they settle nearly everything.
    """
    S, n = sources.shape
    if S * n <= 4096:  # cheap enough to just compute
        return True
    probe_sources = sources[:: max(1, S // 4)][:4]
    probe_sinks = np.linspace(0, n - 1, 16).astype(np.int64)
    lower, upper = pair_bounds(probe_sources, below, threads, probe_sinks)
    return bool((lower >= upper - STOP_TOL).any())


def layered_max_flow(
    sources: np.ndarray,
    below: np.ndarray,
    *,
    settle: bool = True,
    stop_at_bound: bool = True,
    threads: int | None = None,
    stats: dict | None = None,
) -> np.ndarray:
    """Exact max-flow values from a node whose out-edges are `sources[s]` to every input token.

    Args:
        sources: (S, n) float64, capacities from each source node to the n positions one layer down
            (Â_Ls[s] for a node at layer Ls; one head's row for per-head flow).
        below: (K, n, n) float64, Â_1..Â_K of the layers beneath the source (K = Ls - 1); below[0]
            connects layer-1 positions to the input tokens.
        settle: skip the solve where a feasible flow already meets the upper bound.
        stop_at_bound: let each solve stop once its flow reaches the upper bound.
            (Both are exact and on by default; the switches exist to measure what they buy.)
        threads: worker threads (default: `default_threads()`).
        stats: if a dict, filled with how many pairs the bounds settled and how many were solved.

    Returns:
        (S, n) float64: values[s, t] = max-flow value source s -> input token t.
    """
    sources = np.ascontiguousarray(sources, dtype=np.float64)
    below = np.ascontiguousarray(below, dtype=np.float64)
    S, n = sources.shape
    K = below.shape[0]
    if K == 0:  # the source's edges end at the input tokens
        values = sources.copy()
        solved = 0
    elif K == 1:  # paths s -> k -> t share no edge, so the value is closed-form
        values = np.minimum(sources[:, :, None], below[0][None, :, :]).sum(1)
        solved = 0
    else:
        mid = np.ascontiguousarray(below[1:])  # (K-1, n, n)
        snk_cols = below[0]
        threads = threads or default_threads()
        if settle and _bounds_pay_off(sources, below, threads):
            lower, upper = pair_bounds(sources, below, threads)
            open_s, open_t = np.nonzero(lower < upper - STOP_TOL)
        else:
            upper = _upper_bounds(sources, mid, snk_cols)
            open_s, open_t = np.nonzero(np.ones((S, n), dtype=bool))
        values = upper.copy()  # settled pairs keep their (proven) upper bound
        solved = len(open_s)
        bound = upper if stop_at_bound else np.full((S, n), np.inf)
        pairs = np.stack([open_s, open_t], 1).astype(np.int64)  # (P, 2)
        _in_threads(
            lambda share: _solve_pairs(
                sources, mid, snk_cols, share[:, 0].copy(), share[:, 1].copy(), bound, values
            ),
            pairs,
            threads,
            min_share=8,
        )
    if stats is not None:
        stats["pairs"] = S * n
        stats["settled_by_bounds"] = S * n - solved
        stats["solved"] = solved
    return values
