"""Where a model's calibrated norm prior lives: ``prior.json`` inside a testbed-format folder (it travels with the
model), and for diffusers models, whose folders are often a read-only Hugging Face cache, a per-model cache keyed
by the model's identity and revision:

    $SEEDSPACE_CACHE (default ~/.cache/seedspace) / priors / <model name> / <revision>.prior.json

The revision of a hub snapshot is its commit (the snapshot folder's name); of any other folder, a digest of its
configs and of the size, head and tail of each weights file (a fine-tune with the same configs gets its own
prior, and nothing reads whole multi-gigabyte files).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PRIOR_FILE = "prior.json"  # a testbed-format folder's calibrated norm prior
CACHE_ENV = "SEEDSPACE_CACHE"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt", ".gguf")
_PROBE_BYTES = 1 << 20


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seedspace").expanduser()


def folder_revision(folder: str | Path) -> str:
    """A hub snapshot's commit (``.../snapshots/<commit>``), else a 16-hex digest of the folder's configs and its
    weights files' sizes, first and last MiB."""
    folder = Path(folder).resolve()
    if folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name):
        return folder.name
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".json":
            digest.update(rel.encode() + b"\0" + path.read_bytes())
        elif path.suffix in WEIGHT_SUFFIXES:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(_PROBE_BYTES)
                f.seek(max(0, size - _PROBE_BYTES))
                tail = f.read(_PROBE_BYTES)
            digest.update(rel.encode() + b"\0" + str(size).encode() + head + tail)
    return digest.hexdigest()[:16]


def cached_prior_path(name: str, folder: str | Path) -> Path:
    """The per-model cache file of the model loaded as ``name`` from ``folder``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", str(name).strip("/").replace("/", "--")) or "model"
    return cache_root() / "priors" / safe / f"{folder_revision(folder)}.prior.json"
