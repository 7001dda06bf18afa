"""The data set on disk: ``OUT/<class folder>/<class folder>_<index>.png`` (ImageFolder), a manifest part per shard
(written after its images, with each image's sha256: a shard is finished when its part exists and its images
match), ``manifest.jsonl`` assembled from the parts
in plan order, ``references.safetensors`` and ``run.json``. Every file is written atomically (outputs.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ... import outputs
from ...runs import RunRecord, read_record
from ...settings import check_unchanged
from .planning import ClassPlan, Plan, Shard, ShardWork
from .settings import AugmentSettings

COMMAND = "augment"
MANIFEST = "manifest.jsonl"
RUN_JSON = "run.json"
NEWER_SETTINGS = ("threads", "seedselect_start", "inversion", "height", "width", "fit", "keep_blank")  # absent from older records (threads: such a run
# resumes with this process's count; the others: their defaults, what it ran with)
PRIOR = "N(0, I)"  # the seed prior the geometry (chi norms) assumes unless the settings name another norm prior


def image_name(c: ClassPlan, index: int, per_class: int) -> str:
    width = max(5, len(str(per_class - 1)))
    return f"{c.folder}/{c.folder}_{index:0{width}d}.png"


def part_path(out: Path, c: ClassPlan, shard: Shard) -> Path:
    # inside the class folder: ImageFolder-style loaders take only image files from it
    return out / c.folder / f"shard-{shard.chunk:05d}.jsonl"


def shard_finished(out: Path, plan: Plan, shard: Shard) -> bool:
    """The shard's part exists and each of its images is the file the part's ``sha256`` names (a damaged or
    replaced image makes the shard unfinished, so ``resume`` makes it again)."""
    c = plan.classes[shard.class_position]
    part = part_path(out, c, shard)
    if not part.is_file():
        return False
    try:
        entries = [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    names = [image_name(c, i, plan.settings.per_class) for i in range(shard.start, shard.stop)]
    if [e.get("file") if isinstance(e, dict) else None for e in entries] != names:
        return False
    return all((out / e["file"]).is_file() and ("sha256" not in e or file_sha256(out / e["file"]) == e["sha256"])
               for e in entries)  # parts of runs before hashes were recorded: existence only


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_entry(s: AugmentSettings, c: ClassPlan, index: int, seed: dict, model_id: str, sampler: str) -> dict:
    """One manifest line: where the image is, its class and how it was made (``sampler``: the label of the
    sampler that ran, e.g. DDIM, or flow Euler for flow-matching models; ``dtype`` and ``threads``: the
    arithmetic it ran with, which the bytes depend on)."""
    return {"file": image_name(c, index, s.per_class), "class": c.name, "class_index": c.position, "index": index,
            "strategy": s.strategy, "method": s.method, "condition": s.condition, "model_condition": c.condition,
            "model": model_id, "prior": manifest_prior(s.prior), "sampler": sampler, "steps": s.steps, "guidance": s.guidance,
            "dtype": s.dtype, "threads": s.threads, "references": c.references, "seed": seed}


def manifest_prior(record: dict | None):
    """The manifest's prior: ``N(0, I)`` (chi norms), or the norm prior's parameters (its record without ``info``)."""
    return PRIOR if record is None else {k: v for k, v in record.items() if k != "info"}


def write_shard(out: Path, work: ShardWork, images: np.ndarray, entries: list[dict]) -> None:
    """The shard's images (uint8 (n, H, W, C)), each with its manifest line in its PNG, then its manifest part."""
    c = work.cls
    for image, entry in zip(images, entries):
        summary = {"_condition": f"class: {c.name}" if entry["condition"] == "class" else "unconditional",
                   "Steps": entry["steps"], "Sampler": entry["sampler"], "CFG scale": entry["guidance"],
                   "Seed": entry["seed"].get("int"), "Seed method": f"{entry['strategy']}/{entry['method']}",
                   "Model": entry["model"]}
        outputs.save_png(out / entry["file"], image, outputs.format_parameters(dict(entry), summary))
    hashed = [{**e, "sha256": file_sha256(out / e["file"])} for e in entries]  # the PNG's bytes, for resume
    outputs.write_text(part_path(out, c, work.shard), "".join(outputs.canonical_json(e) + "\n" for e in hashed))


def assemble_manifest(out: Path, plan: Plan) -> Path:
    """``manifest.jsonl``: the shards' parts concatenated in plan order (class, then chunk)."""
    text = "".join(part_path(out, plan.classes[s.class_position], s).read_text(encoding="utf-8") for s in plan.shards)
    return outputs.write_text(out / MANIFEST, text)


def check_new_out(out: Path, resume: bool) -> bool:
    """True when ``out`` holds a run to resume; FileExistsError for an existing folder without ``resume``."""
    if not out.exists():
        return False
    if not resume:
        raise FileExistsError(f"output folder {out} already exists; pass resume to continue it, or choose another")
    if not (out / RUN_JSON).is_file():
        raise ValueError(f"cannot resume {out}: it holds no {RUN_JSON} of an augment run")
    return True


def read_saved_run(out: Path) -> dict:
    """The run.json of the augment run in ``out``; ValueError when it cannot be read or is another command's."""
    try:
        old = read_record(out, COMMAND)
    except ValueError as exc:
        raise ValueError(f"cannot resume {out}: {exc}") from None
    if not isinstance(old.get("parameters"), dict) or not isinstance(old["parameters"].get("settings"), dict):
        raise ValueError(f"cannot resume {out}: {out / RUN_JSON} is not the record of an augment run")
    return old


def check_resumable(old: dict, out: Path, parameters: dict) -> None:
    """ValueError naming the first setting, class or model that differs from the saved run's (``old``, its
    run.json). Settings added after a run was made (absent from its record) are not compared."""
    saved = old["parameters"]
    check_unchanged(saved["settings"], parameters["settings"], out, newer=NEWER_SETTINGS)
    for key in ("id", "name", "seed_shape"):
        if not isinstance(saved.get("model"), dict) or saved["model"].get(key) != parameters["model"][key]:
            raise ValueError(f"cannot resume {out}: the model differs ({key} was "
                             f"{(saved.get('model') or {}).get(key)!r}, now {parameters['model'][key]!r})")
    classes = saved.get("classes")
    old_classes = [(c.get("name"), c.get("sha256")) for c in classes if isinstance(c, dict)] \
        if isinstance(classes, list) else None
    new_classes = [(c["name"], c["sha256"]) for c in parameters["classes"]]
    if old_classes != new_classes:
        raise ValueError(f"cannot resume {out}: its classes or reference images differ from the ones given now")


def open_record(out: Path, parameters: dict, resuming: bool, execution: dict) -> RunRecord:
    """run.json: a new record, or the saved one reopened (its parameters kept) with this execution noted."""
    if resuming:
        record = RunRecord.resume(out)
    else:
        out.mkdir(parents=True)
        record = RunRecord(out, COMMAND, parameters, model=parameters["model"])
    record["execution"] = execution
    record.write()
    return record
