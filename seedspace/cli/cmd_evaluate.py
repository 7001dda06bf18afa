"""``seedspace evaluate``: the NAO paper's claims measured side by side on one model with one fixed judge
(implementation: :mod:`seedspace.evaluation`).

    seedspace evaluate --quick --out runs/eval-quick
    seedspace evaluate --experiments norm,interpolation --model runs/testbed --seed 0 --out runs/eval
    seedspace evaluate --experiments priors --prior-file prior.json --out runs/eval-priors
    seedspace evaluate --experiments schedulers --out runs/eval-samplers
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path


from .. import checks, outputs
from ..evaluation import (EXPERIMENTS, EvalConfig, PriorsEvalSettings, check_config, check_retabulable, evaluate,
                          parse_experiments, update_results_page)
from ..evaluation.longtail import check_longtail
from ..evaluation.longtail_settings import ORDERS, FewshotSettings, LongtailSettings
from ..evaluation.report import has_markers, results_targets
from ..geometry import FIT_FAMILIES
from ..hardware import torch_threads
from ..runs import read_record
from . import common

COMMAND = "evaluate"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="benchmark interpolation and centroid methods (norm bias, interpolation, centroids, rare concepts)",
        description="Measure, with one fixed judge (the testbed classifier, its features and real Fashion-MNIST "
                    "test images shipped with the package), every method side by side: 1 norm bias, 2 interpolation "
                    "(lerp, slerp, cog, nao, reference on a subset), 3 centroids (euclidean, normalized, spherical, "
                    "cog, nao, reference on a subset), 4 rare concepts (tail classes: random seeds versus centroid "
                    "seeds), 5 paired bootstrap tests (nao vs slerp, nao vs cog, ...). Writes results.json (every "
                    "number and the configuration), report.md (mean, 95% CI and n per cell; FID-style and KID) and "
                    "PNGs; its wall time is in report.md (the committed run: docs/reports/evaluate/report.md). --quick runs "
                    "every experiment on fewer classes, seeds and input sets.",
        epilog="Example: seedspace evaluate --quick --out outputs/eval-quick")
    p.add_argument("--experiments", default="all",
                   help=f"comma-separated subset of {','.join(EXPERIMENTS)}; 'all' = the paper's claims (the first "
                        "five); 'benchmark' = longtail,fewshot (synthetic training data: classifiers trained per "
                        "arm, about an hour on 2 CPU cores; with --quick seconds on a tiny model); 'priors' (opt-in, "
                        "about 12-14 min on 2 CPU cores) = NAO under the chi, a fitted and a --prior-file prior "
                        "against SLERP / COG / the normalized mean (its own results section); 'schedulers' (opt-in) = "
                        "the interpolation and centroid findings under DDIM, DPM++ 2M, Euler, Heun and UniPC at equal "
                        "NFE and equal steps (about 10-15 min on 2 cores; its own results section) (default: all; "
                        "'paired' alone adds interpolation and centroid, whose per-item results it compares)")
    p.add_argument("--quick", action="store_true",
                   help="every experiment on a small subset (~2 min on the testbed; what CI runs)")
    p.add_argument("--out", default=None, help="results folder, must not exist (default: outputs/evaluate-NNNNN)")
    common.add_model_choice(p, dtype_help="weights dtype of the benchmark's synthesis (the claims run in float32, "
                            "comparable with the recorded results); auto = bfloat16 where the device computes it "
                            "natively, else float32")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--inversion-steps", type=int, default=None, help="DDIM inversion steps (default: --steps)")
    p.add_argument("--classes", default=None, help="comma-separated classes for interpolation and centroid "
                   "(default: all; with --quick: first, middle and last)")
    p.add_argument("--references", default="auto", choices=["auto", "fashion-mnist", "held-out", "fewshot"],
                   help="the judge's real reference images (default: auto = the Fashion-MNIST test set minus the "
                        "few-shot images, shipped with the package, for the testbed; a trained folder's own held-out "
                        "test references; else the few-shot images)")
    p.add_argument("--prior-file", default=None, metavar="FILE",
                   help="priors experiment: a calibrated norm prior (a prior JSON file, as `seedspace calibrate` "
                        "writes, or scaled-chi:S) for the nao-file arm (default: the model's own prior; a model without one "
                        "skips that arm with a note)")
    p.add_argument("--prior-fit", default="scaled-chi", choices=list(FIT_FAMILIES),
                   help="priors experiment: the family of the prior fitted to the inversions for the nao-fit arm "
                        "(default: scaled-chi, |x|/s ~ chi(d))")
    b = p.add_argument_group("long-tail benchmark (--experiments longtail)")
    b.add_argument("--lt-arms", default=None, help="comma-separated data arms: oversample, oracle, generator-train "
                   "(real images the generator was trained on, count-matched), random and augment's "
                   "strategy[:geometry][@prior] (prior: model, the model's own, or chi; seedselect:nao = SeedSelect "
                   "from the NAO centroid, seedselect:random = from random seeds) (default: "
                   f"{','.join(LongtailSettings.arms)})")
    b.add_argument("--lt-inversion", default=None, choices=["fixed-point", "ddim"],
                   help="how the references are inverted: fixed-point (the seeds the synthesis's own sampler, at its "
                   "steps and guidance, maps back onto them) or ddim (plain DDIM inversion at --inversion-steps) "
                   "(default: fixed-point)")
    b.add_argument("--lt-seedselect-steps", type=int, default=None,
                   help=f"SeedSelect steps of the seedselect arms (default: {LongtailSettings.seedselect_steps})")
    b.add_argument("--lt-conditions", default=None, help="class and / or unconditional, for the arms that start "
                   "from the references (default: class,unconditional)")
    b.add_argument("--lt-treatments", default=None, help="comma-separated subset of ce, la (post-hoc logit "
                   "adjustment of the ce models), cb (class-balanced resampling), bs (balanced softmax) (default: all)")
    b.add_argument("--lt-doses", default=None, help="tail (+--lt-tail-dose per medium / few-shot class) and / or "
                   "fill (every class up to --lt-head) (default: fill)")
    b.add_argument("--lt-replicates", type=int, default=None, help=f"replicates (default: {LongtailSettings.replicates})")
    b.add_argument("--lt-head", type=int, default=None, help=f"images of the largest class (default: {LongtailSettings.head})")
    b.add_argument("--lt-imbalance", type=float, default=None,
                   help=f"largest / smallest class count (default: {LongtailSettings.imbalance:g})")
    b.add_argument("--lt-tail-dose", type=int, default=None,
                   help=f"images the tail dose adds per medium / few-shot class (default: {LongtailSettings.tail_dose})")
    b.add_argument("--lt-shots", type=int, default=None, help=f"references per class (default: {LongtailSettings.shots})")
    b.add_argument("--lt-order", default=None, choices=ORDERS, help="class order of the profile: the model's own "
                   "long-tail order, or a seeded permutation (rare is then not easy) (default: model)")
    b.add_argument("--lt-test-per-class", type=int, default=None,
                   help="balanced test images per class, drawn from the model's test references; the rest join the "
                        f"pool of real images the training draws use (default: {LongtailSettings.test_per_class})")
    b.add_argument("--lt-contrasts", default=None, metavar="'A - B @ GROUP, TREATMENT[, DOSE]; ...'",
                   help="the declared contrasts, semicolon-separated, Holm-adjusted together: A and B are arms as "
                        "--lt-arms spells them (with /class or /unconditional where both run) or real, each "
                        "optionally +treatment of its own; GROUP all (balanced accuracy), many, medium or few; "
                        "DOSE default fill; e.g. 'paths:nao/class - oversample @ few, ce; random - real+bs @ all, "
                        "ce' (default: every synthetic arm - oversample @ few, ce)")
    b.add_argument("--lt-classifier-steps", type=int, default=None,
                   help=f"optimiser steps of every classifier (default: {LongtailSettings.classifier_steps})")
    f = p.add_argument_group("few-shot curve (--experiments fewshot; the profile and classifier are the long-tail "
                             "benchmark's)")
    f.add_argument("--fs-shots", default=None, help="comma-separated k: real images each few-shot class keeps "
                   f"(default: {','.join(map(str, FewshotSettings.shots))})")
    f.add_argument("--fs-arms", default=None, help="comma-separated arms that fill the few-shot classes (default: "
                   f"{','.join(FewshotSettings.arms)})")
    f.add_argument("--fs-replicates", type=int, default=None,
                   help=f"replicates: the long-tail benchmark's first draws (default: {FewshotSettings.replicates})")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--update-results", default=None, metavar="PAGE",
                   help="replace the section between <!-- BEGIN seedspace-evaluate --> and <!-- END seedspace-evaluate -->"
                        " of this file with the report (the priors experiment and the sampler study each between their "
                        "own markers: <!-- BEGIN seedspace-evaluate-priors --> ... <!-- END seedspace-evaluate-priors "
                        "-->, <!-- BEGIN seedspace-schedulers --> ... <!-- END seedspace-schedulers -->)")
    p.add_argument("--quiet", action="store_true", help="no progress notes")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted evaluation in its folder, with the settings and model of its "
                        "run.json (give no other settings; --threads, --device and --quiet may change): the finished "
                        "experiments are tabulated from the measurements they stored (the long-tail benchmark's "
                        "finished replicates are read back), the unfinished one runs again")
    p.add_argument("--retabulate", default=None, metavar="RUN_DIR",
                   help="make a finished evaluation's tables again from the measurements it stored (the judge's "
                        "scores and features of every image, the long-tail benchmark's replicates), without "
                        "generating, into a new --out folder, with the settings and model of its run.json (give no "
                        "other settings; --threads, --device, --quiet and --update-results may change)")
    p.set_defaults(func=run)
    # the settings' names in messages (LongtailSettings: 'longtail doses') -> these options (--lt-doses)
    p.setting_prefixes = {LongtailSettings.field_prefix: "lt_", FewshotSettings.field_prefix: "fs_",
                          PriorsEvalSettings.field_prefix: "prior_"}


def config_from_args(args) -> EvalConfig:
    """The evaluation's configuration from parsed arguments, every setting checked (ValueError naming it)."""
    overrides = {"experiments": parse_experiments(args.experiments), "seed": args.seed, "steps": args.steps,
                 "guidance": args.guidance, "inversion_steps": args.inversion_steps, "references": args.references}
    if args.classes:
        try:
            overrides["classes"] = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            raise ValueError(f"--classes must be comma-separated class indices, got {args.classes!r}") from None
    base = EvalConfig.quick_preset() if args.quick else EvalConfig()
    overrides["longtail"] = dataclasses.replace(base.longtail, dtype=args.dtype, **longtail_options(args))
    overrides["fewshot"] = dataclasses.replace(base.fewshot, **fewshot_options(args))
    overrides["priors"] = dataclasses.replace(base.priors, file=args.prior_file, fit=args.prior_fit)
    return dataclasses.replace(base, **overrides)


def longtail_options(args) -> dict:
    """The long-tail settings given on the command line (ValueError from the settings names the bad value)."""
    out = {}
    for name in ("arms", "conditions", "treatments", "doses"):
        text = getattr(args, f"lt_{name}")
        if text is not None:
            out[name] = tuple(v.strip() for v in text.split(",") if v.strip())
    if args.lt_contrasts is not None:
        out["contrasts"] = tuple(v.strip() for v in args.lt_contrasts.split(";") if v.strip())
    for name in ("replicates", "head", "imbalance", "tail_dose", "shots", "order", "test_per_class",
                 "classifier_steps", "inversion", "seedselect_steps"):
        if getattr(args, f"lt_{name}") is not None:
            out[name] = getattr(args, f"lt_{name}")
    return out


def fewshot_options(args) -> dict:
    """The few-shot curve's settings given on the command line."""
    out = {}
    if args.fs_shots is not None:
        try:
            out["shots"] = tuple(int(v) for v in args.fs_shots.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"--fs-shots must be comma-separated integers, got {args.fs_shots!r}") from None
    if args.fs_arms is not None:
        out["arms"] = tuple(v.strip() for v in args.fs_arms.split(",") if v.strip())
    if args.fs_replicates is not None:
        out["replicates"] = args.fs_replicates
    return out


def check_args(args, config: EvalConfig) -> None:
    """What the configuration does not hold, in range before any work: the thread count, the results page's
    markers (the configuration's own rules ran when it was made)."""
    if args.threads is not None:
        checks.check_threads(args.threads, "--threads")
    for begin, end, _ in results_targets(config.experiments) if args.update_results else ():
        if not has_markers(args.update_results, begin, end):
            raise common.CLIError(f"{args.update_results} has no {begin} ... {end} markers to replace")


def recorded(args, flag: str, allowed: tuple) -> tuple[EvalConfig, str]:
    """(configuration, model folder) of the evaluation that ``--resume`` (interrupted) or ``--retabulate``
    (completed) names; ``allowed``: the other options that may be given with it."""
    run_dir = getattr(args, flag)
    conflicting = [n for n in getattr(args, "given_options", []) if n not in (flag, *allowed)]
    if conflicting:
        raise common.CLIError(f"--{flag} takes every setting from the run's run.json; do not give " +
                              ", ".join("--" + n.replace("_", "-") for n in conflicting))
    record = read_record(run_dir, COMMAND)
    if flag == "resume" and record.get("status") == "completed":
        raise common.CLIError(f"{run_dir} is a completed evaluation: nothing to resume")
    if flag == "retabulate" and record.get("status") != "completed":
        raise common.CLIError(f"{run_dir} is an unfinished evaluation: continue it with --resume")
    try:
        return EvalConfig.from_record(record["parameters"]["config"]), record["model"]["folder"]
    except (KeyError, TypeError) as exc:
        raise checks.RecordError(f"{run_dir}/run.json: malformed record: missing {exc}") from None


def run(args) -> int:
    if args.resume:
        config, model_ref = recorded(args, "resume", ("device", "quiet", "threads"))
    elif args.retabulate:
        outputs.check_out_available(args.out)
        config, model_ref = recorded(args, "retabulate", ("out", "device", "quiet", "threads", "update_results"))
        check_retabulable(Path(args.retabulate).expanduser(), config)
    else:
        outputs.check_out_available(args.out)  # before the slow part
        config = config_from_args(args)  # a NaN guidance must not reach a linear-algebra routine an hour in
        model_ref = common.model_ref(args.model)
    check_args(args, config)
    # the experiments measure the model in float32 (the long-tail synthesis loads its own copy at --dtype)
    model = common.load(model_ref, device=args.device, dtype="float32")
    if not model.has_judge:
        raise common.CLIError(f"{args.model} has no judge classifier, which evaluate needs (a testbed folder "
                              "trained with --skip-judge, or a model that is not a testbed)")
    bad = [c for c in config.classes or () if not 0 <= c < len(model.class_names)]
    if bad:
        raise common.CLIError(f"--classes {bad} out of range 0..{len(model.class_names) - 1}")
    check_config(config, math.prod(model.seed_shape))  # a bad --prior-file before any work
    if {"longtail", "fewshot"} & set(config.experiments):
        check_longtail(model, config.longtail)  # a profile the model's data cannot give, before any work

    if args.resume:
        out = Path(args.resume).expanduser()
        with torch_threads(args.threads):
            results = evaluate(model, config, out=out, resume=True)
    else:
        with outputs.new_run_dir(COMMAND, args.out) as out, torch_threads(args.threads):
            results = evaluate(model, config, out=out, measured_in=args.retabulate)
    print(f"wrote {out / 'report.md'} ({results['wall_time_s']:.0f} s)")
    if args.update_results:
        if not update_results_page(results, args.update_results, link=str(out / "report.md")):
            raise ValueError(f"{args.update_results} lost the markers of "
                             f"{' and '.join(b for b, _, _ in results_targets(results['experiments']))} during the run; "
                             f"it was not changed (the results are in {out})")
        common.log.info(f"updated {args.update_results}")
    return 0
