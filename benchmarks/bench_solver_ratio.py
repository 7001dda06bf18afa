"""NAO interpolation time as a ratio to SLERP's, in one run: the solver before (uniform grid of 128 with adaptation
rounds) and now (Chebyshev-Lobatto grid of 192, adaptation only for very uneven grids), median of ``--repeats``.

    python benchmarks/bench_solver_ratio.py --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time

import torch

from seedspace.geometry import interpolate, planar
from seedspace.hardware import cpu_model


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


@contextlib.contextmanager
def previous_solver():
    """The solver as it was: a uniform initial grid, adapted whenever its monitor is 3x uneven (grid 128 is passed
    by the caller)."""
    grid, uneven = planar.lobatto_grid, planar._UNEVEN
    planar.lobatto_grid, planar._UNEVEN = planar.uniform_grid, 3.0
    try:
        yield
    finally:
        planar.lobatto_grid, planar._UNEVEN = grid, uneven


def compare(label: str, a, b, repeats: int, **kwargs) -> None:
    slerp = median_ms(lambda: interpolate(a, b, 50, "slerp", **kwargs), repeats)
    with previous_solver():
        before = median_ms(lambda: interpolate(a, b, 50, "nao", grid=128, **kwargs), repeats)
    now = median_ms(lambda: interpolate(a, b, 50, "nao", **kwargs), repeats)
    print(f"| {label} | {slerp:.2f} | {before:.2f} ({before / slerp:.2f}x) | {now:.2f} ({now / slerp:.2f}x) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=31, help="calls per single-pair timing (batched: 3)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_model()}, {args.threads} torch threads, 50 points per path, median ms\n")
    print("| case | slerp | nao before (ratio) | nao now (ratio) |\n|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for d in (16384, 65536):
        a, b = torch.randn(2, d, generator=gen)
        compare(f"typical pair, d = {d}", a, b, args.repeats)
        scale = math.sqrt(d)
        compare(f"atypical pair (0.9 and 1.1 sqrt(d)), d = {d}", a / a.norm() * 0.9 * scale,
                b / b.norm() * 1.1 * scale, args.repeats)
    a, b = torch.randn(2, 1000, 16384, generator=gen)
    compare("1000 batched pairs, d = 16384", a, b, 3, batched=True)


if __name__ == "__main__":
    main()
