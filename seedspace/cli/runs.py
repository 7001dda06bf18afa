"""The run skeleton of the frame commands (interpolate, centroid, travel): new or resumed parameters ->
:func:`seedspace.runs.writers.run_frames` (the prior, the frame plan, seed files, frames, the command's own outputs);
and regenerating one frame from its PNG record."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import outputs
from ..runs.frames import PLANNERS, plan_frames, stored_endpoints
from ..runs.provenance import frame_text
from ..runs.records import check_frame_record
from ..runs.writers import run_frames
from . import common


def run_frames_command(args, command: str, new_params: Callable) -> int:
    """Run ``command``: parameters from the options (``new_params(args) -> (params, model)``) or from the run
    that ``--resume`` names, then :func:`~seedspace.runs.writers.run_frames` into a new or the resumed folder (a
    resumed run keeps finished batches)."""
    folder, params, model = common.resumed_run(args, command)
    prior = args.prior if params is None else params.get("prior")  # a resumed run keeps the prior it recorded
    if params is None:
        params, model = new_params(args)
    run = run_frames(command, params, model, prior, args.out, resume=folder, allow_large=args.allow_large)
    print(f"wrote {run.folder}: {run.summary.text}")
    return 0


def regenerate(text: str, device: str = "cpu", model_override: str | None = None,
               frame_path: str | Path | None = None):
    """(image (H, W, C) uint8, parameters text) of the frame described by a PNG ``parameters`` text. With
    ``frame_path`` (where that PNG lies) inside its run folder, the endpoint seeds come from the folder's seed
    files (:func:`~seedspace.runs.frames.stored_endpoints`), so images and seed files the run read may have moved;
    elsewhere they are made again from the recorded spec (images inverted from their recorded paths)."""
    rec = check_frame_record(outputs.parse_parameters(text), "the parameters record")
    command, params, frame = rec["command"], rec["params"], rec["frame"]  # check_frame_record vouches for them
    if command not in PLANNERS:
        raise common.CLIError(f"cannot regenerate frames of command {command!r}")
    folder = run_folder_of(frame_path, frame.get("file")) if frame_path is not None else None
    endpoints = stored_endpoints(folder, command, params) if folder is not None else None
    if endpoints is None:
        check_sources_present(params["seeds"], frame_path)
    model = common.load_from_params(params, device=device, model_override=model_override)
    plan = plan_frames(command, params, model, endpoints=endpoints)
    plan.attach_batches(params["batch_size"])
    index = frame["index"]
    if not 0 <= index < plan.seeds.shape[0]:
        raise common.CLIError(f"frame index {index} is out of range")
    start, stop = plan.frames[index]["batch"]
    images = model.generate(plan.seeds[start:stop], list(plan.conditions[start:stop]), params["steps"],
                            params["guidance"], scheduler=params.get("scheduler"))
    image = outputs.to_uint8(images)[index - start]
    return image, frame_text(command, params, plan.frames[index], image.shape[:2])


def run_folder_of(frame_path: str | Path, file: str | None) -> Path | None:
    """The run folder a frame lies in: its path less the folder-relative ``file`` its record names
    (``frames/nao/frame000003.png``); None when the path does not end so."""
    if not isinstance(file, str) or not file:
        return None
    parts, tail = Path(frame_path).resolve().parts, Path(file).parts
    if ".." in tail or len(tail) >= len(parts) or parts[-len(tail):] != tail:
        return None
    return Path(*parts[:-len(tail)])


def check_sources_present(items: list, frame_path) -> None:
    """CLIError naming the first image or seed file of the recorded spec (blends included) that is gone, when
    the frame's run folder cannot stand in for it."""
    for item in items:
        if not isinstance(item, dict):
            continue
        if "blend" in item and isinstance(item["blend"], list):
            check_sources_present(item["blend"], frame_path)
        for kind in ("image", "file"):
            if isinstance(item.get(kind), str) and not Path(item[kind]).is_file():
                what = "image" if kind == "image" else "seed file"
                raise common.CLIError(
                    f"{what} {item[kind]} that the run read is gone, and {frame_path or 'the frame'} is not in its "
                    "run folder (whose seed files hold the run's seeds): regenerate the frame where the run wrote it")
