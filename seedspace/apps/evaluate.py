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
                   help=f"comma-separated subset of {','.join(EXPERIMENTS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="every experiment on a small subset (~2 min on the testbed; CI)")
    p.add_argument("--out", default=None, help="results folder (default: runs/evaluate or runs/evaluate-quick)")
    p.add_argument("--model", default=None, help="testbed-format model folder (default: the embedded testbed)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--inversion-steps", type=int, default=None, help="DDIM inversion steps (default: --steps)")
    p.add_argument("--classes", default=None, help="comma-separated classes for interpolation/centroid (default: all;"
                   " --quick: first, middle, last)")
    p.add_argument("--references", default="auto", choices=["auto", "fashion-mnist", "fewshot"],
                   help="real reference images of the judge (default: auto = Fashion-MNIST test set for the testbed)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--update-readme", default=None, metavar="README",
                   help="replace the section between <!-- BEGIN seedspace-evaluate --> and <!-- END seedspace-evaluate -->")
    return p


def config_from_args(args) -> EvalConfig:
    overrides = {"experiments": parse_experiments(args.experiments), "seed": args.seed, "steps": args.steps,
                 "guidance": args.guidance, "inversion_steps": args.inversion_steps, "references": args.references}
    if args.classes:
        overrides["classes"] = tuple(int(c) for c in args.classes.split(",") if c.strip())
    return EvalConfig.quick_preset(**overrides) if args.quick else EvalConfig(**overrides)


def run_from_args(args) -> int:
    import torch

    from ..backends.base import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    out = Path(args.out or ("runs/evaluate-quick" if args.quick else "runs/evaluate"))
    model = load_model(args.model, device=args.device)

    def log(msg):
        print(f"[evaluate] {msg}", file=sys.stderr, flush=True)

    results = evaluate(model, config, out=out, log=log)
    log(f"done in {results['wall_time_s']:.0f} s: {out / 'report.md'}")
    if args.update_readme:
        if update_readme(results, args.update_readme, link=str(out / "report.md")):
            log(f"updated {args.update_readme}")
        else:
            log(f"{args.update_readme} has no <!-- BEGIN seedspace-evaluate --> ... <!-- END seedspace-evaluate --> "
                "markers; not changed")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="seedspace evaluate", description=DESCRIPTION)
    return run_from_args(add_arguments(p).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
