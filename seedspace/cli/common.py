"""What the commands share: options, user errors, model loading, seed options and resumable run records."""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from .. import outputs
from ..runs.provenance import model_reference as model_ref
from ..runs.writers import run_bytes, run_parameters, size_record
from ..checks import (DTYPE_CHOICES, GUIDANCE_RANGE, LARGE_JOB_BYTES, MAX_BATCH_SIZE, MAX_IMAGE_SIDE, MAX_SEEDS,
                      MAX_STEPS, check_batch_size, check_guidance, check_int,
                      check_seed, check_steps, check_write_size)
from ..backends.images import DEFAULT_FIT, FITS, conversion_line
from ..backends.loading import load_model
from ..backends.sampling import SCHEDULERS
from ..backends.testbed import EMBEDDED_MODELS
from ..conditions import is_class_conditional
from ..conditions import resolve_condition as _resolve_condition
from ..runs import read_run
from ..seeds import image_paths, parse_seed_spec, random_seed_ints

DEVICES = ("cpu", "cuda", "mps", "auto")
DTYPE_HELP = ("model weights dtype; auto = bfloat16 where the device computes it natively (a CPU with AMX or "
              "AVX-512 BF16, a GPU that supports it), else float32; run.json records the one used")


log = logging.getLogger("seedspace.cli")


class CLIError(ValueError):
    """A user error: printed as one line, exit code 2."""


# -- options ---------------------------------------------------------------------------------------------
def add_model_choice(group, dtype_help: str = DTYPE_HELP) -> None:
    """--model, --device and --dtype, the same on every command (the model's options beyond them vary)."""
    group.add_argument("--model", default="testbed",
                       help="'testbed' (the embedded model), 'testbed-flow' (its flow-matching twin), a testbed or "
                            "diffusers folder, or a hub id in the local cache")
    group.add_argument("--device", default="cpu", choices=DEVICES,
                       help="device of the model ('auto': a GPU if any); seeds are always drawn on the CPU")
    group.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help=dtype_help)


def add_size_options(group) -> None:
    """--height and --width: the image size of a diffusers text-to-image pipeline (testbeds have a fixed size)."""
    for name in ("height", "width"):
        group.add_argument(f"--{name}", type=int, default=None, metavar="PX",
                           help=f"image {name} in pixels for diffusers pipelines (SD 1.x / SDXL / SD3: a multiple of "
                                f"8, Flux: of 16; up to {MAX_IMAGE_SIDE}); run.json records it (default: the "
                                "model's own size; testbeds and pixel models make one size only)")


def add_fit_option(group) -> None:
    """--fit: how input images of another aspect ratio than the model's are fitted."""
    group.add_argument("--fit", default=DEFAULT_FIT, choices=FITS,
                       help="input images of another aspect ratio than the model's: crop (the centred region of the "
                            "model's aspect ratio, resized) or pad (the whole image resized, black borders); every "
                            "conversion is one note and recorded in run.json (default: crop)")


def add_model_options(parser: argparse.ArgumentParser, generate: bool = True, out: bool = True,
                      resume: bool = False) -> None:
    g = parser.add_argument_group("model and sampling")
    add_model_choice(g)
    g.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="class index or name for class-conditional models (default: class 0); 'unconditional' samples the model's unconditional distribution (its null class)")
    g.add_argument("--prompt", default=None, help="prompt for text-to-image models (default: empty prompt)")
    g.add_argument("--negative-prompt", default="", help="negative prompt for text-to-image models")
    g.add_argument("--steps", "--num-inference-steps", dest="steps", type=int, default=None,
                   help=f"DDIM steps for sampling and inversion, 1 to {MAX_STEPS} (default: the model's)")
    if generate:
        g.add_argument("--guidance-scale", type=float, default=None,
                       help=f"classifier-free guidance scale, {GUIDANCE_RANGE[0]:g} to {GUIDANCE_RANGE[1]:g} "
                            "(default: the model's)")
        g.add_argument("--scheduler", default=None,
                       help=f"deterministic sampler: {', '.join(SCHEDULERS)} (default: ddim, or flow-euler for "
                            "flow-matching models such as SD3 and Flux)")
        g.add_argument("--compile", action="store_true",
                       help="run a pixel or testbed UNet through torch.compile (inductor): faster on long runs after "
                            "tens of seconds of compiling per batch shape; other bytes than the eager forward, so "
                            "run.json records it and regenerate / --resume replay it (eager, with one log line, where "
                            "it cannot compile)")
    g.add_argument("--batch-size", type=int, default=16, help=f"images per model call, 1 to {MAX_BATCH_SIZE}")
    add_size_options(g)
    add_fit_option(g)
    if out:
        g.add_argument("--out", default=None,
                       help="run folder, must not exist (default: outputs/<command>-NNNNN)")
        g.add_argument("--allow-large", action="store_true",
                       help=f"run even when the run would write more than {LARGE_JOB_BYTES >> 20} MB of seeds and "
                            "images (refused without it)")
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
                   help=f"draw N seed integers (1 to {MAX_SEEDS}) deterministically from --seed-base instead of "
                        "--seeds")
    g.add_argument("--seed-base", type=int, default=0, help="base of --random-seeds, in [0, 2^63)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_sampling_args(args) -> None:
    """The sampling options every model command takes: --steps, --guidance-scale and --batch-size in range."""
    if args.steps is not None:
        check_steps(args.steps, "--steps")
    if getattr(args, "guidance_scale", None) is not None:
        check_guidance(args.guidance_scale, "--guidance-scale")
    check_batch_size(args.batch_size, "--batch-size")


def check_job_size(args, n_seeds: int, n_images: int, model, per_seed: int = 1) -> None:
    """:func:`~seedspace.checks.check_write_size` of a run of ``n_seeds`` seeds (``per_seed`` tensors each) and
    ``n_images`` images, before the work starts (a resumed run was allowed when it began)."""
    check_write_size(run_bytes(model, n_seeds, n_images, per_seed),
                     getattr(args, "allow_large", False) or bool(getattr(args, "resume", None)))


# -- models ----------------------------------------------------------------------------------------------
def load(ref: str, device: str, dtype: str, batch_size: int | None = None,
         negative_prompt: str = "", height: int | None = None, width: int | None = None, fit: str | None = None,
         compile: bool = False):
    """Load a model from its recorded reference, at ``height`` x ``width`` (None: its own size), fitting input
    images by ``fit``, with the compiled forward where ``compile`` asks; a missing model or a size it cannot make is
    a user error."""
    _quiet_libraries()
    if ref not in EMBEDDED_MODELS and not Path(ref).expanduser().exists() and (
            ref.startswith((".", "/", "~")) or ref.count("/") != 1 or Path(ref).suffix):
        raise CLIError(f"model path {ref} does not exist")
    if ref in EMBEDDED_MODELS and not (EMBEDDED_MODELS[ref] / "testbed.json").is_file():
        raise CLIError(f"the embedded {ref} weights are missing ({EMBEDDED_MODELS[ref]}); train them with "
                       f"`seedspace testbed train --out {EMBEDDED_MODELS[ref]}` or pass --model")
    try:
        model = load_model(ref, device=device, dtype=dtype, height=height, width=width, fit=fit,
                           batch_size=batch_size, negative_prompt=negative_prompt)
    except (OSError, EnvironmentError) as exc:
        raise CLIError(f"cannot load model {ref}: {str(exc).splitlines()[0]}") from None
    if compile:
        if hasattr(model, "compile"):  # pixel and testbed UNets (a compiler missing: eager, one log line)
            model.compile = True
        else:
            warnings.warn(f"--compile: {getattr(model, 'name', ref)} has no compiled forward here; it runs eagerly")
    return model


def load_for(args, ref: str):
    """:func:`load` with the command's options (--device, --dtype, --batch-size, --negative-prompt, --height,
    --width, --fit, --compile)."""
    return load(ref, args.device, args.dtype, getattr(args, "batch_size", None), getattr(args, "negative_prompt", ""),
                getattr(args, "height", None), getattr(args, "width", None), getattr(args, "fit", None),
                getattr(args, "compile", False))


def size_params(model) -> dict:
    """``{"height", "width"}`` of a pipeline whose size can be chosen (absent for fixed-size models)."""
    return size_record(model)


def load_from_params(params: dict, device: str = "cpu", model_override: str | None = None):
    """The model of a recorded run (or ``model_override``), with its recorded dtype, batch size and negative prompt."""
    model = load(model_override or params["model"]["id"], device=device, dtype=params.get("dtype", "float32"),
                 batch_size=params.get("batch_size"), negative_prompt=params["condition"].get("negative_prompt", ""),
                 height=params.get("height"), width=params.get("width"), fit=params.get("fit", DEFAULT_FIT),
                 compile=bool(params.get("compile")))  # a compiled run replays it (its bytes are not the eager ones)
    return model


def _quiet_libraries() -> None:
    """diffusers / transformers info logs (accelerate hints, dtype notes) are noise on a command line."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def resolve_condition(model, class_value, prompt, args=None, allow_list: bool = False):
    """:func:`seedspace.conditions.resolve_condition` with the command line's wording and a note when a
    class-conditional model gets no --class (class 0 is used)."""
    if is_class_conditional(model) and prompt is not None:
        raise CLIError(f"{model.name} is class-conditional: use --class, not --prompt")
    if args is not None and class_value is None and model.conditioning == "class":
        names = getattr(model, "class_names", None)
        log.info(f"no --class given; using class 0{f' ({names[0]})' if names else ''}")
    return _resolve_condition(model, class_value, prompt, allow_list)


# -- seeds and images ------------------------------------------------------------------------------------
def seed_items_from_args(args) -> list[dict]:
    """Parsed seed items from ``--seeds`` or ``--random-seeds`` (or the command's default seeds)."""
    if args.seeds is not None and args.random_seeds is not None:
        raise CLIError("give --seeds or --random-seeds, not both")
    if args.random_seeds is not None:
        check_int(args.random_seeds, "--random-seeds", 1, MAX_SEEDS)
        check_seed(args.seed_base, "--seed-base")
        return [{"int": v} for v in random_seed_ints(args.random_seeds, args.seed_base)]
    if args.seeds is not None:
        return parse_seed_spec(args.seeds, "--seeds")
    if getattr(args, "default_seeds", None):
        return parse_seed_spec(args.default_seeds, "--seeds")
    raise CLIError("give --seeds (e.g. --seeds 11,42) or --random-seeds N")


def seed_or_image_items(args) -> list[dict]:
    """Inputs from ``--images DIR[,more]`` (images and image folders only) or else ``--seeds``/``--random-seeds``."""
    if args.images is None:
        return seed_items_from_args(args)
    if args.seeds is not None or args.random_seeds is not None:
        raise CLIError("give --images or --seeds/--random-seeds, not both")
    items = [item for token in args.images.split(",") for item in _image_items(token.strip())]
    if any("image" not in it for it in items):
        raise CLIError("--images takes images or image folders; use --seeds for seed files")
    return items


def _image_items(token: str) -> list[dict]:
    path = Path(token).expanduser()
    if path.is_dir() or not path.suffix:  # a folder (image_files explains a missing one)
        return [{"image": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in outputs.image_files(path)]
    return parse_seed_spec(token, "--images", blends=False)


def collect_images(tokens) -> list[Path]:
    """Image paths from image files and folders (a folder gives its images sorted by name)."""
    paths = []
    for token in tokens:
        path = Path(token).expanduser()
        if path.is_dir():
            paths.extend(outputs.image_files(path))
        elif not path.exists():
            raise CLIError(f"image {token} does not exist")
        elif path.suffix.lower() not in outputs.IMAGE_SUFFIXES:
            raise CLIError(f"{token} is not an image ({', '.join(outputs.IMAGE_SUFFIXES)})")
        else:
            paths.append(path)
    return paths


# -- run records -----------------------------------------------------------------------------------------
def new_run_params(args, settings_class, items: list[dict], **own) -> tuple[dict, object]:
    """(record, model) of a new interpolate / centroid run: the command's ``own`` settings checked first (before
    the model loads), the model from the options, the condition from --class / --prompt, then
    :func:`frame_record`."""
    own = settings_class.checked(**own)
    ref = model_ref(args.model)
    model = load_for(args, ref)
    _, cond_record = resolve_condition(model, args.class_, args.prompt, args)
    return frame_record(args, settings_class, model, ref, cond_record, items, own), model


def frame_record(args, settings_class, model, ref: str, cond_record: dict, items: list[dict], own: dict) -> dict:
    """The run.json parameters of a new frame run but its prior (which
    :func:`~seedspace.runs.writers.plan_frame_run` adds): the record of ``settings_class`` made of the sampling
    options, the seed items, how images are fitted and the command's ``own`` settings."""
    params = {**sampling_params(args, model, ref, cond_record), "seeds": items, **own}
    return settings_class.from_record({**params, **image_params(args, model, items)}).to_record()


def add_prior_option(parser: argparse.ArgumentParser) -> None:
    """``--prior``: the norm prior of NAO paths and centroids."""
    parser.add_argument("--prior", default="model",
                        help="norm prior of NAO paths and centroids: model (the model's own calibrated prior, e.g. "
                             "the testbed's prior.json; chi where it has none), chi (the paper's), scaled-chi:S "
                             "(|x|/S ~ chi(d)) or a prior JSON file (default: model)")


def image_params(args, model, items) -> dict:
    """``{"fit": ..., "image_conversions": [...]}`` of a run that reads images (absent otherwise): how each image
    is converted to the model's size and colour, one note per converted image."""
    paths = image_paths(items)
    if not paths:
        return {}
    conversions: list = []
    model.load_images(paths, args.fit, conversions)
    for record in conversions:
        log.info(conversion_line(record))
    return {"fit": args.fit, "image_conversions": conversions}


def sampling_params(args, model, ref: str, condition_record: dict) -> dict:
    """The parameters every generating command records, from its options (the image size of pipelines too)."""
    return run_parameters(model, ref, condition_record, args.steps, getattr(args, "guidance_scale", None), args.dtype,
                          args.batch_size, getattr(args, "scheduler", None))


def resumed_run(args, command: str):
    """(folder, parameters, model) of the earlier run ``--resume`` names, or (None, None, None) for a new run, whose
    sampling options and --out are checked first (before any slow work). CLIError when ``--resume`` names no
    ``command`` run folder, or when --out is given too."""
    if not getattr(args, "resume", None):
        check_sampling_args(args)
        outputs.check_out_available(args.out)
        return None, None, None
    allowed = {"resume", "device", "quiet", "allow_large", *getattr(args, "resume_may_change", ())}
    conflicting = [name for name in getattr(args, "given_options", []) if name not in allowed]
    if conflicting:
        options = ", ".join("--" + name.rstrip("_").replace("_", "-") for name in conflicting)
        raise CLIError(f"--resume takes every setting from the run's run.json; do not give {options}")
    folder = Path(args.resume).expanduser()
    params = read_run(folder, command)
    return folder, params, load_from_params(params, device=args.device)
