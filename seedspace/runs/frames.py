"""Frame plans: the seeds of every frame of an interpolation, a centroid or a seed travel, with per-frame
provenance, computed from a run's recorded parameters alone (so a frame can be planned again from its PNG).

    plan = plan_frames("interpolate", params, model)   # params as recorded in run.json
    images = model.generate(plan.seeds, plan.conditions)

Each plan also names the seed files a run folder keeps (``seed_files``) and what run.json records about it. A
run folder keeps its endpoint seeds too (:func:`stored_endpoints`): passed as ``endpoints=``, a plan is made
again without reading the recorded images or seed files, which may have moved since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file

from ..backends.base import check_seed_values, seeds_from_ints
from ..checks import check_frames
from ..conditions import condition_from_record
from ..geometry import INTERPOLATION_METHODS, centroid, interpolate, path_at
from ..outputs import load_seed_file
from ..outputs.files import read_json_object
from ..seeds import LoadedSeeds, load_seeds

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


def plan_interpolation(params: dict, model, endpoints: LoadedSeeds | None = None) -> FramePlan:
    """Two endpoint seeds -> ``frames`` seeds along the path of each method (one row per method); t = j / (n - 1)
    (the arc-length fraction for NAO)."""
    cond = condition_from_record(params["condition"])
    seeds, entries = endpoints or load_seeds(params["seeds"], model, cond, params["steps"])
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


def plan_centroid(params: dict, model, endpoints: LoadedSeeds | None = None) -> FramePlan:
    """k >= 2 inputs -> their centroid and ``frames`` seeds along the path from the centroid to each input."""
    cond = condition_from_record(params["condition"])
    seeds, entries = endpoints or load_seeds(params["seeds"], model, cond, params["steps"])
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


def plan_travel(params: dict, model, endpoints: LoadedSeeds | None = None) -> FramePlan:
    """Keyframe seeds -> frames along the path of each segment (k - 1 segments, k with ``loop``), eased, with no
    duplicated keyframe; the condition switches at the middle of each segment."""
    cond = condition_from_record(params["condition"])
    seeds, entries = endpoints or load_endpoints("travel", params, model)
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


def frame_counts(value, name: str = "--frames") -> list[int]:
    """The counts of travel's ``frames``: one number or a comma list of numbers (text), each in [2, MAX_FRAMES]
    (both keyframes counted)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be a number or a comma list of numbers, got {value!r}")
    try:
        counts = [int(v) for v in str(value).split(",")]
    except ValueError:
        raise ValueError(f"{name} must be a number or a comma list of numbers, got {value!r}") from None
    return [check_frames(count, name) for count in counts]


def parse_segment_frames(text, segments: int) -> list[int]:
    """Frames per travel segment from one count (every segment) or one count per segment."""
    values = frame_counts(text)
    if len(values) == 1:
        values = values * segments
    if len(values) != segments:
        raise ValueError(f"--frames lists {len(values)} numbers for {segments} segments")
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


def load_endpoints(command: str, params: dict, model) -> LoadedSeeds:
    """The endpoint seeds (interpolate), inputs (centroid) or keyframes (travel) of a run's recorded seed spec,
    images inverted with the run's condition and steps: what the plan of ``command`` starts from (and what a
    prior fitted to the run's own seeds is fitted to)."""
    cond = condition_from_record(params["condition"])
    if command == "travel" and isinstance(cond, list):  # one condition per keyframe: images inverted with their own
        cond = cond[0] if len(cond) == 1 else keyframe_conditions(cond, len(params["seeds"]))
    return load_seeds(params["seeds"], model, cond, params["steps"])


def plan_frames(command: str, params: dict, model, endpoints: LoadedSeeds | None = None) -> FramePlan:
    """The frame plan of a recorded ``interpolate``, ``centroid`` or ``travel`` run; ``endpoints`` (from
    :func:`stored_endpoints`) stand in for the recorded seed spec, which is then not read."""
    if command not in PLANNERS:
        raise ValueError(f"cannot plan frames of command {command!r}; known: {', '.join(PLANNERS)}")
    return PLANNERS[command](params, model, endpoints=endpoints)


# where each command's run folder keeps the seeds of its endpoints (inputs, keyframes): file, tensor key
STORED_ENDPOINTS = {"interpolate": ("seeds.safetensors", "endpoints"), "centroid": ("inputs.safetensors", "seeds"),
                    "travel": ("seeds.safetensors", "keyframes")}


def stored_endpoints(folder, command: str, params: dict) -> LoadedSeeds | None:
    """The endpoint seeds (interpolate), inputs (centroid) or keyframes (travel) that the run folder ``folder``
    keeps, with the provenance :func:`~seedspace.seeds.load_seeds` gives its recorded seed spec: what a plan of
    the run needs instead of inverting its images again. None when the folder holds no run of ``command`` with
    these ``params`` (run.json) or no such seeds. ValueError when the stored seeds do not fit the record (their
    shape, a non-finite value, a seed integer's noise, the count of its entries)."""
    folder = Path(folder)
    if command not in STORED_ENDPOINTS or not (folder / "run.json").is_file():
        return None
    try:
        record = read_json_object(folder / "run.json")
    except ValueError:
        return None
    if record.get("command") != command or record.get("parameters") != params:
        return None
    name, key = STORED_ENDPOINTS[command]
    if not (folder / name).is_file():
        return None
    try:
        tensors = load_file(str(folder / name))
    except Exception as exc:  # a damaged file: name it, one line
        raise ValueError(f"cannot read {folder / name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if key not in tensors:
        return None  # written before the folder kept these seeds
    seeds = tensors[key]
    shape = tuple(params["model"]["seed_shape"])
    if seeds.dim() != len(shape) + 1 or tuple(seeds.shape[1:]) != shape:
        raise ValueError(f"{folder / name}: '{key}' holds shape {tuple(seeds.shape)}, not (N, {', '.join(map(str, shape))})")
    check_seed_values(seeds, f"{folder / name}")
    items = params["seeds"]
    provenance = _stored_provenance(items, seeds.shape[0], shape, f"{folder / name}")
    for i, entry in enumerate(provenance):
        if "int" in entry and not torch.equal(seeds[i:i + 1], seeds_from_ints([entry["int"]], shape)):
            raise ValueError(f"{folder / name}: seed {i} is not the noise of seed integer {entry['int']} its record names")
    return LoadedSeeds(seeds.float(), provenance)


def _stored_provenance(items: list, n: int, shape: tuple, where: str) -> list[dict]:
    """The provenance of ``n`` stored seeds made from the seed items ``items``: one per item, except seed files
    holding a batch, which give one per seed (``index`` k). With more seeds than items, a seed file's size is
    read where the file still exists; one that is gone takes what the others leave."""
    counts: list = [1] * len(items)
    if n != len(items):
        for i, item in enumerate(items):
            if "file" in item:
                path = Path(item["file"])
                t = load_seed_file(path) if path.is_file() else None
                counts[i] = None if t is None else 1 if tuple(t.shape) == shape else t.shape[0]
        unknown = [i for i, c in enumerate(counts) if c is None]
        if len(unknown) == 1:
            counts[unknown[0]] = n - sum(c for c in counts if c is not None)
    if None in counts or sum(counts) != n or min(counts, default=0) < 1:
        raise ValueError(f"{where} holds {n} seeds, which do not match the {len(items)} entries of its record")
    provenance = []
    for item, c in zip(items, counts):
        provenance.extend([{**item, "index": k} for k in range(c)] if c > 1 else [dict(item)])
    return provenance


def render_batches(model, plan: FramePlan, steps: int, guidance: float, batch_size: int,
                   on_batch: Callable[[int, int, torch.Tensor], None],
                   done: Callable[[int, int], bool] | None = None,
                   on_progress: Callable[[int], None] | None = None, scheduler: str | None = None) -> None:
    """Generate the plan's seeds in fixed batches of ``batch_size`` (so any frame can be regenerated bit for bit
    from its batch) and hand each batch's images (B, C, H, W) in [0, 1] to ``on_batch(start, stop, images)``;
    batches for which ``done(start, stop)`` is true are skipped; ``scheduler`` names the sampler (None: the model's)."""
    n = plan.seeds.shape[0]
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        if done is None or not done(start, stop):
            images = model.generate(plan.seeds[start:stop], list(plan.conditions[start:stop]), steps, guidance,
                                    scheduler=scheduler)
            on_batch(start, stop, images)
        if on_progress is not None:
            on_progress(stop - start)
