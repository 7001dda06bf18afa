"""Validation of recorded runs: the ``parameters`` of a run.json (read back by ``--resume``) and the record in a
PNG's ``parameters`` text (read back by ``regenerate``) are checked key by key before they are used, so that a
hand-edited or damaged record fails with one line naming the file and the key."""

from __future__ import annotations

import math
from typing import Callable

from ..checks import (MAX_BATCH_SIZE, MAX_OPT_STEPS, MAX_UPSCALE, check_batch_size, check_dtype, check_fps,
                      check_frames, check_guidance, check_int, check_number, check_seed, check_steps)
from ..geometry import CENTROID_METHODS, INTERPOLATION_METHODS, prior_from_record
from .frames import EASINGS, FRAME_METHODS

VIDEO_FORMATS = ("mp4", "gif")


INIT_METHODS = ("random", "nao-centroid", "nao-paths", "cog-centroid")  # SeedSelect's initialisations


class RecordError(ValueError):
    """A malformed record; the message names the file and the key."""


def check_run_parameters(command: str, params, source: str) -> dict:
    """``params`` of a recorded ``command`` run (interpolate, centroid, travel, seedselect), checked: every key
    that the command reads present, of its type and in its range; RecordError naming ``source`` otherwise."""
    if command not in _COMMAND_CHECKS:
        raise RecordError(f"{source}: cannot use a record of command {command!r}")
    try:
        if not isinstance(params, dict):
            raise ValueError(f"'parameters' must be an object, got {type(params).__name__}")
        _check_common(params)
        _COMMAND_CHECKS[command](params)
    except RecordError:
        raise
    except (ValueError, KeyError) as exc:
        message = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise RecordError(f"{source}: malformed record: {message}") from None
    return params


def check_frame_record(record, source: str) -> dict:
    """A PNG's seedspace record (``{"command", "params", "frame": {"index", ...}}``), checked as
    :func:`check_run_parameters` does, plus a non-negative integer frame index."""
    if not isinstance(record, dict):
        raise RecordError(f"{source}: malformed record: expected an object, got {type(record).__name__}")
    frame = record.get("frame")
    if not isinstance(frame, dict) or "index" not in frame:
        raise RecordError(f"{source}: the parameters record has no frame to regenerate")
    try:
        check_int(frame["index"], "frame index", 0)
    except ValueError as exc:
        raise RecordError(f"{source}: malformed record: {exc}") from None
    check_run_parameters(record.get("command"), record.get("params"), source)
    return record


def _check_common(params: dict) -> None:
    model = params["model"]
    if not isinstance(model, dict) or not isinstance(model.get("id"), str) or not model["id"]:
        raise ValueError("'model' must be an object with an 'id' string")
    _check_condition(params["condition"])
    check_steps(params["steps"], "'steps'")
    check_guidance(params["guidance"], "'guidance'")
    check_dtype(params.get("dtype", "float32"), "'dtype'", auto=False)
    check_batch_size(params.get("batch_size", 1), "'batch_size'")
    if not isinstance(params.get("compile", False), bool):  # absent: the eager forward
        raise ValueError(f"'compile' must be true or false, got {params.get('compile')!r}")
    for key in ("height", "width"):  # a pipeline's chosen image size (absent: the model's own)
        if params.get(key) is not None:
            check_int(params[key], f"'{key}'", 1, 8192)
    if params.get("fit", "crop") not in ("crop", "pad"):
        raise ValueError(f"'fit' must be crop or pad, got {params.get('fit')!r}")
    if params.get("prior") is not None:  # absent: chi(d)
        prior = prior_from_record(params["prior"])
        shape = model.get("seed_shape")
        if isinstance(shape, list) and shape and all(isinstance(v, int) for v in shape) and math.prod(shape) != prior.d:
            raise ValueError(f"'prior' is for d={prior.d}, not for the model's seed shape {shape}")


def _check_condition(condition) -> None:
    if not isinstance(condition, dict):
        raise ValueError(f"'condition' must be an object, got {condition!r}")
    if "prompt" in condition:
        prompt = condition["prompt"]
        if not (isinstance(prompt, str) or isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt)):
            raise ValueError(f"'condition.prompt' must be a string or a list of strings, got {prompt!r}")
        if not isinstance(condition.get("negative_prompt", ""), str):
            raise ValueError("'condition.negative_prompt' must be a string")
        return
    value = condition.get("class")
    values = value if isinstance(value, list) else [value]
    if not values or not all(v is None or isinstance(v, str) or isinstance(v, int) and not isinstance(v, bool)
                             for v in values):
        raise ValueError(f"'condition.class' must be a class index, a class name or a list of them, got {value!r}")


def _check_seed_items(items, key: str = "'seeds'") -> None:
    if not isinstance(items, list) or not items:
        raise ValueError(f"{key} must be a non-empty list of seed entries")
    for item in items:
        _check_seed_item(item, key)


def _check_seed_item(item, key: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{key}: a seed entry must be an object, got {item!r}")
    if "blend" in item:
        _check_seed_items(item["blend"], f"{key} blend")
        weights = item.get("weights")
        if not isinstance(weights, list) or len(weights) != len(item["blend"]):
            raise ValueError(f"{key}: a blend needs one weight per entry")
        total = sum(check_number(w, f"{key} blend weight", 0.0) for w in weights)
        check_number(total, f"{key} sum of blend weights", 0.0, low_open=True)
    elif "int" in item:
        check_seed(item["int"], f"{key} seed integer")
    elif not any(isinstance(item.get(k), str) and item[k] for k in ("file", "image")):
        raise ValueError(f"{key}: a seed entry needs 'int', 'file', 'image' or 'blend', got {item!r}")


def _check_choice(value, allowed, key: str) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _check_interpolation(params: dict) -> None:
    _check_seed_items(params["seeds"])
    methods = params["methods"]
    if not isinstance(methods, list) or not methods:
        raise ValueError("'methods' must be a non-empty list")
    for method in methods:
        _check_choice(method, FRAME_METHODS, "'methods'")
    check_frames(params["frames"], "'frames'")


def _check_centroid(params: dict) -> None:
    _check_seed_items(params["seeds"])
    _check_choice(params["method"], CENTROID_METHODS, "'method'")
    check_frames(params["frames"], "'frames'")


def _check_travel(params: dict) -> None:
    _check_seed_items(params["seeds"])
    _check_choice(params["method"], INTERPOLATION_METHODS, "'method'")
    check_travel_frames(params["frames"], "'frames'")
    if not isinstance(params["loop"], bool):
        raise ValueError(f"'loop' must be true or false, got {params['loop']!r}")
    _check_choice(params["easing"], EASINGS, "'easing'")
    video = params["video"]
    if not isinstance(video, dict) or not isinstance(video.get("formats"), list):
        raise ValueError("'video' must be an object with a 'formats' list")
    for fmt in video["formats"]:
        _check_choice(fmt, VIDEO_FORMATS, "'video.formats'")
    check_fps(video["fps"], "'video.fps'")
    check_int(video["upscale"], "'video.upscale'", 0, MAX_UPSCALE)


def check_travel_frames(value, name: str = "--frames") -> list[int]:
    """Frames per travel segment from one number or a comma list: each in [2, MAX_FRAMES]."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [check_frames(value, name)]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a number or a comma list of numbers, got {value!r}")
    try:
        counts = [int(v) for v in value.split(",")]
    except ValueError:
        raise ValueError(f"{name} must be a number or a comma list of numbers, got {value!r}") from None
    return [check_frames(c, name) for c in counts]


def _check_seedselect(params: dict) -> None:
    _check_choice(params["init"], INIT_METHODS, "'init'")
    check_int(params["opt_steps"], "'opt_steps'", 0, MAX_OPT_STEPS)
    check_number(params["lr"], "'lr'", 0.0, low_open=True)
    check_seed(params["seed"], "'seed'")
    check_int(params["num_seeds"], "'num_seeds'", 1, MAX_BATCH_SIZE)
    if params.get("features") is not None and not isinstance(params["features"], str):
        raise ValueError("'features' must be a folder path or null")
    images = params["images"]
    if not isinstance(images, list) or len(images) < 2 or \
            not all(isinstance(i, dict) and isinstance(i.get("image"), str) for i in images):
        raise ValueError("'images' must list at least two {\"image\": path} entries")


_COMMAND_CHECKS: dict[str, Callable[[dict], None]] = {
    "interpolate": _check_interpolation, "centroid": _check_centroid, "travel": _check_travel,
    "seedselect": _check_seedselect,
}
