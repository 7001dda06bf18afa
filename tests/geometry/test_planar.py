"""Tests of the planar solver's start, stopping rules and single-pair path (seedspace.geometry.planar)."""

import math

import numpy as np
import pytest

from seedspace.geometry import ChiPrior, planar


def typical(d, n, seed=0):
    """Log-norms of n typical seed pairs in R^d and angles near pi/2."""
    rng = np.random.default_rng(seed)
    u0 = np.log(math.sqrt(d) + rng.normal(0, 0.7, n))
    um = np.log(math.sqrt(d) + rng.normal(0, 0.7, n))
    return u0, um, rng.uniform(1.4, 1.75, n)


@pytest.mark.parametrize("d", [1024, 16384, 65536])
def test_leg_start_is_the_optimum_up_to_the_grid(d):
    prior = ChiPrior(d)
    u0, um, phi = typical(d, 20)
    tau = planar.lobatto_grid(20, planar.DEFAULT_GRID)
    legs = planar.leg_profile(u0, um, tau, phi, planar.leg_table(prior))
    linear = planar.linear_profile(u0, um, tau)
    best = planar.solve(u0, um, phi, prior).energy
    gap = planar.energy(legs, tau, phi, prior) / best - 1
    assert np.all(gap >= -1e-12) and np.all(gap < 1e-6)
    assert np.all(planar.energy(linear, tau, phi, prior) / best - 1 > 10 * gap)  # the straight start is far worse


def test_leg_table_follows_beltrami():
    """Along a tabulated leg F(u) / sqrt(1 + u'^2) = F(u*): the geodesic's first integral."""
    prior = ChiPrior(4096)
    table = planar.leg_table(prior)
    u_end = np.array([prior.cheapest_log_norm - 0.05, prior.cheapest_log_norm + 0.08])
    theta = np.linspace(0.0, 0.02, 2001)
    u = prior.cheapest_log_norm + planar.leg_offsets(u_end, np.broadcast_to(theta, (2, theta.size)), table)
    slope = np.gradient(u, theta, axis=1)[:, 5:-5]
    invariant = prior.f_derivatives(u[:, 5:-5], 0)[0] / np.sqrt(1 + slope**2)
    np.testing.assert_allclose(invariant, table.f_star, rtol=2e-3)
    assert np.all(np.diff(np.abs(u - prior.cheapest_log_norm), axis=1) <= 0)  # legs approach the shell


def test_no_leg_table_without_an_interior_minimum():
    assert planar.leg_table(ChiPrior(2)) is None  # F = r w falls to 0 at the origin
    assert planar.leg_table(ChiPrior(64, 1.0, 1.5)) is None  # likewise: cheapest_log_norm is its search's bound
    u0, um, phi = np.log([0.9]), np.log([1.2]), np.array([2.0])
    assert planar.solve(u0, um, phi, ChiPrior(2)).energy[0] > 0


def test_single_pairs_match_the_batch():
    rng = np.random.default_rng(1)
    for d in (16, 1024, 65536):
        prior = ChiPrior(d)
        u0, um, phi = typical(d, 6, seed=d)
        u0[3:] += rng.uniform(-0.3, 0.3, 3)  # and some atypical norms
        batch = planar.solve(u0, um, phi, prior)
        for i in range(6):
            one = planar.solve(u0[i], um[i], phi[i], prior)
            assert one.energy[0] == pytest.approx(batch.energy[i], rel=1e-9)
            assert one.grad_phi[0] == pytest.approx(batch.grad_phi[i], rel=1e-6)


def test_both_starts_are_solved_where_they_may_lie_in_different_basins():
    """Far-inside endpoints of a wide prior at a large angle: the legs start (lower energy) leads around the shell,
    the straight one to the cheaper optimum through small norms."""
    prior = ChiPrior(16)
    u0, um, phi = np.log([0.247 * 4]), np.log([0.105 * 4]), np.array([3.14])
    tau = planar.lobatto_grid(1, planar.DEFAULT_GRID)
    legs = planar.leg_profile(u0, um, tau, phi, planar.leg_table(prior))
    linear = planar.linear_profile(u0, um, tau)
    assert planar.energy(legs, tau, phi, prior)[0] < planar.energy(linear, tau, phi, prior)[0]
    around = planar.newton(u0, um, phi, prior, tau, legs).energy[0]
    through = planar.newton(u0, um, phi, prior, tau, linear).energy[0]
    assert through < 0.97 * around
    assert planar.solve(u0, um, phi, prior).energy[0] == pytest.approx(through, rel=1e-9)


def test_a_start_optimal_to_rounding_stops_at_once():
    """At d = 65536 F's rounding noise (~3e-11 relative) exceeds what Newton can still gain from the legs start of
    norms at the mode: the solve stops instead of damping its way through rejected steps."""
    prior = ChiPrior(65536)
    assert 1e-12 < planar.rounding_noise(prior) < 1e-9
    u = np.log([256.0])
    sol = planar.solve(u, u, np.array([1.57]), prior)
    assert sol.iterations == 1
