"""`attnkit.explain(texts, ...)`: every method's token scores for each text, in one call.

Attention-based methods read the first token's row (the [CLS] position): `raw` is the last
layer's head-mean attention, `rollout` and `flow` Abnar & Zuidema's (2020) propagations (their
defaults), each also given per layer (the layer x token maps); so do the context-mixing methods
of `attnkit.relevance` (attention_norm and value_zeroing per layer, globenc and alti rolled
out), while gae and grad_rollout need a classifier's logit. Gradient methods explain the
stated target (see `attnkit.explain.models`) with the shared defaults of
`attnkit.importance.defaults`: signed, summed over embedding dimensions, special tokens
from the tokenizer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from attnkit.explain.models import Loaded, load
from attnkit.explain.names import (
    IMPORTANCE_METHODS,
    MIXING_METHODS,
    RELEVANCE_METHODS,
    ExplainError,
    check_methods,
)

FLOW_LAYERS_UP_TO = 32  # real tokens up to which flow is also computed for every layer
GRAPH_UP_TO = 12  # real tokens up to which the page draws the flow graph
IG_STEPS = 20  # Gauss-Legendre points for integrated gradients (captum's default is 50)


@dataclass
class TextExplanation:
    """One text: its tokens (real ones), each method's scores `(T,)` and per-layer maps `(L, T)`."""

    text: str
    tokens: list[str]
    scores: dict[str, list[float]]
    layers: dict[str, list[list[float]]] = field(default_factory=dict)
    target: str = ""
    truncated: bool = False


@dataclass
class Explanation:
    """What `explain` returns: the model, the target in words, and every text's scores."""

    model: str
    output: str
    methods: list[str]
    texts: list[TextExplanation]
    notes: list[str] = field(default_factory=list)
    attention: Any = field(default=None, repr=False)  # the captured Attentions (not saved)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("attention")
        return data

    def save(self, path: str) -> list[str]:
        """Write `.html` (with `.json` and `.csv` beside it), `.png` or `.json`."""
        from attnkit.explain.page import save

        return save(self, path)


def _attention_rows(loaded: Loaded, batch: dict, methods: Sequence[str]):
    """raw / rollout / flow: `(B, T)` scores and `(B, L, T)` per-layer rows, and the capture."""
    from attnkit import capture, flow, rollout

    attn = capture(loaded.encoder, batch, tokenizer=loaded.tokenizer)
    scores, layers = {}, {}
    if "raw" in methods:
        rows = attn.weights.mean(2)[:, :, 0]  # (L, B, T): head mean, first token's row
        scores["raw"], layers["raw"] = rows[-1], rows.transpose(0, 1)
    if "rollout" in methods:
        rows = rollout(attn)[:, :, 0]  # (L, B, T)
        scores["rollout"], layers["rollout"] = rows[-1], rows.transpose(0, 1)
    if "flow" in methods:
        scores["flow"] = flow(attn, layer=-1, rows=[0])[:, 0]  # (B, T)
        if int(attn.mask.sum(1).max()) <= FLOW_LAYERS_UP_TO:
            per_layer = [
                flow(attn, layer=layer, rows=[0])[:, 0] for layer in range(attn.num_layers)
            ]
            layers["flow"] = torch.stack(per_layer, dim=1)  # (B, L, T)
    return scores, layers, attn


def _relevance(loaded: Loaded, batch: dict, methods: Sequence[str], target: Tensor):
    """attnkit.relevance methods: `(B, T)` first-token rows and `(B, L, T)` per-layer rows."""
    from attnkit import relevance

    scores, layers = {}, {}
    for name in methods:
        if name in MIXING_METHODS:
            maps = getattr(relevance, name)(loaded.encoder, batch)  # (L, B, T, T)
            rows = maps[:, :, 0]  # (L, B, T)
            scores[name], layers[name] = rows[-1], rows.transpose(0, 1)
        elif name in RELEVANCE_METHODS:
            if loaded.labels is None:
                raise ExplainError(
                    f"{name} weighs attention by the gradient of a classifier's logit; "
                    f"{loaded.name} has no classification head. Use a classifier folder, or the "
                    "context-mixing methods (attention_norm, globenc, alti, value_zeroing)."
                )
            scores[name] = getattr(relevance, name)(loaded.encoder, batch, target)[:, 0]  # (B, T)
    return scores, layers


def _importance(name: str) -> Callable[..., Tensor]:
    from attnkit import importance

    common = {"absolute": False}
    table = {
        "gradient": lambda m, b, t, tok, out: importance.input_gradient(
            m, b, t, output=out, **common
        ),
        "gradient_x_input": lambda m, b, t, tok, out: importance.gradient_x_input(
            m, b, t, output=out, **common
        ),
        "integrated_gradients": lambda m, b, t, tok, out: importance.integrated_gradients(
            m, b, t, tokenizer=tok, output=out, n_steps=IG_STEPS
        ),
        "blank_out": lambda m, b, t, tok, out: importance.blank_out(
            m, b, t, tokenizer=tok, output=out
        ),
        "lime": lambda m, b, t, tok, out: importance.lime(
            m, b, t, tokenizer=tok, output=out, n_samples=1000
        ),
    }
    return table[name]


def _target(loaded: Loaded, target: int | str | None) -> int | None:
    """The class id of `--target` (an id or a label name), checked against the head."""
    if target is None or loaded.labels is None:
        if target is not None:
            raise ExplainError(
                f"{loaded.name} has no classification head, so there is no class to pick: it is "
                "explained through its similarity to --compare TEXT."
            )
        return None
    names = {label.lower(): index for index, label in loaded.labels.items()}
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if target.lower() not in names:
            raise ExplainError(f"unknown class {target!r}; the model's classes: {loaded.labels}.")
        return names[target.lower()]
    index = int(target)
    if not 0 <= index < len(loaded.labels):
        raise ExplainError(
            f"target {index} is out of range: the model has {len(loaded.labels)} classes "
            f"{loaded.labels}; pass one of 0..{len(loaded.labels) - 1} or a class name."
        )
    return index


def _encode(loaded: Loaded, texts: Sequence[str], notes: list[str]) -> tuple[dict, list[bool]]:
    tokenizer = loaded.tokenizer
    limit = min(
        int(getattr(tokenizer, "model_max_length", 512) or 512),
        int(getattr(loaded.encoder.config, "max_position_embeddings", 512) or 512),
    )
    lengths = [len(tokenizer(text)["input_ids"]) for text in texts]
    truncated = [length > limit for length in lengths]
    for text, length, cut in zip(texts, lengths, truncated, strict=True):
        if cut:
            message = (
                f"text {text[:40]!r}... has {length} tokens, more than the model's maximum of "
                f"{limit}: it was truncated to the first {limit} tokens."
            )
            warnings.warn(message, stacklevel=3)
            notes.append(message)
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt"
    )
    return dict(batch), truncated


def explain(
    texts: str | Sequence[str],
    model: Any = "minilm",
    *,
    methods: str | Sequence[str] | None = None,
    target: int | str | None = None,
    compare: str | None = None,
    tokenizer: Any = None,
) -> Explanation:
    """Token scores of every method for each text.

    Args:
        texts: one text or several (explained in one padded batch).
        model: "minilm" (the shipped all-MiniLM-L6-v2), a local Hugging Face folder, or a
            model object (then pass `tokenizer=`).
        methods: names from `METHODS` (list or "a,b,c"); default `DEFAULT_METHODS`.
        target: class id or name for a classifier (default: the predicted class).
        compare: for a model without a classification head, the text whose sentence embedding
            the similarity is taken to (default the empty text).

    Returns:
        `Explanation`; `.save("page.html" | "page.png" | "page.json")` writes it.
    """
    methods = check_methods(methods)
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or any(not isinstance(text, str) or not text.strip() for text in texts):
        raise ExplainError('pass at least one non-empty text (--text "..." or --file).')
    loaded = model if isinstance(model, Loaded) else load(model, tokenizer, compare)
    target_id = _target(loaded, target)
    notes: list[str] = []
    batch, truncated = _encode(loaded, texts, notes)
    mask = batch["attention_mask"].bool()  # (B, T)
    torch_target = target_id if loaded.labels is not None else 0
    with torch.no_grad():
        outputs = loaded.explained(**batch)
    logits = getattr(outputs, "logits", outputs)  # (B, C)
    chosen = logits.argmax(-1) if torch_target is None else torch.full((len(texts),), torch_target)
    scores, layers, attn = _attention_rows(loaded, batch, methods)
    mixing, mixing_layers = _relevance(loaded, batch, methods, chosen)
    scores.update(mixing)
    layers.update(mixing_layers)
    for name in methods:
        if name in IMPORTANCE_METHODS:
            scores[name] = _importance(name)(
                loaded.explained, batch, chosen, loaded.tokenizer, loaded.output
            )
    results = []
    for b, text in enumerate(texts):
        keep = mask[b]
        tokens = loaded.tokenizer.convert_ids_to_tokens(batch["input_ids"][b][keep].tolist())
        statement = loaded.target_statement(int(chosen[b]) if loaded.labels is not None else None)
        if loaded.labels is not None:
            probability = float(torch.softmax(logits[b], -1)[chosen[b]])
            statement += f" = {probability:.3f}" + (" (predicted)" if target_id is None else "")
        else:
            statement += f" = {float(logits[b, 0]):.3f}"
        results.append(
            TextExplanation(
                text=text,
                tokens=tokens,
                scores={name: [float(v) for v in scores[name][b][keep]] for name in methods},
                layers={
                    name: [[float(v) for v in row[keep]] for row in rows[b]]
                    for name, rows in layers.items()
                },
                target=statement,
                truncated=truncated[b],
            )
        )
    return Explanation(loaded.name, loaded.output, methods, results, notes, attn)
