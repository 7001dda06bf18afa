"""Options, model loading, conditions, seed specs and frame rendering shared by the commands."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import outputs

IMAGE_SUFFIXES = outputs.IMAGE_SUFFIXES
DEVICES = ("cpu", "cuda", "mps", "auto")
DTYPE_CHOICES = ("float32", "float16", "bfloat16")


class CLIError(ValueError):
    """A user error: printed as one line, exit code 2."""


def note(args, message: str) -> None:
    """An informational line on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        print(f"seedspace: {message}", file=sys.stderr)


# -- options ---------------------------------------------------------------------------------------------
def add_model_options(parser: argparse.ArgumentParser, generate: bool = True, out: bool = True,
                      resume: bool = False) -> None:
    g = parser.add_argument_group("model and sampling")
    g.add_argument("--model", default="testbed",
                   help="'testbed' (the embedded model), a testbed or diffusers folder, or a hub id in the local cache")
    g.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="class index or name for class-conditional models (default: class 0); 'unconditional' samples the model's unconditional distribution (its null class)")
    g.add_argument("--prompt", default=None, help="prompt for text-to-image models (default: empty prompt)")
    g.add_argument("--negative-prompt", default="", help="negative prompt for text-to-image models")
    g.add_argument("--steps", "--num-inference-steps", dest="steps", type=int, default=None,
                   help="DDIM steps for sampling and inversion (default: the model's)")
    if generate:
        g.add_argument("--guidance-scale", type=float, default=None,
                       help="classifier-free guidance scale (default: the model's)")
    g.add_argument("--device", default="cpu", choices=DEVICES, help="device; seeds are always drawn on the CPU")
    g.add_argument("--dtype", default="float32", choices=DTYPE_CHOICES, help="model weights dtype")
    g.add_argument("--batch-size", type=int, default=16, help="images per model call")
    if out:
        g.add_argument("--out", default=None,
                       help="run folder, must not exist (default: outputs/<command>-NNNNN)")
    if resume:
        g.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue an interrupted run of this command in its folder: every setting comes from "
                            "its run.json and finished work is kept")
    g.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def add_seed_options(parser: argparse.ArgumentParser, required_help: str, default: str | None = None) -> None:
    g = parser.add_argument_group("seeds")
    g.add_argument("--seeds", default=None,
                   help=f"comma list of seed integers, .safetensors seed files, images (inverted), image folders or "
                        f"weighted NAO blends SEED:W|SEED:W (e.g. '1111:0.2|2222:0.8'); "
                        f"{required_help}" + (f" (default: {default})" if default else " (default: none)"))
    parser.set_defaults(default_seeds=default)
    g.add_argument("--random-seeds", type=int, default=None, metavar="N",
                   help="draw N seed integers deterministically from --seed-base instead of --seeds")
    g.add_argument("--seed-base", type=int, default=0, help="base of --random-seeds")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_sampling_args(args) -> None:
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps must be >= 1, got {args.steps}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")


# -- models ----------------------------------------------------------------------------------------------
def model_ref(name: str | None) -> str:
    """How a model is recorded: 'testbed', an absolute folder path, or a hub id."""
    if name in (None, "", "testbed"):
        return "testbed"
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else str(name)


def load(ref: str, device: str = "cpu", dtype: str = "float32", batch_size: int | None = None,
         negative_prompt: str = ""):
    """Load a model from its recorded reference; a missing model is a user error."""
    from ..backends.loading import load_model

    _quiet_libraries()
    if ref not in ("testbed",) and not Path(ref).expanduser().exists() and (
            ref.startswith((".", "/", "~")) or ref.count("/") != 1 or Path(ref).suffix):
        raise CLIError(f"model path {ref} does not exist")
    if ref == "testbed":
        from ..backends.testbed import WEIGHTS_DIR

        if not (WEIGHTS_DIR / "testbed.json").is_file():
            raise CLIError(f"the embedded testbed weights are missing ({WEIGHTS_DIR}); train them with "
                           f"`seedspace testbed train --out {WEIGHTS_DIR}` or pass --model")
    try:
        model = load_model(None if ref == "testbed" else ref, device=device, dtype=dtype)
    except (OSError, EnvironmentError) as exc:
        raise CLIError(f"cannot load model {ref}: {str(exc).splitlines()[0]}") from None
    if batch_size:
        model.batch_size = batch_size
    if negative_prompt and hasattr(model, "negative_prompt"):
        model.negative_prompt = negative_prompt
    return model


def _quiet_libraries() -> None:
    """diffusers / transformers info logs (accelerate hints, dtype notes) are noise on a command line."""
    try:
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def model_revision(model) -> str | None:
    """A revision for run records: the hub snapshot commit, or a content hash of the weights file."""
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
    if path.stat().st_size > 512 * 2 ** 20:  # large weights: hash the config instead of gigabytes
        path = path.parent / "config.json"
    return "sha256:" + outputs.file_sha256(path)[:16]


def model_info(model, ref: str) -> dict:
    return {"id": ref, "name": model.name, "revision": model_revision(model), "seed_shape": list(model.seed_shape),
            "default_steps": model.default_steps, "default_guidance": model.default_guidance}


# -- conditions ------------------------------------------------------------------------------------------
def is_class_model(model) -> bool:
    return model.conditioning != "prompt"


def resolve_condition(model, class_value, prompt, args=None, allow_list: bool = False):
    """The model condition(s) and their JSON record from --class / --prompt.

    Class-conditional models take a class index or name (class 0 when none is given); text models take the
    prompt (or, as in the NAO code, the class name given with --class as the prompt).
    With ``allow_list`` a comma list of classes gives one class per keyframe.
    """
    if is_class_model(model):
        if prompt is not None:
            raise CLIError(f"{model.name} is class-conditional: use --class, not --prompt")
        if getattr(model, "num_classes", 1) is None:
            if class_value not in (None, ""):
                raise CLIError(f"{model.name} is unconditional: it takes no --class")
            return None, {"class": None}
        if class_value is None:
            class_value = "0"
            if args is not None:
                names = getattr(model, "class_names", None)
                note(args, f"no --class given; using class 0{f' ({names[0]})' if names else ''}")
        values = [v.strip() for v in str(class_value).split(",")] if allow_list else [str(class_value)]
        from ..backends.pixel import UNCONDITIONAL

        null = getattr(model, "null_class", None)
        indices = [UNCONDITIONAL if i == null else i for i in map(model.class_index, values)]
        names = [model.class_names[i] if model.class_names and i != UNCONDITIONAL else str(i) for i in indices]
        if allow_list:
            return indices, {"class": indices, "class_name": names}
        return indices[0], {"class": indices[0], "class_name": names[0]}
    text = prompt if prompt is not None else (class_value or "")
    record = {"prompt": text, "negative_prompt": getattr(model, "negative_prompt", "")}
    return ([text] if allow_list else text), record


def condition_from_record(record: dict):
    if "prompt" in record:
        return record["prompt"]
    return record.get("class")


def condition_label(record: dict) -> str:
    if "prompt" in record:
        return record["prompt"]
    names = record.get("class_name")
    if isinstance(names, list):
        return "classes: " + ", ".join(names)
    return f"class: {names}" if names is not None else ""


# -- seed specs ------------------------------------------------------------------------------------------
_INT = re.compile(r"^[+]?\d+$")


_WEIGHTED = re.compile(r"^(.+):([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$")


def parse_blend(token: str, what: str) -> dict:
    """``1111:0.2|2222:0.8`` -> {"blend": [{"int": 1111}, {"int": 2222}], "weights": [0.2, 0.8]}: the weighted
    NAO blend (:func:`seedspace.blend`) of seed integers, seed files or images."""
    parts, weights = [], []
    for part in token.split("|"):
        m = _WEIGHTED.match(part.strip())
        if not m:
            raise CLIError(f"{what}: blend entry {part.strip()!r} must be SEED:WEIGHT (e.g. 1111:0.2|2222:0.8)")
        sub = parse_seed_spec(m.group(1), what, blends=False)
        if len(sub) != 1:
            raise CLIError(f"{what}: a blend entry is one seed, not a folder ({m.group(1)})")
        parts.append(sub[0])
        weights.append(float(m.group(2)))
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise CLIError(f"{what}: blend weights must be non-negative and not all zero, got {weights}")
    return {"blend": parts, "weights": weights}


def parse_seed_spec(text: str, what: str = "--seeds", blends: bool = True) -> list[dict]:
    """``11,42,a.safetensors,img.png,folder/,1:0.2|2:0.8`` -> [{"int": 11}, {"int": 42}, {"file": ...},
    {"image": ...}, ..., {"blend": [...], "weights": [...]}]."""
    if text is None or not str(text).strip():
        raise CLIError(f"{what} is empty")
    items = []
    for token in str(text).split(","):
        token = token.strip()
        if not token:
            raise CLIError(f"{what}: empty entry in {text!r}")
        if blends and ("|" in token or (_WEIGHTED.match(token) and not Path(token).expanduser().exists())):
            items.append(parse_blend(token, what))
            continue
        if _INT.match(token):
            value = int(token)
            if value >= 2 ** 63:
                raise CLIError(f"{what}: seed integers must be in [0, 2^63), got {token}")
            items.append({"int": value})
            continue
        path = Path(token).expanduser()
        if path.suffix.lower() == ".safetensors":
            if not path.is_file():
                raise CLIError(f"{what}: seed file {token} does not exist")
            items.append({"file": str(path.resolve()), "sha256": outputs.file_sha256(path)[:16]})
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if not path.is_file():
                raise CLIError(f"{what}: image {token} does not exist")
            items.append({"image": str(path.resolve()), "sha256": outputs.file_sha256(path)[:16]})
        elif path.is_dir():
            items.extend({"image": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in outputs.image_files(path))
        elif path.exists():
            raise CLIError(f"{what}: {token} is neither a .safetensors seed file nor an image ({', '.join(IMAGE_SUFFIXES)})")
        elif re.match(r"^[-+]?[\d.eE+-]+$", token):
            raise CLIError(f"{what}: {token!r} is not a non-negative seed integer")
        elif path.suffix or "/" in token or "\\" in token:
            raise CLIError(f"{what}: {token} does not exist")
        else:
            raise CLIError(f"{what}: {token!r} is not a seed integer, a .safetensors seed file or an image")
    return items


def random_seed_ints(n: int, base: int) -> list[int]:
    import torch

    if n < 1:
        raise CLIError(f"--random-seeds must be >= 1, got {n}")
    gen = torch.Generator().manual_seed(int(base))
    return [int(v) for v in torch.randint(0, 2 ** 31 - 1, (n,), generator=gen)]


def seed_items_from_args(args, minimum: int = 1) -> list[dict]:
    if args.seeds is not None and args.random_seeds is not None:
        raise CLIError("give --seeds or --random-seeds, not both")
    if args.random_seeds is not None:
        items = [{"int": v} for v in random_seed_ints(args.random_seeds, args.seed_base)]
    elif args.seeds is not None:
        items = parse_seed_spec(args.seeds)
    elif getattr(args, "default_seeds", None):
        items = parse_seed_spec(args.default_seeds)
    else:
        raise CLIError("give --seeds (e.g. --seeds 11,42) or --random-seeds N")
    return items


def seed_or_image_items(args) -> list[dict]:
    """Inputs from ``--images DIR[,more]`` (images and image folders only) or else ``--seeds``/``--random-seeds``."""
    if args.images is None:
        return seed_items_from_args(args)
    if args.seeds is not None or args.random_seeds is not None:
        raise CLIError("give --images or --seeds/--random-seeds, not both")
    items = []
    for token in args.images.split(","):
        path = Path(token.strip()).expanduser()
        if path.is_dir() or not path.suffix:  # a folder (image_files explains a missing one)
            items.extend({"image": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in outputs.image_files(path))
        else:
            items.extend(parse_seed_spec(token, "--images"))
    if any("image" not in it for it in items):
        raise CLIError("--images takes images or image folders; use --seeds for seed files")
    return items


def item_label(item: dict) -> str:
    if "blend" in item:
        return "|".join(f"{item_label(p)}:{w:g}" for p, w in zip(item["blend"], item["weights"]))
    if "int" in item:
        return str(item["int"])
    name = Path(item.get("file") or item.get("image")).name
    return f"{name}[{item['index']}]" if "index" in item else name


def resolve_seeds(items: Sequence[dict], model, condition, steps: int | None,
                  progress: bool = False) -> tuple["torch.Tensor", list[dict]]:  # noqa: F821
    """Seeds (N, *seed_shape) float32 on the CPU from parsed seed items, and one entry per seed.

    Integers draw N(0, I) on the CPU; seed files give one seed or a batch (validated against the model's seed
    shape); images are read (resized with a warning), then DDIM-inverted together with the condition; blends
    resolve their entries, then take their weighted NAO blend.
    """
    import torch

    from ..backends.base import seeds_from_ints

    shape = tuple(model.seed_shape)
    parts: list = [None] * len(items)
    entries: list = [None] * len(items)
    image_slots = [i for i, it in enumerate(items) if "image" in it]
    for i, item in enumerate(items):
        if "blend" in item:
            from ..geometry import blend

            cond = condition[i] if isinstance(condition, list) else condition
            seeds, _ = resolve_seeds(item["blend"], model, cond, steps, progress)
            if seeds.shape[0] != len(item["weights"]):
                raise CLIError(f"blend {item_label(item)}: each entry must be a single seed")
            parts[i] = blend(seeds.double(), item["weights"]).float()[None]
            entries[i] = [dict(item)]
        elif "int" in item:
            parts[i] = seeds_from_ints([item["int"]], shape)
            entries[i] = [dict(item)]
        elif "file" in item:
            t = outputs.load_seed_file(item["file"]).float()
            if tuple(t.shape) == shape:
                t = t[None]
            if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != shape or t.shape[0] == 0:
                raise CLIError(f"seed file {Path(item['file']).name} holds shape {tuple(t.shape)}; this model's seeds "
                               f"have shape {shape} (or a batch (N, {', '.join(map(str, shape))}))")
            if not torch.isfinite(t).all():
                raise CLIError(f"seed file {Path(item['file']).name} holds NaN or infinite values")
            parts[i] = t
            entries[i] = [{**item, "index": k} for k in range(t.shape[0])] if t.shape[0] > 1 else [dict(item)]
    if image_slots:
        images = load_images(model, [items[i]["image"] for i in image_slots])
        cond = [condition[i] for i in image_slots] if isinstance(condition, list) else condition
        inverted = model.invert(images, cond, steps, progress=progress).float().cpu()
        for k, i in enumerate(image_slots):
            parts[i] = inverted[k:k + 1]
            entries[i] = [dict(items[i])]
    return torch.cat(parts), [e for group in entries for e in group]


def load_images(model, paths: Sequence[str]):
    """Images at the model's size; warnings (resizing) become one line each on stderr."""
    return model.load_images([str(p) for p in paths])


# -- rendering -------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a command renders: seeds in render order, one condition each, and per-frame metadata."""

    seeds: "torch.Tensor"  # noqa: F821
    conditions: list
    frames: list = field(default_factory=list)  # one dict per seed (t, method, segment, ...)
    extra: dict = field(default_factory=dict)


def batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(n, start + batch_size)


def render(model, seeds, conditions, steps, guidance, batch_size: int, quiet: bool,
           on_batch: Callable[[int, int, np.ndarray], None], desc: str = "frames",
           done: Callable[[int, int], bool] | None = None) -> None:
    """Generate seeds in fixed batches (so any frame can be regenerated bit for bit from its batch) and hand each
    batch's uint8 images (B, H, W, C) to ``on_batch(start, stop, images)``; batches for which
    ``done(start, stop)`` is true (finished before a resume) are skipped."""
    from tqdm.auto import tqdm

    n = seeds.shape[0]
    with tqdm(total=n, desc=desc, unit="frame", disable=quiet, file=sys.stderr) as bar:
        for start, stop in batches(n, batch_size):
            if done is None or not done(start, stop):
                images = model.generate(seeds[start:stop], list(conditions[start:stop]), steps, guidance,
                                        progress=not quiet)
                on_batch(start, stop, outputs.to_uint8(images))
            bar.update(stop - start)


def frame_record(command: str, params: dict, frame: dict) -> dict:
    """The JSON stored in each PNG: enough to regenerate the frame (see ``seedspace regenerate``)."""
    from .. import __version__

    return {"seedspace": __version__, "command": command, "params": params, "frame": frame}


def frame_text(command: str, params: dict, frame: dict, size: tuple[int, int]) -> str:
    """The PNG ``parameters`` text of one frame: web-UI style summary plus the seedspace JSON record."""
    cond = params["condition"]
    endpoints = frame.get("endpoints") or []
    ints = [e["int"] for e in endpoints if isinstance(e, dict) and "int" in e]
    summary = {
        "_condition": condition_label(cond),
        "_negative": cond.get("negative_prompt") or None,
        "Steps": params["steps"],
        "Sampler": "DDIM",
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
    return outputs.format_parameters(frame_record(command, params, frame), summary)


def sampling_params(args, model, ref: str, condition_record: dict) -> dict:
    """The parameters every generating command records."""
    return {
        "model": model_info(model, ref),
        "condition": condition_record,
        "steps": int(args.steps or model.default_steps),
        "guidance": float(model.default_guidance if getattr(args, "guidance_scale", None) is None else args.guidance_scale),
        "dtype": args.dtype,
        "batch_size": int(args.batch_size),
    }


def resumed_run(args, command: str):
    """(folder, parameters, model) of the earlier run ``--resume`` names, or (None, None, None) without it.
    CLIError when it is not a ``command`` run folder, or when --out is given too."""
    if not getattr(args, "resume", None):
        return None, None, None
    if args.out is not None:
        raise CLIError("--resume continues a run in its own folder: do not give --out")
    folder = Path(args.resume).expanduser()
    run_json = folder / "run.json"
    if not run_json.is_file():
        raise CLIError(f"{folder} is not a seedspace run folder (no run.json)")
    try:
        old = json.loads(run_json.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CLIError(f"cannot read {run_json}: {exc}") from None
    if old.get("command") != command:
        raise CLIError(f"{folder} is a `{old.get('command')}` run, not a `{command}` run")
    params = dict(old["parameters"])
    return folder, params, load_from_params(params, device=args.device)


def open_record(args, command: str, params: dict, resumed_folder: Path | None, seeds_file: str | None = None,
                seeds=None, **extra) -> tuple[Path, outputs.RunRecord]:
    """(folder, record) of the run: a new numbered folder, or the resumed one after checking that its saved
    ``seeds_file`` (if given) holds the seeds planned now (else its inputs changed and frames would not match)."""
    if resumed_folder is None:
        folder = outputs.allocate_run_dir(command, args.out)
        return folder, outputs.RunRecord(folder, command, params, model=params["model"], **extra)
    import torch
    from safetensors.torch import load_file

    path = resumed_folder / (seeds_file or "")
    if seeds_file and path.is_file() and not torch.equal(load_file(str(path))["seeds"], seeds.contiguous()):
        raise CLIError(f"cannot resume {resumed_folder}: its inputs changed (the planned seeds differ from {seeds_file})")
    return resumed_folder, outputs.RunRecord.resume(resumed_folder)


def load_from_params(params: dict, device: str = "cpu", model_override: str | None = None):
    return load(model_override or params["model"]["id"], device=device, dtype=params.get("dtype", "float32"),
                batch_size=params.get("batch_size"), negative_prompt=params["condition"].get("negative_prompt", ""))


def write_frames(folder: Path, names: Sequence[str], images: np.ndarray, texts: Sequence[str]) -> list[Path]:
    paths = []
    for name, image, text in zip(names, images, texts):
        paths.append(outputs.save_png(folder / name, image, text))
    return paths
