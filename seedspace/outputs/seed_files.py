"""Seed files: safetensors holding ``seeds`` (N, *seed_shape) and a canonical-JSON ``seedspace`` metadata entry."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .files import atomic_path, canonical_json


def save_seeds(path: str | Path, tensors: dict, metadata: dict | None = None) -> Path:
    """Seeds as safetensors (``{"seeds": (N, *seed_shape), ...}``), written atomically; ``metadata`` is stored as
    canonical JSON under the metadata key ``seedspace`` (read it back with :func:`seed_file_metadata`)."""
    # one metadata key: safetensors writes its metadata map in hash order, so several keys would make the
    # bytes of identical runs differ
    meta = {"seedspace": canonical_json(metadata or {})}
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_seed_file(path: str | Path) -> torch.Tensor:
    """A seed file: the tensor under key "seeds", or the only tensor in the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seed file {path} does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"cannot read seed file {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if "seeds" in tensors:
        return tensors["seeds"]
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    raise ValueError(f"seed file {path} holds several tensors ({', '.join(sorted(tensors))}) and none named 'seeds'")


def seed_file_metadata(path: str | Path) -> dict:
    """The metadata written by :func:`save_seeds` (an empty dict for other seed files)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["seedspace"]) if "seedspace" in meta else meta
