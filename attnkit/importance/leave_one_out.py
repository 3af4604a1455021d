"""Jain & Wallace's (2019) leave-one-out importance: how much the prediction moves without token t.

    loo[b, t] = TVD(p(x_b without token t), p(x_b))            # (B, T), 0 at padding

For two classes the TVD is |σ(ŷ(x_{−t})) − σ(ŷ(x))|, J&W's `remove_and_run`
(`successar/AttentionExplanation`, `Trainers/PlottingBC.py`). `mode="delete"` removes the token
so later tokens shift left (J&W); `mode="unk"` replaces it by UNK in place (Abnar & Zuidema's
blank-out, `attnkit.importance.blank_out`, with absolute=True: for two classes the same TVD).

Device: the inputs may live anywhere; they are moved to the model's device, the scores come back
on the inputs' device. Index bookkeeping runs on a CPU copy of the mask, so nothing data-dependent
runs on the accelerator.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit import metrics
from attnkit.importance.blank_out import blank_out


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _probs(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    out = model(input_ids=ids, attention_mask=mask)
    logits = out.logits if hasattr(out, "logits") else out
    return torch.softmax(logits, dim=-1)  # (n, C)


@torch.no_grad()
def leave_one_out(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    mode: str = "delete",
    unk_id: int = 1,
    chunk_size: int = 1024,
) -> Tensor:
    """J&W's leave-one-out `(B, T)` float64: TVD of the class distribution when token t is
    deleted (`mode="delete"`) or replaced by `unk_id` (`mode="unk"`); 0 at padding.

    `model(input_ids=, attention_mask=)` returns logits `(B, C)` (or an output with `.logits`);
    masks are right-padded. A one-token document has nothing left after deletion: its "delete"
    score is 0. Runs in eval mode, restoring the model's mode afterwards.
    """
    if mode not in ("delete", "unk"):
        raise ValueError(f"mode must be 'delete' (J&W) or 'unk' (blank-out), got {mode!r}")
    if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids and attention_mask must both be (batch, tokens), got "
            f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    home, device = input_ids.device, model_device(model)
    if mode == "unk":
        scores = blank_out(
            model,
            input_ids.to(device),
            attention_mask.to(device),
            None,
            unk_id,
            skip_first=False,
            absolute=True,
        )
        return scores.double().to(home)
    mask_cpu = attention_mask.detach().bool().cpu()  # (B, T): index bookkeeping on the host
    ids, mask = input_ids.to(device), attention_mask.bool().to(device)
    B, T = ids.shape
    was_training = model.training
    model.eval()
    try:
        base = _probs(model, ids, mask)  # (B, C)
        lengths = mask_cpu.sum(1)  # (B,)
        rows, cols = (mask_cpu & (lengths[:, None] > 1)).nonzero(as_tuple=True)  # (N,), (N,)
        scores = torch.zeros(B, T, dtype=torch.float64)
        j = torch.arange(T - 1)[None, :]  # (1, T-1)
        for start in range(0, len(rows), chunk_size):
            r, c = rows[start : start + chunk_size], cols[start : start + chunk_size]
            # position j of the copy reads j + (j >= c) of the original: token c is skipped.
            source = (j + (j >= c[:, None]).long()).to(device)  # (n, T-1)
            r_dev = r.to(device)
            shortened = ids[r_dev].gather(1, source), mask[r_dev].gather(1, source)
            probs = _probs(model, *shortened)  # (n, C)
            scores[r, c] = metrics.tvd(probs, base[r_dev]).double().cpu()
    finally:
        model.train(was_training)
    return scores.to(home)
