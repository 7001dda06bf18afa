"""``seedspace calibrate``: measure image quality against the seed norm and write a norm prior file for --prior."""

from __future__ import annotations

import shlex
from pathlib import Path


from ..checks import check_threads
from ..geometry import QUALITY_FAMILIES
from ..hardware import torch_threads
from ..methods.calibrate import (DEFAULT_NORMS, DEFAULT_PER_NORM, DIRECTIONS, MAX_PER_NORM, SCORES, CalibrationSettings,
                                 calibrate, default_prior_path, save_prior)
from ..settings import model_sampling
from . import common

COMMAND = "calibrate"
QUICK = {"norms": (0.85, 0.95, 1.05), "per_norm": 4, "steps": 10}  # a smoke run, not a usable prior


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="measure image quality against the seed norm and write a norm prior file for --prior",
        description="Rescale seed directions (random, and the DDIM inversions of the model's real few-shot images) "
                    "to a grid of norms s*sqrt(d), generate them with their class, score each image with the "
                    "model's judge (probability of its class) or, without a judge, by feature similarity to the "
                    "class's real images, and fit a scaled-chi prior whose mode sits at the quality-weighted norm. "
                    "The prior file (JSON, with the measurements and this command) is what --prior FILE of "
                    "interpolate, travel, centroid, cluster, seedselect and augment reads.",
        epilog="Example: seedspace calibrate --model testbed  (then: seedspace interpolate --prior "
               "outputs/calibrate/testbed.prior.json)")
    g = p.add_argument_group("calibration")
    g.add_argument("--out", default=None, metavar="FILE",
                   help="the prior file to write, must not exist; 'model': where the model's own prior lives, so that "
                        "--prior model (every command's default) uses it: prior.json in a testbed folder, the "
                        "per-model cache ($SEEDSPACE_CACHE, default ~/.cache/seedspace) for a diffusers model "
                        "(default: outputs/calibrate/<model>.prior.json)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    g.add_argument("--directions", default="both", choices=DIRECTIONS,
                   help="seed directions: random, the inversions of the model's few-shot real images, or both "
                        "(both: random alone when the model has no few-shot images)")
    g.add_argument("--norms", default=None,
                   help="norm / sqrt(d) grid: a comma list or LO:HI:STEP "
                        f"(default: {DEFAULT_NORMS[0]:.2f}:{DEFAULT_NORMS[-1]:.2f}:0.05)")
    g.add_argument("--per-norm", type=int, default=None, metavar="N",
                   help=f"images per norm and direction kind, 1 to {MAX_PER_NORM} (default: {DEFAULT_PER_NORM})")
    g.add_argument("--score", default="auto", choices=SCORES,
                   help="image score: conf (judge probability of the class), accuracy, features (similarity to the "
                        "class's real images); auto: conf with a judge, else features")
    g.add_argument("--family", default="scaled-chi", choices=QUALITY_FAMILIES,
                   help="prior family: scaled-chi (mode fitted, the geometry's width) or generalized-chi (width "
                        "fitted to the quality curve too)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random directions and the few-shot order")
    g.add_argument("--quick", action="store_true",
                   help=f"a smoke run: norms {','.join(map(str, QUICK['norms']))}, {QUICK['per_norm']} images per "
                        f"norm, {QUICK['steps']} steps (explicit options win); not for real priors")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")

    m = p.add_argument_group("model and sampling")
    common.add_model_choice(m)
    common.add_size_options(m)
    m.add_argument("--class", dest="class_", nargs="+", default=None, metavar="CLASS",
                   help="classes to generate, by index or name, several allowed (default: all)")
    m.add_argument("--steps", "--num-inference-steps", dest="steps", type=int, default=None,
                   help="DDIM steps of sampling and inversion (default: the model's)")
    m.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance (default: the model's)")
    m.add_argument("--batch-size", type=int, default=16, help="images per model call")
    m.add_argument("--quiet", action="store_true", help="no progress bar or notes")
    p.set_defaults(func=run)


def _classes(values) -> list[str] | None:
    """--class values, comma lists split: ['3', 'Sandal']."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def prior_destination(out: str | None, ref: str, model) -> Path:
    """The file --out names: 'model' -> the model's own prior file (``model.prior_path``)."""
    if out is None:
        return default_prior_path(ref)
    if out == "model":
        if getattr(model, "prior_path", None) is None:
            raise common.CLIError(f"{ref} has no place for its own prior; give --out FILE")
        return Path(model.prior_path)
    return Path(out).expanduser()


def run(args) -> int:
    common.check_sampling_args(args)
    settings = CalibrationSettings(  # every option checked before the model loads
        classes=_classes(args.class_), directions=args.directions, score=args.score, family=args.family, seed=args.seed,
        norms=args.norms if args.norms is not None else (QUICK["norms"] if args.quick else DEFAULT_NORMS),
        per_norm=args.per_norm if args.per_norm is not None else (QUICK["per_norm"] if args.quick else DEFAULT_PER_NORM))
    threads = None if args.threads is None else check_threads(args.threads, "--threads")
    with torch_threads(threads):
        return _calibrate(args, settings)


def _calibrate(args, settings: CalibrationSettings) -> int:
    ref = common.model_ref(args.model)
    model = common.load_for(args, ref)
    out = prior_destination(args.out, ref, model)
    if out.exists() and not args.overwrite:  # refused before any work
        raise common.CLIError(f"{out} already exists; choose another --out or pass --overwrite")
    if (out.exists() or out.is_symlink()) and not out.is_file():  # --overwrite replaces files only
        raise common.CLIError(f"{out} is not a regular file (a folder, a pipe or a broken link); --overwrite "
                              "replaces a prior file only: remove it or choose another --out")
    steps, guidance = model_sampling(model, args.steps or (min(QUICK["steps"], model.default_steps) if args.quick
                                                           else None), args.guidance_scale)
    settings = settings.replace(steps=steps, guidance=guidance)
    classes = settings.classes
    command = shlex.join(["seedspace", COMMAND, "--model", ref, *(["--class", *classes] if classes else []),
                          "--directions", settings.directions, "--norms", ",".join(f"{s:g}" for s in settings.norms),
                          "--per-norm", str(settings.per_norm), "--steps", str(settings.steps),
                          "--guidance-scale", f"{settings.guidance:g}", "--score", settings.score,
                          "--family", settings.family, "--seed", str(settings.seed), "--dtype", args.dtype])
    result = calibrate(model, settings, model_id=ref, command=command)
    if result.prior.info.get("peak_at_edge"):
        common.log.info(f"the best measured norm ({result.prior.info['best_measured_ratio']:g} sqrt(d)) is an end "
                        "of the grid: measure a wider --norms range")
    out.parent.mkdir(parents=True, exist_ok=True)
    path = save_prior(out, result.prior, overwrite=args.overwrite)
    print(f"wrote {path}: {result.prior!r}, mode {result.mode_ratio:.4f} sqrt(d) ({result.score}: "
          + ", ".join(f"{s:g}: {q:.3f}" for s, q in zip(result.norm_ratios, result.quality))
          + f"); use it with --prior {path}")
    return 0
