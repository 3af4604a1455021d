"""The README's "Use it on your own model" runs as written: its Python blocks, in order, in one
namespace (as a reader pasting them would)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")
matplotlib.use("Agg")

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Use it on your own model"


def quickstart_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_quickstart_has_the_three_models():
    blocks = quickstart_blocks()
    assert len(blocks) == 3
    assert "load_minilm" in blocks[0] and "nn.Transformer" in blocks[1] and "ViT" in blocks[2]
    for call in ("capture(", "rollout(", "flow(", "plots.", "blank_out(", "spearman("):
        assert call in blocks[0], call


def test_quickstart_runs_as_written(single_thread, capsys):
    namespace: dict = {"__name__": "readme"}
    for index, block in enumerate(quickstart_blocks()):
        exec(compile(block, f"README quickstart block {index + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Attentions(kind='self', layers=6, batch=2, heads=12" in printed
    assert "torch.Size([3, 2, 4, 7, 7]) tensor([7, 5])" in printed
    rollout = namespace["attnkit"].rollout(namespace["attn"])  # the ViT's
    assert rollout.shape == (2, 2, 17, 17)
