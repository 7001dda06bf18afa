"""``seedspace evaluate``: the NAO paper's claims measured side by side on one model with one fixed judge
(implementation: :mod:`seedspace.apps.evaluation`)."""

from __future__ import annotations

COMMAND = "evaluate"


def register(subparsers, formatter_class) -> None:
    from ..apps.evaluate import add_arguments

    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="benchmark interpolation and centroid methods (norm bias, interpolation, centroids, rare concepts)",
        description="Measure, with one fixed judge (the testbed classifier, its features and real Fashion-MNIST "
                    "test images), every method side by side: 1 norm bias, 2 interpolation (lerp, slerp, cog, nao, "
                    "reference on a subset), 3 centroids (euclidean, normalized, spherical, cog, nao, reference on a "
                    "subset), 4 rare concepts (tail classes: random seeds versus centroid seeds), 5 paired bootstrap "
                    "tests (nao vs slerp, nao vs cog, ...). Writes results.json (every number and the "
                    "configuration), report.md (mean, 95% CI and n per cell) and PNGs. The default run takes about "
                    "25-30 min on 2 CPU cores; --quick about 2 min.",
        epilog="Example: seedspace evaluate --quick --out outputs/eval-quick")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..apps.evaluate import run_from_args
    from .. import outputs
    from . import common

    outputs.check_out_available(args.out)  # before the slow part
    model = common.load(common.model_ref(args.model), device=args.device)
    if not hasattr(model, "classify") or not hasattr(model, "fewshot"):
        raise common.CLIError(f"{args.model} is not a testbed-format model: evaluate needs its judge classifier and "
                              "few-shot images")
    out = outputs.allocate_run_dir(COMMAND, args.out)
    return run_from_args(args, model, out)
