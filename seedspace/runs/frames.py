"""Frame plans: the seeds of every frame of an interpolation, a centroid or a seed travel, with per-frame
provenance, computed from a run's recorded parameters alone (so a frame can be planned again from its PNG).

    plan = plan_frames("interpolate", params, model)   # params as recorded in run.json
    images = model.generate(plan.seeds, plan.conditions)

Each plan also names the seed files a run folder keeps (``seed_files``) and what run.json records about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..conditions import condition_from_record
from ..geometry import INTERPOLATION_METHODS, centroid, interpolate, path_at
from ..seeds import load_seeds

EASINGS = ("linear", "ease-in-out")


@dataclass
class FramePlan:
    """Seeds in render order (N, *seed_shape), one condition each, one metadata dict per frame, the seed files
    of the run folder (name -> (tensors, metadata)) and the entries run.json records about the plan."""

    seeds: torch.Tensor
    conditions: list
    frames: list = field(default_factory=list)
    seed_files: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)

    def attach_batches(self, batch_size: int) -> None:
        """Record in each frame the render batch it belongs to: a frame is regenerated with its whole batch, so
        its pixels are bit-identical whatever the backend does across a batch."""
        n = self.seeds.shape[0]
        for i, frame in enumerate(self.frames):
            start = (i // batch_size) * batch_size
            frame["batch"] = [start, min(n, start + batch_size)]


PAPER_NAO = "nao@chi"  # NAO under the paper's chi prior, whatever the run's prior: a row beside the model's NAO
FRAME_METHODS = (*INTERPOLATION_METHODS, PAPER_NAO)


def geometry_of(method: str, prior):
    """(geometry method, prior) of a frame method: 'nao@chi' is NAO under chi(d)."""
    return ("nao", None) if method == PAPER_NAO else (method, prior)


def plan_interpolation(params: dict, model, progress: bool = False) -> FramePlan:
    """Two endpoint seeds -> ``frames`` seeds along the path of each method (one row per method); t = j / (n - 1)
    (the arc-length fraction for NAO)."""
    cond = condition_from_record(params["condition"])
    seeds, entries = load_seeds(params["seeds"], model, cond, params["steps"], progress)
    if seeds.shape[0] != 2:
        raise ValueError(f"interpolate needs exactly two endpoint seeds, got {seeds.shape[0]}")
    n, methods = params["frames"], params["methods"]
    if n < 2:
        raise ValueError("--frames must be >= 2")
    rows, meta = [], []
    for r, method in enumerate(methods):
        geometry, prior = geometry_of(method, params.get("prior"))
        rows.append(interpolate(seeds[0], seeds[1], steps=n, method=geometry, prior=prior))
        for j in range(n):
            index = r * n + j
            name = f"frame{j:06d}.png" if len(methods) == 1 else f"{method}/frame{j:06d}.png"
            meta.append({"index": index, "file": f"frames/{name}", "method": method, "row": r, "position": j,
                         "t": j / (n - 1), "segment": 0, "endpoints": entries,
                         "seed_file": "seeds.safetensors", "seed_index": index})
    path = torch.cat(rows).float()
    seed_meta = {"command": "interpolate", "methods": methods, "frames": n, "model": params["model"]["id"]}
    return FramePlan(path, [cond] * path.shape[0], meta,
                     {"seeds.safetensors": ({"seeds": path, "endpoints": seeds}, seed_meta)},
                     {"methods": methods, "endpoints": entries})


def plan_centroid(params: dict, model, progress: bool = False) -> FramePlan:
    """k >= 2 inputs -> their centroid and ``frames`` seeds along the path from the centroid to each input."""
    cond = condition_from_record(params["condition"])
    seeds, entries = load_seeds(params["seeds"], model, cond, params["steps"], progress)
    k, n, method = seeds.shape[0], params["frames"], params["method"]
    if k < 2:
        raise ValueError(f"a centroid needs at least two inputs, got {k}")
    c, paths = centroid(seeds, method=method, return_paths=True, steps=n, prior=params.get("prior"))
    c = c.reshape(1, *seeds.shape[1:]).float()
    paths = paths.float().reshape(k * n, *seeds.shape[1:])
    meta = [{"index": 0, "file": "centroid.png", "method": method, "t": 0.0, "inputs": entries,
             "seed_file": "centroid.safetensors", "seed_index": 0}]
    for i in range(k):
        for j in range(n):
            meta.append({"index": 1 + i * n + j, "file": f"paths/path{i:03d}/frame{j:06d}.png", "method": method,
                         "path": i, "position": j, "t": j / (n - 1) if n > 1 else 0.0,
                         "endpoints": ["centroid", entries[i]], "seed_file": "paths.safetensors",
                         "seed_index": i * n + j})
    all_seeds = torch.cat([c, paths])
    seed_meta = {"command": "centroid", "method": method, "model": params["model"]["id"]}
    files = {"centroid.safetensors": ({"seeds": c}, seed_meta),
             "paths.safetensors": ({"seeds": paths}, {**seed_meta, "frames": n, "paths": k}),
             "inputs.safetensors": ({"seeds": seeds}, seed_meta)}
    return FramePlan(all_seeds, [cond] * all_seeds.shape[0], meta, files,
                     {"method": method, "inputs": entries})


def plan_travel(params: dict, model, progress: bool = False) -> FramePlan:
    """Keyframe seeds -> frames along the path of each segment (k - 1 segments, k with ``loop``), eased, with no
    duplicated keyframe; the condition switches at the middle of each segment."""
    cond = condition_from_record(params["condition"])
    inversion_cond = cond
    if isinstance(cond, list):  # one condition per keyframe: image keyframes are inverted with their own
        inversion_cond = cond[0] if len(cond) == 1 else keyframe_conditions(cond, len(params["seeds"]))
    seeds, entries = load_seeds(params["seeds"], model, inversion_cond, params["steps"], progress)
    k = seeds.shape[0]
    if k < 2:
        raise ValueError(f"travel needs at least two keyframes, got {k}")
    loop = params["loop"]
    segments = k if loop else k - 1
    counts = parse_segment_frames(params["frames"], segments)
    conds = keyframe_conditions(cond, k)
    parts, meta, conditions = [], [], []
    for s in range(segments):
        i, j = s, (s + 1) % k
        n = counts[s]
        u = np.linspace(0.0, 1.0, n)
        pos = ease(u, params["easing"])
        path = path_at(seeds[i], seeds[j], pos, params["method"], params.get("prior"))
        keep = n if (s == segments - 1 and not loop) else n - 1
        for f in range(keep):
            index = len(meta)
            meta.append({"index": index, "file": f"frames/frame{index:06d}.png", "segment": s, "position": f,
                         "u": float(u[f]), "t": float(pos[f]), "method": params["method"],
                         "endpoints": [entries[i], entries[j]], "keyframe": i if f == 0 else (j if f == n - 1 else None),
                         "seed_file": "seeds.safetensors", "seed_index": index})
            conditions.append(conds[i] if u[f] < 0.5 else conds[j])
        parts.append(path[:keep])
    all_seeds = torch.cat(parts).float()
    seed_meta = {"command": "travel", "method": params["method"], "model": params["model"]["id"]}
    return FramePlan(all_seeds, conditions, meta,
                     {"seeds.safetensors": ({"seeds": all_seeds, "keyframes": seeds}, seed_meta)},
                     {"method": params["method"], "frames_per_segment": counts,
                      "keyframes": [f["endpoints"][0] for f in meta if f["position"] == 0]})


def parse_segment_frames(text, segments: int) -> list[int]:
    """Frames per travel segment from one number or a comma list (one per segment); each at least 2."""
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"--frames must be a number or a comma list of numbers, got {text!r}") from None
    if len(values) == 1:
        values = values * segments
    if len(values) != segments:
        raise ValueError(f"--frames lists {len(values)} numbers for {segments} segments")
    if min(values) < 2:
        raise ValueError("each segment needs --frames >= 2 (both keyframes counted)")
    return values


def ease(u: np.ndarray, easing: str) -> np.ndarray:
    """Frame positions along a segment: u itself (linear) or (1 - cos(pi u)) / 2 (ease-in-out)."""
    if easing == "ease-in-out":
        return (1.0 - np.cos(np.pi * u)) / 2.0
    return u


def keyframe_conditions(cond, k: int) -> list:
    """One condition per keyframe from one condition or a list of one or k."""
    if not isinstance(cond, list):
        return [cond] * k
    if len(cond) == 1:
        return cond * k
    if len(cond) != k:
        raise ValueError(f"got {len(cond)} conditions for {k} keyframes (give one, or one per keyframe)")
    return cond


PLANNERS: dict[str, Callable[..., FramePlan]] = {
    "interpolate": plan_interpolation, "centroid": plan_centroid, "travel": plan_travel,
}


def plan_frames(command: str, params: dict, model, progress: bool = False) -> FramePlan:
    """The frame plan of a recorded ``interpolate``, ``centroid`` or ``travel`` run."""
    if command not in PLANNERS:
        raise ValueError(f"cannot plan frames of command {command!r}; known: {', '.join(PLANNERS)}")
    return PLANNERS[command](params, model, progress)


def render_batches(model, plan: FramePlan, steps: int, guidance: float, batch_size: int,
                   on_batch: Callable[[int, int, torch.Tensor], None],
                   done: Callable[[int, int], bool] | None = None, progress: bool = False,
                   on_progress: Callable[[int], None] | None = None, scheduler: str | None = None) -> None:
    """Generate the plan's seeds in fixed batches of ``batch_size`` (so any frame can be regenerated bit for bit
    from its batch) and hand each batch's images (B, C, H, W) in [0, 1] to ``on_batch(start, stop, images)``;
    batches for which ``done(start, stop)`` is true are skipped; ``scheduler`` names the sampler (None: the model's)."""
    n = plan.seeds.shape[0]
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        if done is None or not done(start, stop):
            images = model.generate(plan.seeds[start:stop], list(plan.conditions[start:stop]), steps, guidance,
                                    progress=progress, scheduler=scheduler)
            on_batch(start, stop, images)
        if on_progress is not None:
            on_progress(stop - start)
