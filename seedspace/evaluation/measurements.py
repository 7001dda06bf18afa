"""What an experiment measured, stored beside its run so that its tables can be made again without generating.

An experiment is ``tabulate(runner, measure(runner))``: ``measure`` plans the seeds, generates and scores them and
returns the measurements, a tree of dicts and lists whose leaves are JSON values, numpy arrays or tensors (per-item
judge scores, judge features, example images); ``tabulate`` turns them into the report's section (statistics,
tables, notes) without touching the model. :func:`save_measured` writes the tree to one safetensors file (the
arrays as tensors, the rest as JSON in its metadata), :func:`load_measured` reads the same tree back (arrays as
numpy, images as tensors, as they were measured), so ``seedspace evaluate --retabulate RUN`` gives the tables an
uninterrupted run gave.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..outputs.files import atomic_path

_ARRAY = "__array__"  # a leaf stored as a tensor: {"__array__": key, "numpy": bool}


def save_measured(path: str | Path, measured: dict) -> Path:
    """Write the measurements (see the module docstring) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}

    def skeleton(value):
        if isinstance(value, (np.ndarray, torch.Tensor)):
            key = f"t{len(tensors)}"
            is_numpy = isinstance(value, np.ndarray)
            tensor = torch.from_numpy(np.ascontiguousarray(value)) if is_numpy else value.detach().cpu()
            tensors[key] = tensor.contiguous()
            return {_ARRAY: key, "numpy": is_numpy}
        if isinstance(value, dict):
            return {str(k): skeleton(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [skeleton(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    tree = json.dumps(skeleton(measured))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "seedspace-measurements", "tree": tree})
    return Path(path)


def load_measured(path: str | Path) -> dict:
    """The measurements :func:`save_measured` wrote (ValueError for a file that is not such a record)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:  # missing, truncated or not a safetensors file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not readable measurements ({reason})") from None
    if meta.get("format") != "seedspace-measurements" or "tree" not in meta:
        raise ValueError(f"{path}: not a seedspace measurements file")

    def filled(value):
        if isinstance(value, dict):
            if _ARRAY in value:
                t = tensors[value[_ARRAY]]
                return t.numpy() if value["numpy"] else t
            return {k: filled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v) for v in value]
        return value

    return filled(json.loads(meta["tree"]))
