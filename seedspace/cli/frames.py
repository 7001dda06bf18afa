"""Rendering planned frames into a run folder, and regenerating one frame from its PNG metadata."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .. import outputs
from . import common


def attach_batches(plan: common.Plan, batch_size: int) -> None:
    """Record in each frame the render batch it belongs to (a frame is regenerated with its whole batch, so
    its pixels are bit-identical whatever the backend does across a batch)."""
    n = plan.seeds.shape[0]
    for i, frame in enumerate(plan.frames):
        start = (i // batch_size) * batch_size
        frame["batch"] = [start, min(n, start + batch_size)]


def render_plan(args, command: str, model, params: dict, plan: common.Plan, folder: Path,
                record: outputs.RunRecord) -> np.ndarray:
    """Render every planned frame to ``folder/<frame['file']>`` (PNG with parameters), recording each finished
    batch in run.json; returns all images (N, H, W, C) uint8. Batches a resumed run already finished are read
    back from their PNGs instead (a batch renders the same pixels whenever it is rendered)."""
    attach_batches(plan, params["batch_size"])
    shape = None
    out: list = [None] * plan.seeds.shape[0]
    finished = record.finished_frames()

    def done(start, stop):
        if not all(i in finished for i in range(start, stop)):
            return False
        for i in range(start, stop):
            out[i] = outputs.read_png_pixels(folder / plan.frames[i]["file"])
        return True

    def on_batch(start, stop, images):
        nonlocal shape
        shape = images.shape[1:3]
        for k, image in enumerate(images):
            frame = plan.frames[start + k]
            outputs.save_png(folder / frame["file"], image, common.frame_text(command, params, frame, shape))
            out[start + k] = image
        record.add_frames([{key: v for key, v in plan.frames[i].items()} for i in range(start, stop)])

    common.render(model, plan.seeds, plan.conditions, params["steps"], params["guidance"], params["batch_size"],
                  args.quiet, on_batch, done=done)
    return np.stack(out)


def regenerate(text: str, device: str = "cpu", model_override: str | None = None, quiet: bool = True):
    """(image (H, W, C) uint8, parameters text) of the frame described by a PNG ``parameters`` text."""
    rec = outputs.parse_parameters(text)
    command, params, frame = rec.get("command"), rec.get("params"), rec.get("frame")
    if not params or not frame or "index" not in frame:
        raise common.CLIError("the parameters record has no frame to regenerate")
    try:
        module = importlib.import_module(f"seedspace.cli.cmd_{command}")
    except ImportError:
        raise common.CLIError(f"cannot regenerate frames of command {command!r}") from None
    model = common.load_from_params(params, device=device, model_override=model_override)
    plan = module.plan(params, model, progress=not quiet)
    attach_batches(plan, params["batch_size"])
    index = frame["index"]
    if not 0 <= index < plan.seeds.shape[0]:
        raise common.CLIError(f"frame index {index} is out of range")
    start, stop = plan.frames[index]["batch"]
    images = model.generate(plan.seeds[start:stop], list(plan.conditions[start:stop]), params["steps"],
                            params["guidance"], progress=not quiet)
    image = outputs.to_uint8(images)[index - start]
    return image, common.frame_text(command, params, plan.frames[index], image.shape[:2])
