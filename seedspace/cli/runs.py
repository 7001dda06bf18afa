"""The run skeleton of the frame commands (interpolate, centroid, travel): new or resumed parameters -> a frame
plan (library) -> seed files -> rendered frames with their metadata -> the command's own summary outputs.
:func:`write_frame_run` is the part without command-line options, which ``seedspace ui`` calls too."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from .. import outputs
from ..apps.frames import PLANNERS, FramePlan, plan_frames, render_batches
from ..apps.provenance import frame_text
from ..apps.records import check_frame_record
from . import common


def run_frames_command(args, command: str, new_params: Callable, finish: Callable) -> int:
    """Run ``command``: parameters from the options (``new_params(args) -> (params, model)``) or from the run
    that ``--resume`` names, its frame plan, then :func:`write_frame_run` into a new or the resumed folder (a
    resumed run keeps finished batches)."""
    common.check_sampling_args(args)
    folder, params, model = common.resumed_run(args, command)
    if params is None:
        outputs.check_out_available(args.out)
        params, model = new_params(args)
    plan = plan_frames(command, params, model, progress=not args.quiet)
    common.check_plan_size(args, params, plan, model)
    folder, record = common.open_record(args, command, params, folder,
                                        {name: tensors for name, (tensors, _) in plan.seed_files.items()},
                                        **plan.record)
    _, summary = write_frame_run(folder, record, command, params, model, plan, finish, progress=not args.quiet)
    print(f"wrote {folder}: {summary.text}")
    return 0


def write_frame_run(folder: Path, record: outputs.RunRecord, command: str, params: dict, model, plan: FramePlan,
                    finish: Callable, progress: bool = False,
                    on_frames: Callable[[int], None] | None = None) -> tuple[np.ndarray, Summary]:
    """Fill an open run folder: the plan's seed files, every frame (:func:`render_plan`), then
    ``finish(folder, record, params, plan, images (N, H, W, C) uint8, model) -> Summary`` writes what else the
    command writes and returns the grid, saved as grid.png; run.json follows every step and ends completed
    (interrupted or failed on an error). Returns (images, summary). The command line and ``seedspace ui`` share it."""
    with record.guard():
        for name, (tensors, meta) in plan.seed_files.items():
            outputs.save_seeds(folder / name, tensors, meta)
            record.add_file(folder / name)
        images = render_plan(command, model, params, plan, folder, record, progress, on_frames)
        summary = finish(folder, record, params, plan, images, model)
        save_grid_png(folder, record, command, params, summary.grid)
    return images, summary


class Summary(NamedTuple):
    """What a command's ``finish`` returns: the grid image (PIL) and the line printed at the end."""

    grid: object
    text: str


def save_grid_png(folder: Path, record: outputs.RunRecord, command: str, params: dict, grid) -> None:
    """grid.png with the run's parameters as its metadata."""
    outputs.save_png(folder / "grid.png", grid, outputs.JSON_PREFIX + outputs.canonical_json(
        {"command": command, "params": params}))
    record.add_file(folder / "grid.png")


def render_plan(command: str, model, params: dict, plan: FramePlan, folder: Path, record: outputs.RunRecord,
                progress: bool = False, on_frames: Callable[[int], None] | None = None) -> np.ndarray:
    """Render every planned frame to ``folder/<frame['file']>`` (PNG with parameters), recording each finished
    batch in run.json; returns all images (N, H, W, C) uint8. Batches a resumed run already finished are read
    back from their PNGs instead (a batch renders the same pixels whenever it is rendered). ``progress`` shows
    progress bars; ``on_frames(k)`` is called as each batch of k frames is done."""
    plan.attach_batches(params["batch_size"])
    out: list = [None] * plan.seeds.shape[0]
    finished = record.finished_frames()

    def done(start, stop):
        if not all(i in finished for i in range(start, stop)):
            return False
        for i in range(start, stop):
            out[i] = outputs.read_png_pixels(folder / plan.frames[i]["file"])
        return True

    def on_batch(start, stop, images):
        images = outputs.to_uint8(images)
        for k, image in enumerate(images):
            frame = plan.frames[start + k]
            outputs.save_png(folder / frame["file"], image, frame_text(command, params, frame, images.shape[1:3]))
            out[start + k] = image
        record.add_frames([dict(plan.frames[i]) for i in range(start, stop)])

    with tqdm(total=plan.seeds.shape[0], desc="frames", unit="frame", disable=not progress, file=sys.stderr) as bar:
        def advanced(k: int) -> None:
            bar.update(k)
            if on_frames is not None:
                on_frames(k)

        render_batches(model, plan, params["steps"], params["guidance"], params["batch_size"], on_batch, done,
                       progress=progress, on_progress=advanced, scheduler=params.get("scheduler"))
    return np.stack(out)


def regenerate(text: str, device: str = "cpu", model_override: str | None = None, quiet: bool = True):
    """(image (H, W, C) uint8, parameters text) of the frame described by a PNG ``parameters`` text."""
    rec = check_frame_record(outputs.parse_parameters(text), "the parameters record")
    command, params, frame = rec["command"], rec["params"], rec["frame"]  # check_frame_record vouches for them
    if command not in PLANNERS:
        raise common.CLIError(f"cannot regenerate frames of command {command!r}")
    model = common.load_from_params(params, device=device, model_override=model_override)
    plan = plan_frames(command, params, model, progress=not quiet)
    plan.attach_batches(params["batch_size"])
    index = frame["index"]
    if not 0 <= index < plan.seeds.shape[0]:
        raise common.CLIError(f"frame index {index} is out of range")
    start, stop = plan.frames[index]["batch"]
    images = model.generate(plan.seeds[start:stop], list(plan.conditions[start:stop]), params["steps"],
                            params["guidance"], progress=not quiet, scheduler=params.get("scheduler"))
    image = outputs.to_uint8(images)[index - start]
    return image, frame_text(command, params, plan.frames[index], image.shape[:2])
