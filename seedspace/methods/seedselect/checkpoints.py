"""SeedSelect's run folder: every step's seeds, losses and AdamW moments (``step_XXXX.safetensors``), its images
(``step_XXXX.png``), ``history.json`` and ``timings.json``, all written atomically; reading them back to resume a
run exactly. Wall-clock times go to ``timings.json`` only, so that every other file of a resumed run has the bytes
of an uninterrupted one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ...outputs import atomic_path, canonical_json, read_json_object, save_png, to_uint8, write_text
from ...settings import check_unchanged

FORMAT = "seedspace-seedselect/1"
TIMING_KEYS = ("seconds", "elapsed")  # the wall-clock entries of a step record, kept out of history.json
CONFIG_KEYS_MUST_MATCH = ("lr", "lr_decay", "lr_decay_after", "weight_decay", "semantic_weight", "appearance_weight",
                          "step_weights", "sampler_steps", "guidance", "conditions", "num_seeds")


def save_step(out_dir: Path, step: int, seeds: torch.Tensor, opt_state: dict, record: dict,
              images: torch.Tensor | None) -> None:
    """Write step ``step``: seeds, per-seed loss terms and AdamW moments (safetensors), and its images (PNG)."""
    tensors = {
        "seeds": seeds.detach().float().cpu().contiguous(),  # "seeds": usable as a seed file by the CLI
        "loss": torch.tensor(record["losses"], dtype=torch.float32),
        "semantic": torch.tensor(record["semantics"], dtype=torch.float32),
        "appearance": torch.tensor(record["appearances"], dtype=torch.float32),
        "step": torch.tensor([step], dtype=torch.int64),
        "adamw_step": torch.tensor([float(opt_state.get("step", 0.0))], dtype=torch.float32),
    }
    for key in ("exp_avg", "exp_avg_sq"):  # separate copies: safetensors refuses tensors sharing memory
        value = opt_state.get(key)
        tensors[f"adamw_{key}"] = (torch.zeros_like(tensors["seeds"]) if value is None
                                   else value.detach().float().cpu().clone().contiguous())
    # one metadata key of canonical JSON: safetensors writes several keys in hash order (bytes would vary)
    with atomic_path(out_dir / f"step_{step:04d}.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"seedspace": canonical_json({"format": FORMAT, "step": step})})
    if images is not None:  # one row of images
        save_png(out_dir / f"step_{step:04d}.png", np.concatenate(list(to_uint8(images)), axis=1))


def write_history(out_dir: Path, config: dict, init_seconds: float, history: list[dict]) -> None:
    """``history.json``: the run's config and one record per step so far, without wall-clock times; and
    ``timings.json``: the initialisation time and each step's ``seconds`` and ``elapsed``."""
    records = [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]
    write_text(out_dir / "history.json", json.dumps({"config": config, "history": records}, indent=1, sort_keys=True))
    timings = [{"step": h["step"], **{k: h[k] for k in TIMING_KEYS if k in h}} for h in history]
    write_text(out_dir / "timings.json", json.dumps({"init_seconds": init_seconds, "steps": timings}, indent=1))


def _last_saved_step(out_dir: Path) -> int | None:
    steps = []
    for p in out_dir.glob("step_*.safetensors"):
        try:
            steps.append(int(p.stem.split("_")[1]))
        except (IndexError, ValueError):
            continue
    return max(steps) if steps else None


def load_step(out_dir: str | Path, step: int | None = None) -> dict:
    """A saved step's tensors (seeds, loss, semantic, appearance, AdamW moments), the last one by default."""
    out_dir = Path(out_dir)
    step = _last_saved_step(out_dir) if step is None else step
    if step is None:
        raise ValueError(f"no saved SeedSelect steps in {out_dir}")
    return load_file(str(out_dir / f"step_{step:04d}.safetensors"))


def open_run_dir(out: Path, config: dict, resume: bool, overwrite: bool) -> tuple[dict | None, list[dict], float]:
    """Prepare ``out`` for a run: (the last saved step's tensors plus the saved config, or None; the history
    before it; the saved initialisation time). Refuses to resume a run whose settings or references differ,
    and to start afresh over a saved run unless ``overwrite``."""
    out.mkdir(parents=True, exist_ok=True)
    last = _last_saved_step(out)
    if last is None:
        return None, [], 0.0
    if not resume:
        if not overwrite:
            raise ValueError(f"{out} already holds a SeedSelect run (up to step {last}); pass resume=True to continue "
                             "it or overwrite=True to start afresh")
        for p in list(out.glob("step_*.safetensors")) + list(out.glob("step_*.png")):
            p.unlink()
        return None, [], 0.0
    if not (out / "history.json").is_file():
        raise ValueError(f"{out} has saved steps but no history.json; cannot resume")
    payload = read_json_object(out / "history.json")
    if not isinstance(payload.get("config", {}), dict) or not isinstance(payload.get("history", []), list) or \
            not all(isinstance(h, dict) and isinstance(h.get("step"), int) for h in payload.get("history", [])):
        raise ValueError(f"{out / 'history.json'} is not a SeedSelect history (config and step records)")
    old = payload.get("config", {})
    check_unchanged(old, config, out, keys=(*CONFIG_KEYS_MUST_MATCH, "prior"), newer=CONFIG_KEYS_MUST_MATCH)
    if not math.isclose(old.get("target_checksum", config["target_checksum"]), config["target_checksum"], rel_tol=1e-4):
        raise ValueError(f"cannot resume {out}: the reference images differ from the saved run's")
    saved = dict(load_step(out, last), config=old)
    timings = read_json_object(out / "timings.json") if (out / "timings.json").is_file() else {}
    by_step = {t.get("step"): t for t in timings.get("steps", []) if isinstance(t, dict)}
    history = [{**h, **{k: v for k, v in by_step.get(h["step"], {}).items() if k in TIMING_KEYS}}
               for h in payload.get("history", []) if h["step"] < last]
    init_seconds = timings.get("init_seconds", 0.0)
    return saved, history, float(init_seconds) if isinstance(init_seconds, (int, float)) else 0.0
