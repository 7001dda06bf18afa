"""`seedspace evaluate`: norm bias, interpolation, centroids, rare concepts and paired tests, every method side by
side on one model with one fixed judge (the implementation lives in :mod:`seedspace.apps.evaluation`).

    seedspace evaluate --quick --out runs/eval-quick
    seedspace evaluate --experiments norm,interpolation --model runs/testbed --seed 0 --out runs/eval
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .evaluation import (CENTROID_METHODS, EXPERIMENTS, INTERPOLATION_METHODS, EvalConfig, evaluate, parse_experiments,
                         update_readme)

__all__ = ["CENTROID_METHODS", "EXPERIMENTS", "INTERPOLATION_METHODS", "EvalConfig", "add_arguments", "evaluate",
           "main", "parse_experiments", "run_from_args"]

DESCRIPTION = ("Measure the NAO paper's claims on one model with one fixed judge: norm bias, interpolation, "
               "centroids, rare concepts, paired bootstrap tests. Writes results.json, report.md and PNGs.")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--experiments", default="all",
                   help=f"comma-separated subset of {','.join(EXPERIMENTS)} (default: all; 'paired' alone adds "
                        "interpolation and centroid, whose per-item results it compares)")
    p.add_argument("--quick", action="store_true",
                   help="every experiment on a small subset (~2 min on the testbed; what CI runs)")
    p.add_argument("--out", default=None, help="results folder, must not exist (default: outputs/evaluate-NNNNN)")
    p.add_argument("--model", default="testbed", help="'testbed' (the embedded model) or a testbed-format folder")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--inversion-steps", type=int, default=None, help="DDIM inversion steps (default: --steps)")
    p.add_argument("--classes", default=None, help="comma-separated classes for interpolation and centroid "
                   "(default: all; with --quick: first, middle and last)")
    p.add_argument("--references", default="auto", choices=["auto", "fashion-mnist", "fewshot"],
                   help="the judge's real reference images (default: auto = the Fashion-MNIST test set minus the "
                        "few-shot images for the testbed, else the few-shot images)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps", "auto"], help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--update-readme", default=None, metavar="README",
                   help="replace the section between <!-- BEGIN seedspace-evaluate --> and <!-- END seedspace-evaluate -->"
                        " of this file with the report")
    p.add_argument("--quiet", action="store_true", help="no progress notes")
    return p


def config_from_args(args) -> EvalConfig:
    overrides = {"experiments": parse_experiments(args.experiments), "seed": args.seed, "steps": args.steps,
                 "guidance": args.guidance, "inversion_steps": args.inversion_steps, "references": args.references}
    if args.classes:
        try:
            overrides["classes"] = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            raise ValueError(f"--classes must be comma-separated class indices, got {args.classes!r}") from None
    return EvalConfig.quick_preset(**overrides) if args.quick else EvalConfig(**overrides)


def run_from_args(args, model, out: Path) -> int:
    """Run an evaluation for parsed arguments with a loaded model into an (existing, empty) folder."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    if config.classes is not None:
        bad = [c for c in config.classes if not 0 <= c < len(model.class_names)]
        if bad:
            raise ValueError(f"--classes {bad} out of range 0..{len(model.class_names) - 1}")

    def log(msg):
        if not getattr(args, "quiet", False):
            print(f"seedspace: evaluate: {msg}", file=sys.stderr, flush=True)

    results = evaluate(model, config, out=out, log=log)
    print(f"wrote {out / 'report.md'} ({results['wall_time_s']:.0f} s)")
    if args.update_readme:
        if update_readme(results, args.update_readme, link=str(out / "report.md")):
            log(f"updated {args.update_readme}")
        else:
            raise ValueError(f"{args.update_readme} has no <!-- BEGIN seedspace-evaluate --> ... "
                             "<!-- END seedspace-evaluate --> markers; it was not changed (the results are in "
                             f"{out})")
    return 0


def main(argv=None) -> int:
    """``python -m seedspace.apps.evaluate ...`` = ``seedspace evaluate ...``."""
    from ..cli.main import main as cli_main

    return cli_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
