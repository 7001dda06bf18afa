"""``seedspace testbed train``: a complete testbed folder from Fashion-MNIST or the user's labelled images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..checks import DTYPE_CHOICES
from ..hardware import torch_threads
from ..testbed.recipe import IMAGE_SIZES, OBJECTIVES, UNET_CHANNELS
from . import common

COMMAND = "testbed"
DATA_OPTION = "data"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="testbed tools: `seedspace testbed train` trains a testbed on Fashion-MNIST or your labelled images",
        description="`seedspace testbed train` writes a complete testbed folder in the embedded model's format "
                    "(class-conditional pixel UNet, judge, encoder, few-shot images and test references held out of "
                    "training, the long-tailed training split, testbed.json, MODEL_CARD.md): `--model FOLDER` then "
                    "works with every command. A progress bar shows the steps, the loss and the time left; a "
                    "checkpoint is written every --checkpoint-every steps and on Ctrl-C, and --resume continues to "
                    "the same weights as an uninterrupted run.",
        epilog="Example: seedspace testbed train --data digits.npz --out runs/digits --imbalance 10 --fewshot 20 "
               "--test-references 40 --steps 3000")
    p.add_argument("action", choices=["train"], help="what to do")
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, metavar="PATH",
                   help="a folder of class sub-folders of images, or an .npz with 'images' (N, H, W[, 3]) and "
                        "'labels' (optional 'classes', 'test_images', 'test_labels'); colour becomes grey, sizes "
                        "other than 28x28 are resized to 32x32 (default: Fashion-MNIST from the Debian package)")
    g.add_argument("--out", default="runs/testbed", help="the testbed folder to write (must not exist, unless --resume)")
    g.add_argument("--resume", action="store_true",
                   help="continue the unfinished training in --out with its recorded settings and data")
    g.add_argument("--imbalance", type=float, default=100.0,
                   help="long-tail ratio of the diffusion training split, head count / tail count; 1 = all images")
    g.add_argument("--fewshot", type=int, default=100, help="few-shot images per class, held out of training")
    g.add_argument("--test-references", type=int, default=100,
                   help="test reference images per class, held out of training (a data set with a test split keeps "
                        "all of its other test images)")
    g.add_argument("--seed", type=int, default=0, help="seed of the held-out split, the initialisation and the noise")
    g.add_argument("--exposure", default=None, metavar="N|full|NAME=N,...",
                   help="generator exposure: how many images of each tail class of the long-tailed split the "
                        "diffusion model sees (0: none, the class only through the null condition; 'full': all), "
                        "or per class, NAME=N,NAME=N (these classes become the tail). The unseen images of those "
                        "classes are kept as real images the generator never saw (the benchmark's oracle). Nested: "
                        "exposure 5's images are among exposure 20's (default: no limit)")
    g.add_argument("--exposure-file", default=None, metavar="FILE",
                   help="per-class exposure as a JSON object {\"class name\": count or \"full\"} (instead of --exposure)")
    t = p.add_argument_group("training")
    t.add_argument("--objective", default="epsilon", choices=OBJECTIVES,
                   help="epsilon: DDPM noise prediction (the embedded testbed); flow: rectified-flow velocity "
                        "prediction, sampled with flow-matching Euler (the testbed-flow model)")
    t.add_argument("--steps", type=int, default=4000, help="diffusion training steps")
    t.add_argument("--batch-size", type=int, default=128, help="diffusion batch size")
    t.add_argument("--lr", type=float, default=1e-3, help="diffusion peak learning rate (warm-up, then cosine decay)")
    t.add_argument("--image-size", type=int, default=32, choices=IMAGE_SIZES,
                   help="UNet resolution (the judge and the stored images stay 32x32; smaller is for quick tests)")
    t.add_argument("--channels", default=",".join(map(str, UNET_CHANNELS)), help="UNet channels per level, comma-separated")
    t.add_argument("--classifier-epochs", type=int, default=4, help="epochs of the judge and of the encoder")
    t.add_argument("--skip-judge", action="store_true",
                   help="no judge (then `seedspace evaluate` cannot run on the folder)")
    t.add_argument("--skip-encoder", action="store_true", help="no encoder (SeedSelect then uses the judge's features)")
    t.add_argument("--skip-calibrate", action="store_true",
                   help="no norm prior: by default the finished model is calibrated (`seedspace calibrate` with its "
                        "defaults, a few minutes) and its prior.json written into the folder, which --prior model "
                        "(every command's default) then uses")
    t.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    t.add_argument("--dtype", default="auto", choices=tuple(d for d in DTYPE_CHOICES if d != "float16"),  # bf16 autocast or none
                   help="training precision: bfloat16 autocast or float32; auto = bfloat16 where the CPU computes it "
                        "natively (AMX or AVX-512 BF16), else float32 (emulated bf16 is many times slower)")
    t.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads of every stage (default: torch's count; recorded, and kept on --resume: "
                        "the count can change the last bit of the weights)")
    t.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    t.add_argument("--allow-large", action="store_true",
                   help="train even when the recipe's estimated memory (weights, optimiser, activations) is over "
                        "8 GiB (refused without it)")
    s = p.add_argument_group("the model's defaults")
    s.add_argument("--name", default=None, help="model name in testbed.json (default: the folder's name)")
    s.add_argument("--default-steps", type=int, default=50, help="DDIM steps the model samples with by default")
    s.add_argument("--default-guidance", type=float, default=2.0, help="guidance scale the model samples with by default")
    p.set_defaults(func=run)


def run(args) -> int:
    # the training stack (diffusers, the recipes) takes seconds to import: only for this command
    from ..testbed.build import RECORD, TestbedRecipe, recorded_recipe, train_testbed

    options = recipe_options(args)
    data = args.data
    if args.resume:
        recorded, recorded_data = recorded_recipe(args.out)
        given = set(getattr(args, "given_options", []))
        given |= {"exposure"} if "exposure_file" in given else set()
        options = {k: v for k, v in options.items() if _option_of(k) in given}
        options = {**recorded.to_record(), **options}
        data = args.data if DATA_OPTION in given else recorded_data
    recipe = TestbedRecipe.from_record(options)
    try:
        out = train_testbed(args.out, data, recipe, resume=args.resume, checkpoint_every=args.checkpoint_every,
                            allow_large=args.allow_large)
    except KeyboardInterrupt:
        if (Path(args.out) / RECORD).is_file():
            print(f"seedspace: training stopped; continue it with `seedspace testbed train --out {args.out} --resume`",
                  file=sys.stderr)
        raise
    recipe = recorded_recipe(out)[0]
    if recipe.calibrate:
        with torch_threads(recipe.threads):
            calibrate_into_folder(out, args)
    print(f"wrote {out}: a testbed folder (testbed.json, MODEL_CARD.md); use it with --model {out}", file=sys.stdout)
    return 0


def calibrate_into_folder(folder: Path, args) -> None:
    """The trained model's norm prior (``seedspace calibrate`` with its defaults) as ``prior.json`` in its folder;
    a folder with one already (a finished run resumed) keeps it, one without judge or encoder gets a note."""
    from ..methods.calibrate import calibrate, save_prior
    from ..backends.loading import load_model

    model = load_model(folder)
    if model.prior_path.is_file():
        return
    if not model.has_features:
        common.log.info("no norm prior: the folder has neither judge nor encoder to score images with "
                        "(NAO uses chi(d) on it)")
        return
    common.log.info("calibrating the norm prior (--skip-calibrate skips it)")
    command = f"seedspace calibrate --model {folder} --out model"
    result = calibrate(model, model_id=str(folder), command=command)
    save_prior(model.prior_path, result.prior)


def recipe_options(args) -> dict:
    """The recipe fields given by the parsed options."""
    try:
        channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        raise common.CLIError(f"--channels must be comma-separated integers, e.g. 32,64,64, got {args.channels!r}") from None
    return {"exposure": exposure_option(args), "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "imbalance": args.imbalance,
            "seed": args.seed, "fewshot": args.fewshot, "test_references": args.test_references,
            "image_size": args.image_size, "channels": channels, "judge": not args.skip_judge,
            "encoder": not args.skip_encoder, "classifier_epochs": args.classifier_epochs,
            "default_steps": args.default_steps, "default_guidance": args.default_guidance, "name": args.name,
            "objective": args.objective, "bf16": args.dtype == "bfloat16", "calibrate": not args.skip_calibrate,
            "threads": args.threads}


def exposure_option(args):
    """The recipe's exposure from --exposure or --exposure-file (ValueError naming the flag)."""
    from ..testbed.recipe import parse_exposure

    if args.exposure is not None and args.exposure_file is not None:
        raise common.CLIError("give --exposure or --exposure-file, not both")
    if args.exposure_file is None:
        return None if args.exposure is None else parse_exposure(args.exposure)
    try:
        table = json.loads(Path(args.exposure_file).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise common.CLIError(f"--exposure-file {args.exposure_file}: cannot read it as JSON "
                              f"({' '.join(str(exc).split())})") from None
    if not isinstance(table, dict) or not table:
        raise common.CLIError(f"--exposure-file {args.exposure_file} must hold a JSON object of class name -> count")
    return tuple(table.items())


def _option_of(field: str) -> str:
    """The parser destination that sets a recipe field (--exposure-file sets the exposure as well)."""
    return {"judge": "skip_judge", "encoder": "skip_encoder", "calibrate": "skip_calibrate", "bf16": "dtype"}.get(field, field)
