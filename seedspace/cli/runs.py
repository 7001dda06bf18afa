"""The run skeleton of the frame commands (interpolate, centroid, travel): new or resumed parameters -> a frame
plan (library) -> :func:`seedspace.runs.writers.write_frame_run` (seed files, frames, the command's own outputs);
and regenerating one frame from its PNG record."""

from __future__ import annotations

from typing import Callable

from .. import outputs
from ..runs import open_run
from ..runs.frames import PLANNERS, plan_frames
from ..runs.provenance import frame_text
from ..runs.records import check_frame_record
from ..runs.writers import write_frame_run
from . import common


def run_frames_command(args, command: str, new_params: Callable) -> int:
    """Run ``command``: parameters from the options (``new_params(args) -> (params, model)``) or from the run
    that ``--resume`` names, its frame plan, then :func:`~seedspace.runs.writers.write_frame_run` into a new or the resumed folder (a
    resumed run keeps finished batches)."""
    common.check_sampling_args(args)
    folder, params, model = common.resumed_run(args, command)
    if params is None:
        outputs.check_out_available(args.out)
        params, model = new_params(args)
    plan = plan_frames(command, params, model, progress=not args.quiet)
    common.check_plan_size(args, params, plan, model)
    folder, record = open_run(command, params, args.out, resume=folder, **plan.record,
                              seed_files={name: tensors for name, (tensors, _) in plan.seed_files.items()})
    _, summary = write_frame_run(folder, record, command, params, model, plan, progress=not args.quiet)
    print(f"wrote {folder}: {summary.text}")
    return 0


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
