"""`seedspace evaluate` as a library call: norm bias, interpolation, centroids, rare concepts and paired tests,
every method side by side on one model with one fixed judge (implementation: :mod:`seedspace.apps.evaluation`;
the command line: :mod:`seedspace.cli.cmd_evaluate`).

    from seedspace.apps.evaluate import EvalConfig, evaluate
    results = evaluate(model, EvalConfig.quick_preset(), out="runs/eval-quick")
"""

from __future__ import annotations

from .evaluation import (CENTROID_METHODS, EXPERIMENTS, INTERPOLATION_METHODS, EvalConfig, evaluate, parse_experiments,
                         update_results_page)

__all__ = ["CENTROID_METHODS", "EXPERIMENTS", "INTERPOLATION_METHODS", "EvalConfig", "evaluate", "parse_experiments",
           "update_results_page"]
