"""Provenance records: how a model, a run and a frame are described in run.json and in each PNG's ``parameters``
text, so that any frame can be made again from its file alone."""

from __future__ import annotations

import re
from pathlib import Path

from .._version import __version__
from ..backends.sampling import scheduler_label
from ..backends.testbed import EMBEDDED_MODELS
from ..conditions import condition_label
from ..outputs import file_sha256, format_parameters

LARGE_WEIGHTS = 512 * 2 ** 20  # above this, hash the config instead of gigabytes of weights


def model_reference(name) -> str:
    """How a model is recorded (and loaded again, e.g. by workers): an embedded model's name ('testbed',
    'testbed-flow'), an absolute folder, or a hub id."""
    if name in (None, ""):
        return "testbed"
    if name in EMBEDDED_MODELS:
        return name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else str(name)


def model_revision(model) -> str | None:
    """A revision for run records: the hub snapshot commit, or a content hash of the UNet weights file."""
    folder = getattr(model, "folder", None)
    candidates = []
    if folder is not None:
        candidates = sorted(Path(folder).glob("unet/*.safetensors"))
    pipe = getattr(model, "pipe", None)
    if pipe is not None:
        source = str(getattr(pipe.config, "_name_or_path", "") or "")
        m = re.search(r"snapshots[/\\]([0-9a-f]{7,40})", source)
        if m:
            return m.group(1)
        if Path(source).is_dir():
            candidates = sorted(Path(source).glob("unet/*.safetensors"))
    if not candidates:
        return None
    path = candidates[0]
    if path.stat().st_size > LARGE_WEIGHTS:
        path = path.parent / "config.json"
    return "sha256:" + file_sha256(path)[:16]


def model_record(model, ref: str) -> dict:
    """The model as run.json records it: its reference (``testbed``, a folder or hub id), name, revision, seed
    shape and defaults."""
    return {"id": ref, "name": model.name, "revision": model_revision(model), "seed_shape": list(model.seed_shape),
            "default_steps": model.default_steps, "default_guidance": model.default_guidance}


def frame_record(command: str, params: dict, frame: dict) -> dict:
    """The JSON stored in each PNG: enough to regenerate the frame (``seedspace regenerate``)."""
    return {"seedspace": __version__, "command": command, "params": params, "frame": frame}


def frame_text(command: str, params: dict, frame: dict, size: tuple[int, int]) -> str:
    """The PNG ``parameters`` text of one frame: a web-UI style summary plus the seedspace JSON record."""
    cond = params["condition"]
    endpoints = frame.get("endpoints") or []
    ints = [e["int"] for e in endpoints if isinstance(e, dict) and "int" in e]
    summary = {
        "_condition": condition_label(cond),
        "_negative": cond.get("negative_prompt") or None,
        "Steps": params["steps"],
        "Sampler": scheduler_label(params.get("scheduler")),
        "CFG scale": params["guidance"],
        "Seed": ints[0] if ints else None,
        "Variation seed": ints[1] if len(ints) > 1 else None,
        "Variation seed strength": round(frame["t"], 6) if len(ints) > 1 and "t" in frame else None,
        "Seed method": frame.get("method"),
        "t": round(frame["t"], 6) if "t" in frame else None,
        "Frame": frame.get("index"),
        "Size": f"{size[1]}x{size[0]}",
        "Model": params["model"]["name"],
        "Model hash": params["model"].get("revision"),
    }
    return format_parameters(frame_record(command, params, frame), summary)
