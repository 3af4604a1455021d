"""Checkpoint cache for :func:`attnkit.train.fit`: content fingerprints, keys and entries.

An entry is ``<dir>/<key>.safetensors`` (the weights) plus ``<key>.json`` (metadata with a
sha256 of the weights file). Both are written atomically, weights first, so the metadata
file is what marks an entry complete. Reading verifies everything before a caller sees
the tensors; anything unusable is reported with a :class:`CacheWarning` and treated as
a miss, never used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import safetensors
import safetensors.torch
import torch

# Bump when the entry layout or the key recipe changes, so old entries simply miss.
CACHE_FORMAT_VERSION = 1

TensorSpecs = dict[str, list[Any]]
Parsed = TypeVar("Parsed")


class CacheWarning(UserWarning):
    """A cache entry was unusable (corrupt, incomplete or mismatched) or could not be written."""


def default_cache_dir() -> Path:
    """``$ATTNKIT_CACHE_DIR`` if set, else ``~/.cache/attnkit``."""
    configured = os.environ.get("ATTNKIT_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "attnkit"


# --------------------------------------------------------------------------- fingerprints


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def key_for(key_inputs: Any) -> str:
    """The cache key: sha256 of the canonical JSON of everything the result depends on."""
    return hashlib.sha256(canonical_json(key_inputs).encode()).hexdigest()


def _put(digest: Any, tag: bytes, payload: bytes) -> None:
    digest.update(tag + len(payload).to_bytes(8, "little") + payload)


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    # Reinterpreting as bytes works for every dtype, bfloat16 included (NumPy lacks it).
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def _hash_value(digest: Any, value: Any) -> None:
    """Feed a type-tagged, length-prefixed encoding of ``value`` into ``digest``.

    Tags and lengths keep distinct structures from colliding (``[1, 2]`` vs ``"12"``);
    floats go in as ``float.hex`` so equal values hash equally and unequal ones never do.
    """
    if value is None:
        _put(digest, b"N", b"")
    elif isinstance(value, bool):
        _put(digest, b"B", b"1" if value else b"0")
    elif isinstance(value, int | np.integer):
        _put(digest, b"I", str(int(value)).encode())
    elif isinstance(value, float | np.floating):
        _put(digest, b"F", float(value).hex().encode())
    elif isinstance(value, str):
        _put(digest, b"S", value.encode("utf-8"))
    elif isinstance(value, bytes):
        _put(digest, b"Y", value)
    elif isinstance(value, torch.Tensor):
        _put(digest, b"T", f"{value.dtype}{tuple(value.shape)}".encode())
        _put(digest, b"t", _tensor_bytes(value))
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("cannot fingerprint NumPy object arrays; convert them to lists")
        _put(digest, b"A", f"{value.dtype.str}{value.shape}".encode())
        _put(digest, b"a", np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        _put(digest, b"M", str(len(value)).encode())
        for name in sorted(value, key=repr):
            _hash_value(digest, name)
            _hash_value(digest, value[name])
    elif isinstance(value, list | tuple):
        _put(digest, b"L" if isinstance(value, list) else b"U", str(len(value)).encode())
        for item in value:
            _hash_value(digest, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _put(digest, b"D", type(value).__qualname__.encode())
        _hash_value(digest, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    else:
        raise TypeError(
            f"cannot fingerprint an example of type {type(value).__name__} for the cache key; "
            "use tensors, arrays, numbers, strings, lists, dicts or dataclasses, or pass cache=False"
        )


def data_fingerprint(data: Sequence[Any] | None) -> str | None:
    """sha256 over the examples' content, streamed one example at a time (no pickling)."""
    if data is None:
        return None
    digest = hashlib.sha256()
    digest.update(len(data).to_bytes(8, "little"))
    for index in range(len(data)):
        _hash_value(digest, data[index])
    return digest.hexdigest()


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state_dict's names, dtypes, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        _hash_value(digest, name)
        _hash_value(digest, tensor)
    return digest.hexdigest()


def tensor_specs(state: Mapping[str, torch.Tensor]) -> TensorSpecs:
    """``{name: [shape, dtype]}``, the part of a state_dict an entry must agree with."""
    return {name: [list(tensor.shape), str(tensor.dtype)] for name, tensor in state.items()}


def callable_name(function: Callable[..., Any] | None) -> str | None:
    """``module.qualname`` of a function or callable object (its class), for the key."""
    if function is None:
        return None
    module = getattr(function, "__module__", None) or type(function).__module__
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{name}"


# --------------------------------------------------------------------------- entries


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same directory and ``os.replace``: all or nothing."""
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_entry(
    directory: Path, key: str, state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Store ``state`` and ``metadata`` (JSON-serialisable) as entry ``key``; returns the weights path."""
    # clone() breaks storage sharing (tied weights), which safetensors refuses to save.
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in state.items()}
    weights = safetensors.torch.save(tensors)
    full_metadata = {
        **metadata,
        "format": CACHE_FORMAT_VERSION,
        "key": key,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "tensors": tensor_specs(tensors),
    }
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / f"{key}.safetensors"
    # Weights first, metadata last: the metadata file is what makes an entry complete.
    _atomic_write(weights_path, weights)
    _atomic_write(directory / f"{key}.json", json.dumps(full_metadata, indent=1).encode())
    return weights_path


def load_entry(
    directory: Path,
    key: str,
    expected: TensorSpecs,
    parse_metadata: Callable[[dict[str, Any]], Parsed],
) -> tuple[dict[str, torch.Tensor], Parsed] | None:
    """Verified ``(tensors, parse_metadata(metadata))`` of entry ``key``, or ``None``.

    ``None`` without a warning when there is no entry; with a :class:`CacheWarning`
    saying why when there is one that cannot be trusted. ``parse_metadata`` errors
    (KeyError/TypeError/ValueError) also count as an unusable entry.
    """
    weights_path, metadata_path = directory / f"{key}.safetensors", directory / f"{key}.json"
    if not weights_path.exists() and not metadata_path.exists():
        return None
    try:
        return _verified_entry(weights_path, metadata_path, key, expected, parse_metadata)
    except (OSError, ValueError, KeyError, TypeError, safetensors.SafetensorError) as reason:
        warnings.warn(
            f"ignoring cache entry {key} in {directory} and retraining: {reason}",
            CacheWarning,
            stacklevel=3,
        )
        return None


def _verified_entry(
    weights_path: Path,
    metadata_path: Path,
    key: str,
    expected: TensorSpecs,
    parse_metadata: Callable[[dict[str, Any]], Parsed],
) -> tuple[dict[str, torch.Tensor], Parsed]:
    if not metadata_path.exists():
        raise ValueError("metadata file missing (incomplete entry)")
    if not weights_path.exists():
        raise ValueError("weights file missing (incomplete entry)")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != CACHE_FORMAT_VERSION:
        raise ValueError("metadata has an unknown format")
    if metadata.get("key") != key:
        raise ValueError("metadata belongs to another key")
    weights = weights_path.read_bytes()
    if hashlib.sha256(weights).hexdigest() != metadata.get("weights_sha256"):
        raise ValueError("weights checksum mismatch (truncated or corrupted file)")
    tensors = safetensors.torch.load(weights)
    found = tensor_specs(tensors)
    if found != expected:
        differing = [
            f"{name}: entry {found.get(name)} vs model {expected.get(name)}"
            for name in sorted(expected.keys() | found.keys())
            if expected.get(name) != found.get(name)
        ]
        raise ValueError(f"tensor names/shapes/dtypes differ from the model's: {differing[:3]}")
    return tensors, parse_metadata(metadata)
