"""Benchmark of the seed-space geometry core: time and true NAO energy of every method.

    python benchmarks/bench_geometry.py            # full run (the published optimisation takes minutes)
    python benchmarks/bench_geometry.py --quick    # skip the reference (published) method
    python benchmarks/bench_geometry.py --only blend   # one section (interpolation, centroid, blend, batched, priors,
                                                   # table, pairwise)

Prints Markdown tables.  Energies are the true line integrals ``int w(|x|) ds`` of the returned
polylines (``path_energy``), so all methods are compared on the same footing; lower is better.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import time

import numpy as np
import torch

from seedspace.geometry import (ChiPrior, NormPrior, blend, centroid, centroid_objective, distance, interpolate,
                                path_energy)


SECTIONS = ("interpolation", "centroid", "blend", "batched", "priors", "table", "pairwise")


def timed(fn, repeats: int):
    """(median seconds, last result) over ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        out = None
        gc.collect()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def pair(gen: torch.Generator, d: int, scales=None):
    a, b = torch.randn(2, d, generator=gen)
    if scales is not None:
        a = a / a.norm() * scales[0] * math.sqrt(d)
        b = b / b.norm() * scales[1] * math.sqrt(d)
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the (slow) reference method")
    parser.add_argument("--d", type=int, default=16384, help="seed dimension (default 16384 = 4x64x64)")
    parser.add_argument("--steps", type=int, default=50, help="points per path")
    parser.add_argument("--k", type=int, default=5, help="seeds per centroid")
    parser.add_argument("--pairs", type=int, default=1000, help="pairs in the batched run (0 to skip)")
    parser.add_argument("--matrix", type=int, default=10_000, help="rows and columns of the pairwise section")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per timing (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", nargs="*", default=SECTIONS, choices=SECTIONS, help="sections to run (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    d, n = args.d, args.steps
    gen = torch.Generator().manual_seed(0)

    print("## seedspace geometry benchmark\n")
    print(f"- machine: `{platform.platform()}`, processor `{platform.processor() or platform.machine()}`, "
          f"os.cpu_count() = {os.cpu_count()}, torch threads = {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"- d = {d}, n = {n} points per path, float32 seeds on the CPU; time = median of {args.repeats} runs "
          "(reference: 1 run); energy = `path_energy` of the returned polyline (lower is better)\n")

    if "interpolation" in args.only:
        interpolation_section(args, gen)
    if "centroid" in args.only:
        centroid_section(args, gen)
    if "blend" in args.only:
        blend_section(args)
    if "batched" in args.only and args.pairs:
        batched_section(args, gen)
    if "priors" in args.only:
        priors_section(args)
    if "table" in args.only:
        table_section(args)
    if "pairwise" in args.only:
        pairwise_section(args)


def interpolation_section(args, gen) -> None:
    d, n = args.d, args.steps
    methods = ["nao", "slerp", "cog", "lerp"] if args.quick else ["reference", "nao", "slerp", "cog", "lerp"]
    cases = {"typical (N(0, I) endpoints)": pair(gen, d), "atypical (norms 0.9 and 1.1 sqrt(d))": pair(gen, d, (0.9, 1.1))}
    print("### Interpolation\n")
    print("| endpoints | method | time (ms) | energy | energy / NAO distance |")
    print("|---|---|---:|---:|---:|")
    for name, (a, b) in cases.items():
        exact = distance(a, b)
        for method in methods:
            reps = 1 if method == "reference" else args.repeats
            secs, path = timed(lambda: interpolate(a, b, steps=n, method=method), reps)
            e = path_energy(path)
            print(f"| {name} | {method} | {secs * 1e3:.1f} | {e:.2f} | {e / exact:.4f} |")
        print(f"| {name} | (NAO distance, exact curve) | | {exact:.2f} | 1.0000 |")



def centroid_section(args, gen) -> None:
    d, n = args.d, args.steps
    print(f"\n### Centroid of k = {args.k} seeds\n")
    print("| method | time (ms) | objective sum_i dist(c, x_i) + w(abs c) | abs(c) / sqrt(d-1) |")
    print("|---|---:|---:|---:|")
    X = torch.randn(args.k, d, generator=gen)
    mode = ChiPrior(d).mode
    cmethods = ["nao", "euclidean", "normalized", "spherical", "cog"] + ([] if args.quick else ["reference"])
    for method in cmethods:
        reps = 1 if method == "reference" else args.repeats
        secs, c = timed(lambda: centroid(X, method=method, steps=n), reps)
        print(f"| {method} | {secs * 1e3:.1f} | {centroid_objective(X, c):.3f} | {float(c.norm()) / mode:.4f} |")



def blend_section(args) -> None:
    """Weighted NAO blends (own generator: the same data whichever sections run)."""
    gen = torch.Generator().manual_seed(1)
    print("\n### Weighted blend (`ss.blend`), objective sum_i w_i dist(c, x_i)^2\n")
    print("| k | method | time (ms) | objective | abs(c) / sqrt(d-1) |")
    print("|---|---|---:|---:|---:|")
    mode = ChiPrior(args.d).mode
    for k in (2, args.k):
        X = torch.randn(k, args.d, generator=gen)
        w = torch.rand(k, generator=gen) + 0.1
        w = w / w.sum()
        secs, c = timed(lambda: blend(X, w), args.repeats)
        mean = w @ X
        for name, point, t in (("nao blend", c, f"{secs * 1e3:.1f}"), ("weighted mean", mean, "")):
            objective = sum(float(wi) * float(distance(point, x)) ** 2 for wi, x in zip(w, X))
            print(f"| {k} | {name} | {t} | {objective:.1f} | {float(point.norm()) / mode:.4f} |")


def batched_section(args, gen) -> None:
    d, n = args.d, args.steps
    print(f"\n### Batched interpolation: {args.pairs} pairs, d = {d}, {n} steps "
          f"(output {args.pairs * d * n * 4 / 2**30:.1f} GiB float32)\n")
    print("| method | time (s) | mean energy |")
    print("|---|---:|---:|")
    A = torch.randn(args.pairs, d, generator=gen)
    B = torch.randn(args.pairs, d, generator=gen)
    for method in ("nao", "slerp"):
        secs, paths = timed(lambda: interpolate(A, B, steps=n, method=method, batched=True), 2)
        energy = float(path_energy(paths, batched=True).mean())
        del paths
        print(f"| {method} | {secs:.2f} | {energy:.2f} |")
    gc.collect()


def pairwise_section(args) -> None:
    """A --matrix x --matrix NAO distance matrix (tabulated) against torch.cdist of the same float32 seeds: the first
    call builds the table (cached per prior and range), the second reuses it; and the largest relative error over
    300 pairs against the exact solver."""
    from seedspace.geometry import pairwise_distances

    n, d = args.matrix, args.d
    gen = torch.Generator().manual_seed(3)
    X, Y = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    first = timed(lambda: pairwise_distances(X, Y, method="table"), 1)[0]  # its matrix is dropped at once
    nao, D = timed(lambda: pairwise_distances(X, Y, method="table"), 1)
    euclid, _ = timed(lambda: torch.cdist(X, Y), 1)
    idx = torch.randint(0, n, (300, 2), generator=gen)
    exact = distance(X[idx[:, 0]], Y[idx[:, 1]], batched=True)
    err = float(((D[idx[:, 0], idx[:, 1]] - exact).abs() / exact).max())
    print(f"\n### NAO distance matrix {n} x {n}, d = {d} (float32 seeds)\n")
    print("| what | time (s) | / cdist |")
    print("|---|---:|---:|")
    print(f"| NAO, tabulated, first call (builds the table) | {first:.2f} | {first / euclid:.2f} |")
    print(f"| NAO, tabulated, table cached | {nao:.2f} | {nao / euclid:.2f} |")
    print(f"| torch.cdist (Euclidean) | {euclid:.2f} | 1.00 |")
    print(f"\nlargest relative error against the exact solver (300 random pairs): {err:.1e}")


def table_section(args) -> None:
    """The tabulated NAO distance (DistanceTable) against the exact solver, per prior, norm range and angles: the
    table's own check (256 points) and 300 fresh uniform points of its box; the build's CPU time."""
    from seedspace.geometry import planar
    from seedspace.geometry.distance_table import DistanceTable, table_for

    def seeds_box(prior, n):  # the box pairwise_distances takes for n N(0, I) seeds: their norms and sampled angles
        gen = torch.Generator().manual_seed(4)
        X = torch.randn(n, prior.d, generator=gen, dtype=torch.float64)
        norms = X.norm(dim=1)
        cos = (X[:64] @ X.T) / norms[:64, None] / norms[None, :]
        phi = torch.arccos(cos.clamp(-1, 1))
        phi = phi[phi > 1e-3]
        table = table_for(prior, norms.numpy(), planar.DEFAULT_GRID, (float(phi.min()) * 0.9, float(phi.max()) * 1.1))
        return table, f"norms of {n} N(0, I) seeds ({float(norms.min()):.1f}-{float(norms.max()):.1f})"

    def sigmas(prior, k):
        return prior.mean - k * prior.std, prior.mean + k * prior.std

    chi, root = ChiPrior(16384), math.sqrt(16384)
    rows = [(ChiPrior(d), "mean +- 5 std", sigmas(ChiPrior(d), 5), (0.3, math.pi / 2 + 0.3)) for d in (1024, 4096, 16384)]
    rows += [(chi, "mean +- 5 std", sigmas(chi, 5), (0.1, math.pi)),
             (chi, "0.85-1.1 sqrt(d)", (0.85 * root, 1.1 * root), (0.4, 1.8)),
             (ChiPrior(784), "0.8-1.2 sqrt(d)", (0.8 * 28, 1.2 * 28), (0.4, 1.8)),
             (ChiPrior(784, 1.5, 196.0), "0.8-1.2 sqrt(d)", (0.8 * 28, 1.2 * 28), (0.4, 1.8)),
             (ChiPrior(16384, 1.5, 4096.0), "0.85-1.1 sqrt(d)", (0.85 * root, 1.1 * root), (0.4, 1.8)),
             (ChiPrior(64), "mode +- 5%", (ChiPrior(64).mode * 0.95, ChiPrior(64).mode * 1.05), (0.4, 2.0)),
             (chi, None, None, None)]
    print("\n### Tabulated NAO distances against the exact solver\n")
    print("| prior | norms | angles | envelope | nodes (u x u x phi) | build CPU (s) | checked | fresh max | fresh median |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(5)
    for prior, what, radii, phis in rows:
        start = time.process_time()
        if what is None:
            table, what = seeds_box(prior, 2000)
            phis = (table.phi_lo, table.phi_hi)
        else:
            what = f"{what} ({radii[0]:.1f}-{radii[1]:.1f})"
            table = DistanceTable(prior, math.log(radii[0]), math.log(radii[1]), planar.DEFAULT_GRID, *phis)
        build = time.process_time() - start
        ua, ub = rng.uniform(table.u_lo, table.u_hi, (2, 300))
        phi = rng.uniform(table.phi_lo, table.phi_hi, 300)
        exact = planar.solve(ua, ub, phi, prior).energy
        got = table.evaluate(*(torch.from_numpy(v) for v in (ua, ub, phi))).numpy()
        err = np.abs(got - exact) / exact
        n_u, _, n_phi = table.coef.shape
        print(f"| {prior!r} | {what} | {phis[0]:.2f}-{phis[1]:.2f} | {table.envelope} | {n_u} x {n_u} x {n_phi} | "
              f"{build:.1f} | {table.error:.1e} | {err.max():.1e} | {np.median(err):.1e} |")


class TabulatedChi(ChiPrior):
    """A scaled chi through the generic code paths (tabulated primitive): stands for a density without closed forms."""

    f_derivatives = NormPrior.f_derivatives
    primitive_difference = NormPrior.primitive_difference

    def __repr__(self):
        return "tabulated " + super().__repr__()


def priors_section(args) -> None:
    """Every prior: interpolation time against chi's, the 50-point path's energy and the exact distance against the
    optimum (the distance on a 16x finer solver grid), for endpoints at 0.93 sqrt(d) (own generator)."""
    d, n = args.d, args.steps
    gen = torch.Generator().manual_seed(2)
    a, b = pair(gen, d, (0.93, 0.93))
    priors = [ChiPrior(d), ChiPrior(d, 0.93), ChiPrior(d, 1.2, d / 2), TabulatedChi(d, 0.93)]
    print(f"\n### Norm priors: endpoints at 0.93 sqrt(d), {n} points\n")
    print("| prior | time (ms) | time / chi | path energy / distance | distance / optimum |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for prior in priors:
        secs, path = timed(lambda: interpolate(a, b, steps=n, prior=prior), args.repeats)
        base = secs if base is None else base
        exact = distance(a, b, prior=prior)
        optimum = distance(a, b, prior=prior, grid=2048)
        print(f"| {prior!r} | {secs * 1e3:.1f} | {secs / base:.2f} | {path_energy(path, prior=prior) / exact:.4f} | "
              f"{exact / optimum:.5f} |")


if __name__ == "__main__":
    main()
