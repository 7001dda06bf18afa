"""NAO interpolation time as a ratio to SLERP's, in one run: the planar solver before and now.

    python benchmarks/bench_solver_ratio.py --threads 2 --repeats 101

"before" is ``seedspace/geometry/planar.py`` as of git revision ``--before`` (default: the last commit before the
leg-table start), loaded from git and swapped in for the call, with the norm priors' solver cache emptied for each
call (that revision re-derived u* on every call) and put back after it; "now" is the working tree. (Until
2026-12-07 the cache stayed empty after a "before" call, so a "now" call after one rebuilt its tables: the "now"
times of earlier reports are too long.) The three calls of a repeat run back to
back in rotating order (paired, interleaved: the machine is shared), and the table gives the median of each and the
median of the per-repeat ratios to SLERP. A second table times the d-independent part alone (the planar solve and
sampling of one pair), before and now.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import seedspace.geometry.paths as paths_module
import seedspace.geometry.prior as prior_module
from seedspace.geometry import interpolate
from seedspace.hardware import cpu_model

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "72d6a69"


def load_solver(rev: str):
    """``seedspace.geometry.planar`` as of git revision ``rev``, as a module of the installed package."""
    source = subprocess.run(["git", "show", f"{rev}:seedspace/geometry/planar.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    name = f"seedspace.geometry._planar_{rev}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "seedspace.geometry"
    sys.modules[name] = module
    exec(compile(source, f"{rev}:seedspace/geometry/planar.py", "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def solver(module):
    """Path calls run on ``module`` (None: the working tree's solver)."""
    now = paths_module.planar
    if module is not None:
        paths_module.planar = module
    try:
        yield
    finally:
        paths_module.planar = now


@contextlib.contextmanager
def cold_caches():
    """The norm priors' solver caches empty inside the block (the old solver re-derived them on every call) and as
    they were after it, so that the current solver's calls keep the tables it built once."""
    saved = dict(prior_module._CHI_CACHES)
    prior_module._CHI_CACHES.clear()
    try:
        yield
    finally:
        prior_module._CHI_CACHES.clear()
        prior_module._CHI_CACHES.update(saved)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(label: str, a, b, repeats: int, old, **kwargs) -> None:
    def slerp():
        interpolate(a, b, 50, "slerp", **kwargs)

    def before():
        with solver(old), cold_caches():
            interpolate(a, b, 50, "nao", **kwargs)

    def now():
        interpolate(a, b, 50, "nao", **kwargs)

    calls = [slerp, before, now]
    for fn in calls:  # warm-up (the solver's tables are built here, once per density)
        fn()
    times = {fn: [] for fn in calls}
    for r in range(repeats):
        for k in range(3):
            fn = calls[(r + k) % 3]
            times[fn].append(timed(fn))
    med = {fn: statistics.median(t) * 1e3 for fn, t in times.items()}
    ratio = {fn: statistics.median(x / s for x, s in zip(times[fn], times[slerp])) for fn in (before, now)}
    print(f"| {label} | {med[slerp]:.2f} | {med[before]:.2f} ({ratio[before]:.2f}x) | {med[now]:.2f} "
          f"({ratio[now]:.2f}x) |")


def compare_solver(label: str, a, b, repeats: int, old) -> None:
    """The d-independent part alone: planar solve + 50 points of one pair, before and now, paired and interleaved."""
    from seedspace.geometry import planar
    from seedspace.geometry._frame import pair_stats

    stats = pair_stats(a[None], b[None])
    args = (np.log(stats.norm_a), np.log(stats.norm_b), stats.phi)

    def run(module, clear):
        with cold_caches() if clear else contextlib.nullcontext():
            prior = prior_module.ChiPrior(a.numel())
            sol = module.solve(*args, prior)
            module.sample(sol, 50, "euclidean", prior)
        return sol

    its = (run(old, True).iterations, run(planar, False).iterations)
    times = {True: [], False: []}
    for r in range(repeats):
        for before in ((True, False) if r % 2 else (False, True)):
            times[before].append(timed(lambda: run(old if before else planar, before)))
    b_us, n_us = (statistics.median(times[k]) * 1e6 for k in (True, False))
    print(f"| {label} | {b_us:.0f} ({its[0]}) | {n_us:.0f} ({its[1]}) | {b_us / n_us:.1f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=31, help="calls per single-pair timing (batched: --batch-repeats)")
    p.add_argument("--batch-repeats", type=int, default=5)
    p.add_argument("--before", default=BEFORE, help="git revision whose planar solver is 'before'")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    old = load_solver(args.before)
    print(f"{cpu_model()}, {args.threads} torch threads, 50 points per path, median ms of {args.repeats} paired "
          f"repeats (batched: {args.batch_repeats}); ratio = median of the per-repeat ratios to SLERP; "
          f"before = planar.py at {args.before}\n")
    print("| case | slerp | nao before (ratio) | nao now (ratio) |\n|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for d in (16384, 65536):
        a, b = torch.randn(2, d, generator=gen)
        compare(f"typical pair, d = {d}", a, b, args.repeats, old)
        scale = math.sqrt(d)
        compare(f"atypical pair (0.9 and 1.1 sqrt(d)), d = {d}", a / a.norm() * 0.9 * scale,
                b / b.norm() * 1.1 * scale, args.repeats, old)
    a, b = torch.randn(2, 1000, 16384, generator=gen)
    compare("1000 batched pairs, d = 16384", a, b, args.batch_repeats, old, batched=True)
    print("\nThe d-independent part alone (planar solve + sampling 50 points, one pair, median us; Newton iterations "
          "in brackets):\n")
    print("| case | before (iterations) | now (iterations) | speed-up |\n|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for d in (16384, 65536):
        a, b = torch.randn(2, d, generator=gen)
        compare_solver(f"typical pair, d = {d}", a, b, args.repeats, old)
        scale = math.sqrt(d)
        compare_solver(f"atypical pair, d = {d}", a / a.norm() * 0.9 * scale, b / b.norm() * 1.1 * scale,
                       args.repeats, old)


if __name__ == "__main__":
    main()
