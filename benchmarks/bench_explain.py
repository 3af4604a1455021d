"""Benchmark `attnkit explain`: one 64-token sentence, the six default methods, MiniLM.

    python -m benchmarks.bench_explain              # cold (a fresh `attnkit explain` process)
                                                    # and warm (a second call in one process)

Goals (issue 14): cold <= 15 s, warm <= 5 s on the 2-core CPU machine. "cold" runs the command
end to end in a new process (imports, loading the model, every method, writing the page);
"warm" is `attnkit.explain(...)` plus `.save(page.html)` again in a process that has run it once
(the model is cached by name). Wall and CPU seconds are both printed: on a shared machine wall
time also measures the neighbours, so the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = (
    "The keys to the old wooden cabinet, which my grandmother bought at a market in the small "
    "town where she grew up, are on the kitchen table next to the letters that arrived this "
    "morning from her sister, who still lives there and writes to her every single week without "
    "fail, as she has done for years."
)


def cold(text: str, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a fresh `attnkit explain` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "attnkit.cli", "explain", "--text", text, "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def warm(text: str, out: Path, repeats: int) -> tuple[float, float]:
    """Best wall and CPU seconds of `explain(...).save(...)` after a first call in this process."""
    import attnkit

    attnkit.explain(text).save(str(out))  # loads and caches the model, compiles flow's kernels
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        attnkit.explain(text).save(str(out))
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="warm runs (the best is kept)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from transformers import AutoTokenizer

    from attnkit.models.pretrained import minilm_path

    tokens = len(AutoTokenizer.from_pretrained(minilm_path())(SENTENCE)["input_ids"])
    with tempfile.TemporaryDirectory() as folder:
        cold_wall, cold_cpu = cold(SENTENCE, Path(folder) / "cold.html")
        warm_wall, warm_cpu = warm(SENTENCE, Path(folder) / "warm.html", args.repeats)
    print(
        f"one sentence of {tokens} tokens, methods raw,rollout,flow,gradient,integrated_gradients,blank_out"
    )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"cold (new process): wall {cold_wall:5.1f} s   cpu {cold_cpu:5.1f} s   goal <= 15 s")
    print(f"warm (second call): wall {warm_wall:5.1f} s   cpu {warm_cpu:5.1f} s   goal <= 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
