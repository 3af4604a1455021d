"""Benchmark attnkit.relevance on all-MiniLM-L6-v2: each method as a multiple of forward + backward.

    python -m benchmarks.bench_relevance                 # batch 16 x 64 tokens, one thread
    python -m benchmarks.bench_relevance --batch 4 --tokens 32 --threads 2

The unit is one forward and one backward pass of the classifier (MiniLM with a 2-way head) on the
same batch: the cost of one input-gradient explanation. Each method's time is the best of up to
`--repeats` runs (at most ~`--budget` seconds per method); "x fwd+bwd" is its ratio to the unit,
measured in the same run.

Times are CPU (process) seconds: on a shared machine, wall time mostly measures the neighbours.

Value zeroing is also timed against loops that run the model's own layer modules once per zeroed
token, with a forward hook zeroing that token's value vector: "token loop" covers the whole batch
in each call; "token x example loop" also goes one sentence at a time, as Mohebbi et al.'s code
does. "max|diff|" is the largest difference between a loop's scores and `value_zeroing`'s. Every
altered token's output must go through the FFN again, in the loops and in the batched pass alike,
so the FFN bounds what batching can save.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from attnkit.models import load_minilm
from attnkit.relevance import alti, attention_norm, gae, globenc, grad_rollout, value_zeroing
from attnkit.relevance._encoder import encoder_layers, normalize_rows, real_pairs
from attnkit.relevance.value_zeroing import cosine_distance

TEXT = (
    "Attention weights are often read as explanations of what a transformer looks at, but the "
    "information in a token's representation mixes across layers through the residual stream and "
    "through attention itself. Rollout multiplies the attention matrices of successive layers; "
    "norm-based methods weigh each attention weight by the size of the vector it moves; ALTI and "
    "GlobEnc decompose the whole attention block; value zeroing removes one token's value and "
    "measures how far the others move. Whether any of these scores is faithful to the model "
    "remains an open and lively question, which is why the kit ranks them on the same models. "
)


def make_batch(tokenizer, batch: int, tokens: int) -> dict[str, torch.Tensor]:
    words = TEXT.split()
    texts = [" ".join(words[i % len(words) :] + words[: i % len(words)]) for i in range(batch)]
    return dict(
        tokenizer(
            texts, padding="max_length", truncation=True, max_length=tokens, return_tensors="pt"
        )
    )


def best_time(run: Callable[[], object], repeats: int, budget: float) -> float:
    """Best CPU time (process time: on a shared machine wall time mostly measures the others)."""
    times: list[float] = []
    start = time.process_time()
    while len(times) < repeats and (not times or time.process_time() - start < budget):
        tic = time.process_time()
        run()
        times.append(time.process_time() - tic)
    return min(times)


def forward_backward(model, inputs) -> None:
    model.zero_grad(set_to_none=True)
    logits = model(**inputs).logits
    logits[:, 0].sum().backward()


@torch.no_grad()
def value_zeroing_loop(model, inputs, per_example: bool = False) -> torch.Tensor:
    """Per layer, per token j: the layer module re-run with value row j zeroed by a hook.

    `per_example` also loops over the examples, one sentence at a time (Mohebbi et al.'s code
    explains one sentence per call); otherwise each call covers the whole batch.
    """
    if per_example:
        mask = inputs["attention_mask"]
        B, T = mask.shape
        out = []
        for b in range(B):
            n = int(mask[b].sum())
            one = value_zeroing_loop(model, {k: v[b : b + 1, :n] for k, v in inputs.items()})
            out.append(F.pad(one, (0, T - n, 0, T - n)))
        return torch.cat(out, dim=1)
    _, layers = encoder_layers(model)
    calls: list[tuple[tuple, dict]] = []
    handles = [
        layer.module.register_forward_pre_hook(
            lambda m, a, k: calls.append((a, k)), with_kwargs=True
        )
        for layer in layers
    ]
    model(**inputs)
    for handle in handles:
        handle.remove()
    mask = inputs["attention_mask"].bool()
    B, T = mask.shape
    out = torch.zeros(len(layers), B, T, T)
    for index, (layer, (args, kwargs)) in enumerate(zip(layers, calls, strict=True)):
        original = layer.module(*args, **kwargs)
        original = original[0] if isinstance(original, tuple) else original
        for j in range(T):

            def zero(module, a, output, j=j):
                output = output.clone()
                output[:, j] = 0
                return output

            handle = layer.value.register_forward_hook(zero)
            altered = layer.module(*args, **kwargs)
            handle.remove()
            altered = altered[0] if isinstance(altered, tuple) else altered
            out[index, :, :, j] = cosine_distance(altered, original)
    pairs = real_pairs(mask, out.dtype)
    return normalize_rows(out * pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per method")
    parser.add_argument("--no-loop", action="store_true", help="skip the per-token loop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer = load_minilm(num_labels=2)
    inputs = make_batch(tokenizer, args.batch, args.tokens)
    print(
        f"all-MiniLM-L6-v2 (2-way head), batch {args.batch} x {args.tokens} tokens, "
        f"{args.threads} thread(s), torch {torch.__version__}"
    )
    unit = best_time(lambda: forward_backward(model, inputs), args.repeats, args.budget)
    print(f"{'method':<26}{'seconds':>10}{'x fwd+bwd':>12}")
    print(f"{'forward + backward':<26}{unit:>10.3f}{1.0:>12.1f}")
    methods = {
        "gae": lambda: gae(model, inputs),
        "grad_rollout": lambda: grad_rollout(model, inputs),
        "attention_norm": lambda: attention_norm(model, inputs),
        "globenc": lambda: globenc(model, inputs),
        "alti": lambda: alti(model, inputs),
        "value_zeroing": lambda: value_zeroing(model, inputs),
        "value_zeroing chunk=1": lambda: value_zeroing(model, inputs, chunk_size=1),
    }
    seconds = {}
    for name, run in methods.items():
        seconds[name] = best_time(run, args.repeats, args.budget)
        print(f"{name:<26}{seconds[name]:>10.3f}{seconds[name] / unit:>12.1f}")
    if args.no_loop:
        return
    for label, per_example in (("token loop", False), ("token x example loop", True)):
        tic = time.process_time()
        looped = value_zeroing_loop(model, inputs, per_example)
        loop_seconds = time.process_time() - tic
        print(f"{'value zeroing, ' + label:<26}{loop_seconds:>10.3f}{loop_seconds / unit:>12.1f}")
        diff = (looped - value_zeroing(model, inputs)).abs().max().item()
        speedup = loop_seconds / seconds["value_zeroing"]
        print(f"  value_zeroing is {speedup:.1f}x faster than the {label} (max|diff| {diff:.1e})")


if __name__ == "__main__":
    main()
