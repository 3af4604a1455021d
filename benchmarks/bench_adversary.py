"""The batched per-instance adversary: measure its speed-up over one optimisation per instance.

    .venv/bin/python benchmarks/bench_adversary.py                 # B = 8 and 32, 100 steps
    .venv/bin/python benchmarks/bench_adversary.py --batches 64 --steps 500 --lengths 20 200

`attnkit.adversarial.adversarial_attention` optimises the K candidate attentions of a whole batch
as one (B, K, T) tensor under one Adam optimiser (Jain & Wallace 2019's search, batched). The
loss is a sum of per-instance terms and each instance's initial noise comes from its own
generator, so a batch run is designed to give the same result as one run per instance. This
benchmark times both, in the same process and on the same model and inputs:

    batch s   one call on the (B, T) batch, lengths varying, right-padded
    loop s    a Python loop of B calls, each on one instance trimmed to its length (batch of 1),
              with `instance_ids=[b]` so its noise is the batch's row b
    speed-up  loop s / batch s
    max|diff| the largest |Δ| between the selected adversarial attention of the two runs (over
              real tokens); "found" counts instances whose `found` flags agree

The model is an untrained `AdditiveClassifier` (BiLSTM by default, vocab 500, hidden 32 per
direction): the search's cost does not depend on the weights' values. Time is the best of
--repeats runs (wall clock, `time.perf_counter`), with --threads torch threads.
"""

from __future__ import annotations

import os

# torch's OpenMP threads spin while they wait; on a shared machine that distorts timings.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402

from attnkit.adversarial import AdversarialAttention, AdversaryConfig, adversarial_attention  # noqa: E402
from attnkit.models.additive import AdditiveClassifier, AdditiveConfig  # noqa: E402
from attnkit.models.vocab import PAD_ID  # noqa: E402


def random_batch(
    batch: int, vocab_size: int, min_len: int, max_len: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random token ids `(B, T)` and their mask, lengths in [min_len, max_len];
    T is the longest length drawn. Ids avoid the padding id."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=generator)  # (B,)
    T = int(lengths.max())
    ids = torch.randint(1, vocab_size, (batch, T), generator=generator)  # (B, T)
    if PAD_ID != 0:
        ids[ids == PAD_ID] = 0
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    return ids.masked_fill(~mask, PAD_ID), mask.long()


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall-clock seconds of `repeats` calls and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def per_instance(
    model: AdditiveClassifier, ids: torch.Tensor, mask: torch.Tensor, config: AdversaryConfig
) -> list[AdversarialAttention]:
    """One `adversarial_attention` call per instance, each trimmed to its own length."""
    results = []
    for b in range(ids.shape[0]):
        n = int(mask[b].sum())
        results.append(
            adversarial_attention(
                model, ids[b : b + 1, :n], mask[b : b + 1, :n], config=config, instance_ids=[b]
            )
        )
    return results


def compare(
    batched: AdversarialAttention, singles: list[AdversarialAttention], mask: torch.Tensor
) -> tuple[float, int]:
    """Max |Δ| of the selected attention over real tokens, and how many `found` flags agree."""
    diff, agree = 0.0, 0
    for b, single in enumerate(singles):
        n = int(mask[b].sum())
        diff = max(diff, float((batched.attention[b, :n] - single.attention[0, :n]).abs().max()))
        if n < batched.attention.shape[1]:  # padding must get exactly 0
            diff = max(diff, float(batched.attention[b, n:].abs().max()))
        agree += int(bool(batched.found[b]) == bool(single.found[0]))
    return diff, agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32], help="batch sizes B")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per search")
    parser.add_argument("--k", type=int, default=5, help="candidates per instance")
    parser.add_argument(
        "--lengths",
        type=int,
        nargs=2,
        default=[10, 60],
        metavar=("MIN", "MAX"),
        help="document lengths are drawn uniformly in [MIN, MAX]",
    )
    parser.add_argument("--vocab", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=32, help="hidden size (per direction)")
    parser.add_argument("--encoder", choices=["lstm", "average"], default="lstm")
    parser.add_argument("--seed", type=int, default=0, help="model, data and search seed")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    if args.lengths[0] < 1 or args.lengths[0] > args.lengths[1]:
        parser.error(f"--lengths needs 1 <= MIN <= MAX, got {args.lengths}")
    torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = AdditiveClassifier(
        AdditiveConfig(
            vocab_size=args.vocab,
            embed_dim=args.hidden,
            hidden_size=args.hidden,
            encoder=args.encoder,
        )
    ).eval()
    config = AdversaryConfig(k=args.k, steps=args.steps, seed=args.seed)
    print(
        f"bench_adversary: {args.encoder} encoder, vocab {args.vocab}, hidden {args.hidden}, "
        f"K={args.k}, {args.steps} steps, lengths {args.lengths[0]}-{args.lengths[1]}, "
        f"{torch.get_num_threads()} torch thread(s), best of {args.repeats}"
    )
    # Warm-up: the first call pays one-off costs (lazy imports, allocator, kernels), not timed.
    warm_ids, warm_mask = random_batch(2, args.vocab, *args.lengths, seed=args.seed)
    adversarial_attention(model, warm_ids, warm_mask, config=AdversaryConfig(k=args.k, steps=2))
    header = f"{'B':>4} {'T':>4} {'batch s':>9} {'loop s':>9} {'speed-up':>9} {'max|diff|':>10} {'found':>7}"
    print(header)
    print("-" * len(header))
    for batch in args.batches:
        ids, mask = random_batch(batch, args.vocab, *args.lengths, seed=args.seed + batch)
        t_batch, batched = best_time(
            functools.partial(adversarial_attention, model, ids, mask, config=config), args.repeats
        )
        t_loop, singles = best_time(
            functools.partial(per_instance, model, ids, mask, config), args.repeats
        )
        diff, agree = compare(batched, singles, mask)
        print(
            f"{batch:>4} {ids.shape[1]:>4} {t_batch:>9.2f} {t_loop:>9.2f} "
            f"{t_loop / t_batch:>8.1f}x {diff:>10.1e} {agree:>3}/{batch:<3}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
