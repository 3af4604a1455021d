"""Word-level vocabulary and batch encoding for the small reference models.

Ids 0, 1 and 2 are reserved for PAD, UNK and CLS in every `Vocab`, so a model's padding id and
the blank-out replacement token (UNK, Abnar & Zuidema 2020) never depend on the training data.
Ordinary tokens follow, most frequent first, ties broken alphabetically: the same training
data always gives the same ids.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
PAD_ID, UNK_ID, CLS_ID = 0, 1, 2
SPECIALS = (PAD, UNK, CLS)


class Vocab:
    """Token <-> id map with PAD=0, UNK=1, CLS=2; unknown tokens map to UNK.

    Build it from training data with `Vocab.build(token_lists, min_count=..., max_size=...)`,
    or from an explicit id-ordered token list with `Vocab(tokens)` (specials are prepended
    when missing).
    """

    pad_id, unk_id, cls_id = PAD_ID, UNK_ID, CLS_ID

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        ordinary = [token for token in tokens if token not in SPECIALS]
        self.itos: list[str] = [*SPECIALS, *ordinary]
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            duplicates = sorted({t for t in ordinary if ordinary.count(t) > 1})
            raise ValueError(f"vocabulary tokens must be unique; repeated: {duplicates[:10]}")

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        *,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """Count tokens over `token_lists` and keep the frequent ones.

        `min_count`: drop tokens seen fewer times. `max_size`: keep at most this many ordinary
        tokens (the 3 specials come on top), the most frequent first.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be None or >= 0, got {max_size}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            _check_token_list(tokens, len(counts))
            counts.update(tokens)
        # Sort by (-count, token) so equal counts get a stable, data-order-independent id.
        kept = sorted(
            (token for token, n in counts.items() if n >= min_count and token not in SPECIALS),
            key=lambda token: (-counts[token], token),
        )
        return cls(kept[:max_size] if max_size is not None else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def lookup(self, token: str) -> int:
        """Id of `token`, UNK_ID when it is not in the vocabulary."""
        return self.stoi.get(token, UNK_ID)

    def decode(self, ids: Sequence[int] | Tensor, *, skip_pad: bool = True) -> list[str]:
        """Token strings for one sequence of ids (PAD dropped unless `skip_pad=False`)."""
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return [self.itos[i] for i in ids if not (skip_pad and i == PAD_ID)]

    def to_list(self) -> list[str]:
        """All tokens in id order (JSON-friendly; `Vocab(tokens)` rebuilds it)."""
        return list(self.itos)

    def encode(
        self,
        batch: Sequence[Sequence[str]],
        max_len: int | None = None,
        *,
        add_cls: bool = True,
        truncate: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Token lists -> `(ids (B, T), mask (B, T))`, right-padded to the longest sequence.

        `add_cls` puts CLS at position 0 (it counts towards `max_len`). A sequence longer than
        `max_len` is an error unless `truncate=True`, which keeps its first tokens and warns.
        `mask` is a long tensor, 1 for real tokens (CLS included) and 0 for padding.
        """
        if isinstance(batch, str) or len(batch) == 0:
            raise ValueError(
                "encode needs a non-empty batch of token lists, e.g. [['the', 'key', 'is']]; "
                "for one sentence wrap it in a list."
            )
        if max_len is not None and max_len < 1 + add_cls:
            raise ValueError(f"max_len={max_len} leaves no room for a token (add_cls={add_cls})")
        sequences: list[list[int]] = []
        too_long: list[tuple[int, int]] = []
        for index, tokens in enumerate(batch):
            _check_token_list(tokens, index)
            ids = [CLS_ID] * add_cls + [self.lookup(token) for token in tokens]
            if max_len is not None and len(ids) > max_len:
                too_long.append((index, len(ids)))
                ids = ids[:max_len]
            sequences.append(ids)
        if too_long:
            longest = max(length for _, length in too_long)
            where = ", ".join(f"#{i} ({n})" for i, n in too_long[:5])
            message = (
                f"{len(too_long)} sequence(s) exceed max_len={max_len} tokens"
                f"{' (CLS included)' if add_cls else ''}: {where}"
                f"{' ...' if len(too_long) > 5 else ''}."
            )
            if not truncate:
                raise ValueError(
                    f"{message} Raise max_len to at least {longest} (and the model's max_len "
                    "with it), filter long examples out, or pass truncate=True to keep the "
                    "first tokens."
                )
            warnings.warn(f"{message} Truncated to the first {max_len}.", stacklevel=2)
        length = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), length), PAD_ID, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)  # (B, T)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        return input_ids, mask


def _check_token_list(tokens: Any, index: int) -> None:
    if isinstance(tokens, str):
        raise ValueError(
            f"example {index} is a string ({tokens[:40]!r}); pass a list of tokens, "
            "e.g. sentence.split()."
        )
    if len(tokens) == 0:
        raise ValueError(
            f"example {index} is an empty token list; drop empty sentences before encoding."
        )


class ClassificationCollate:
    """`collate` for `attnkit.train.fit`: examples -> `{"input_ids", "attention_mask", "labels"}`.

    An example is a `(tokens, label)` pair, a mapping with `"tokens"` and `"label"`, or an
    object with `.prefix` (or `.tokens`) and `.label` (e.g. `attnkit.data.AgreementExample`).
    The dict batch suits `attnkit.train.cross_entropy_loss` and `accuracy`, which call
    `model(input_ids=..., attention_mask=...)`.
    """

    def __init__(
        self,
        vocab: Vocab,
        max_len: int | None = None,
        *,
        add_cls: bool = True,
        truncate: bool = False,
    ) -> None:
        self.vocab, self.max_len, self.add_cls, self.truncate = vocab, max_len, add_cls, truncate

    def __call__(self, examples: Sequence[Any]) -> dict[str, Tensor]:
        token_lists, labels = zip(*(tokens_and_label(example) for example in examples), strict=True)
        input_ids, mask = self.vocab.encode(
            token_lists, self.max_len, add_cls=self.add_cls, truncate=self.truncate
        )
        return {
            "input_ids": input_ids,  # (B, T)
            "attention_mask": mask,  # (B, T)
            "labels": torch.tensor(labels, dtype=torch.long),  # (B,)
        }

    def __repr__(self) -> str:
        return (
            f"ClassificationCollate({self.vocab!r}, max_len={self.max_len}, add_cls={self.add_cls})"
        )


def tokens_and_label(example: Any) -> tuple[Sequence[str], int]:
    """`(tokens, label)` of one example in any of the forms `ClassificationCollate` accepts."""
    if isinstance(example, Mapping):
        return example["tokens"], int(example["label"])
    if isinstance(example, tuple | list) and len(example) == 2:
        return example[0], int(example[1])
    for field in ("prefix", "tokens"):
        if hasattr(example, field) and hasattr(example, "label"):
            return getattr(example, field), int(example.label)
    raise TypeError(
        f"cannot read tokens and label from a {type(example).__name__}; pass (tokens, label) "
        "pairs, e.g. labelled_examples(dataset)."
    )


def labelled_examples(dataset: Any) -> list[tuple[tuple[str, ...], int]]:
    """`(tokens, label)` pairs from a dataset with `.texts` and `.labels` (a `TextDataset`).

    The pairs are hashable by the trainer's cache (tuples of str and int) and indexable.
    """
    return [
        (tuple(tokens), int(label))
        for tokens, label in zip(dataset.texts, dataset.labels, strict=True)
    ]
