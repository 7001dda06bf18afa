"""The tabulated NAO distance for chi(d) at high d (narrow shell): envelope, bound, fallback, and the solver it uses."""

import math
import warnings

import numpy as np
import pytest
import torch

import seedspace as ss
from seedspace.geometry import distances, planar
from seedspace.geometry.distance_table import TABLE_RTOL, DistanceTable, shell_leg_cost, table_for

torch.set_num_threads(1)


def seed_box(prior, sigmas=5.0):
    """Log-norm range of N(0, I) seeds: mean +- ``sigmas`` std of chi(d)."""
    return math.log(prior.mean - sigmas * prior.std), math.log(prior.mean + sigmas * prior.std)


def test_solver_resolves_the_bends_into_the_shell():
    # chi(16384): endpoints 3 std out, the geodesic dives into the shell (width ~0.006 rad) and back; with arc-length
    # adaptation alone grid 128 was 6e-3 above the converged distance (one piece per bend)
    prior = ss.ChiPrior(16384)
    u = np.full(3, math.log(prior.mean + 3 * prior.std))
    phi = np.array([1.1, 1.2, 1.3])
    coarse = planar.solve(u, u, phi, prior).energy
    fine = planar.solve(u, u, phi, prior, grid=1024).energy
    assert np.all(np.abs(coarse - fine) / fine < 1e-4)


def test_distance_is_the_shell_envelope_at_large_angles():
    # D = A(u_a) + A(u_b) + F* phi up to exp(-sqrt(2) phi / x0), x0 ~ 0.006 rad: equal to the solver's accuracy
    prior = ss.ChiPrior(16384)
    rng = np.random.default_rng(3)
    ua, ub = rng.uniform(*seed_box(prior), (2, 40))
    phi = rng.uniform(0.3, 1.9, 40)
    f_star = prior.f_derivatives(np.array(prior.cheapest_log_norm), 0)[0]
    shell = shell_leg_cost(prior, ua) + shell_leg_cost(prior, ub) + f_star * phi
    exact = planar.solve(ua, ub, phi, prior).energy
    assert np.all(np.abs(exact / shell - 1) < 1e-4)
    # A is smooth through the shell: zero there, quadratic on both sides
    us = prior.cheapest_log_norm
    h = np.array([1e-4, 2e-4])
    left, right = shell_leg_cost(prior, us - h), shell_leg_cost(prior, us + h)
    assert shell_leg_cost(prior, np.array([us]))[0] == 0
    assert np.allclose(right[1] / right[0], 4, rtol=1e-2) and np.allclose(left / right, 1, rtol=1e-2)


@pytest.mark.parametrize("d", [1024, 4096, 16384])
def test_table_meets_the_bound_over_seed_norms(d):
    prior = ss.ChiPrior(d)
    lo, hi = seed_box(prior)
    phi_range = (0.3, math.pi / 2 + 0.3)  # angles between N(0, I) seeds and between DDIM inversions
    table = table_for(prior, np.exp([lo, hi]), planar.DEFAULT_GRID, phi_range)
    assert table.ok and table.envelope == "shell"
    assert table.u_lo <= lo and table.u_hi >= hi and table.phi_lo <= 0.3 and table.phi_hi >= phi_range[1]
    rng = np.random.default_rng(11)  # fresh points, not the table's check points
    ua, ub = rng.uniform(lo, hi, (2, 60))
    phi = rng.uniform(*phi_range, 60)
    exact = planar.solve(ua, ub, phi, prior).energy
    got = table.evaluate(*(torch.from_numpy(v) for v in (ua, ub, phi))).numpy()
    assert np.max(np.abs(got - exact) / exact) <= TABLE_RTOL


def test_pairwise_table_on_high_dimensional_seeds():
    gen = torch.Generator().manual_seed(5)
    X, Y = torch.randn(24, 16384, generator=gen), torch.randn(16, 16384, generator=gen)
    exact = ss.pairwise_distances(X, Y, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: the table meets its bound
        fast = ss.pairwise_distances(X, Y, method="table")
    assert torch.max(torch.abs(fast - exact) / exact) <= TABLE_RTOL


def test_table_missing_its_bound_warns_and_solves_exactly(monkeypatch):
    def coarse_table(prior, norms, grid, phi_range):  # 2 x 2 x 2 nodes over all angles cannot reach 1e-3
        u = np.log(norms)
        return DistanceTable(prior, float(u.min()), float(u.max()), grid, 0.0, math.pi, sizes=((2, 2),))

    monkeypatch.setattr(distances, "table_for", coarse_table)
    gen = torch.Generator().manual_seed(6)
    X, Y = torch.randn(6, 64, generator=gen, dtype=torch.float64), torch.randn(5, 64, generator=gen, dtype=torch.float64)
    with pytest.warns(UserWarning, match="reaches only"):
        fast = ss.pairwise_distances(X, Y, method="table")
    assert torch.allclose(fast, ss.pairwise_distances(X, Y, method="exact"), rtol=1e-12)
