"""Norm priors: the chi distribution of seed norms (density, moments, typical intervals, norm reports) and priors
as objects (the chi family, the tabulated primitive, fitting, records and prior= in the API)."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import seedspace as ss
from seedspace.geometry import NormPrior, norm_report, planar

torch.set_num_threads(1)
DIMS = [1, 2, 3, 10, 64, 1000, 16384]


class NumericChi(ChiPrior := ss.ChiPrior):
    """The chi family through the generic code paths only (tabulated primitive, generic F derivatives)."""

    f_derivatives = NormPrior.f_derivatives
    primitive_difference = NormPrior.primitive_difference
    _ppf = NormPrior._ppf

    def to_record(self):
        raise NotImplementedError


@pytest.mark.parametrize("d,scale,dof", [(64, 0.9, None), (784, 1.2, 300.0), (16384, 0.93, None)])
def test_chi_family_matches_scipy(d, scale, dof):
    prior = ss.ChiPrior(d, scale, dof)
    k = d if dof is None else dof
    ref = stats.chi(k, scale=scale)
    r = np.linspace(ref.mean() - 4 * ref.std(), ref.mean() + 4 * ref.std(), 9)
    np.testing.assert_allclose(prior.log_prob(r), ref.logpdf(r), rtol=1e-9)
    assert prior.mean == pytest.approx(ref.mean(), rel=1e-10)
    assert prior.std == pytest.approx(ref.std(), rel=1e-6)
    assert prior.mode == pytest.approx(scale * math.sqrt(k - 1))
    total, _ = integrate.quad(lambda v: math.exp(prior.log_prob(v)), *prior.typical_interval(1 - 1e-12),
                              points=[prior.mode])
    assert total == pytest.approx(1.0, abs=1e-8)
    assert np.all(prior.weight(r) > 0)


def test_generic_numerics_match_closed_forms():
    closed, numeric = ss.ChiPrior(784, 0.93), NumericChi(784, 0.93)
    u = np.log(closed.mode) + np.linspace(-0.3, 0.3, 41)
    for a, b in zip(closed.f_derivatives(u, 2), NormPrior.f_derivatives(closed, u, 2)):
        np.testing.assert_allclose(b, a, rtol=1e-10)
    p, q = u[:-1], u[1:] + 0.05
    np.testing.assert_allclose(numeric.primitive_difference(p, q), closed.primitive_difference(p, q), rtol=1e-12)
    # the numerical moments and quantiles of the base class
    assert NormPrior.mean.fget(closed) == pytest.approx(closed.mean, rel=1e-9)
    assert NormPrior.std.fget(closed) == pytest.approx(closed.std, rel=1e-6)
    assert numeric.typical_interval(0.99) == pytest.approx(closed.typical_interval(0.99), rel=1e-7)


def test_solver_cache_is_per_density():
    a, b = ss.ChiPrior(64), ss.ChiPrior(64)
    assert a.solver_cache is b.solver_cache  # fresh instances of one density reuse u* and the solver's tables
    assert ss.ChiPrior(64, 0.9).solver_cache is not a.solver_cache
    assert NumericChi(64).solver_cache is not a.solver_cache  # other code paths, their own tables
    u_star = a.cheapest_log_norm
    assert b.solver_cache["u_star"] == u_star
    assert abs(float(a.f_derivatives(np.array(u_star), 1)[1])) < 1e-6 * float(a.f_derivatives(np.array(u_star), 0)[0])


def test_solver_with_tabulated_primitive_is_exact():
    closed, numeric = ss.ChiPrior(4096, 0.93), NumericChi(4096, 0.93)
    rng = np.random.default_rng(0)
    m = math.log(closed.mode)
    u0, um, phi = m + rng.uniform(-0.15, 0.15, 30), m + rng.uniform(-0.15, 0.15, 30), rng.uniform(0.05, 3.0, 30)
    np.testing.assert_allclose(planar.solve(u0, um, phi, numeric).energy, planar.solve(u0, um, phi, closed).energy,
                               rtol=1e-9)


def test_solution_never_above_the_detour():
    prior = ss.ChiPrior(16384)
    m = math.log(prior.mode)
    u0, um = np.full(5, m + math.log(0.86)), np.full(5, m + math.log(0.905))
    phi = np.array([0.05, 0.1, 0.12, 0.5, 1.5])
    energy = planar.solve(u0, um, phi, prior).energy
    assert np.all(energy <= planar.detour_energy(u0, um, phi, prior) * (1 + 1e-9))
    assert np.all(np.diff(energy) > 0)  # the distance grows with the angle


def test_fit_recovers_known_scales():
    gen = torch.Generator().manual_seed(0)
    seeds = 0.9 * torch.randn(200, 1, 16, 16, generator=gen, dtype=torch.float64)
    prior = ss.fit_prior(seeds)
    assert prior.family == "scaled-chi" and prior.scale == pytest.approx(0.9, rel=0.01)
    assert ss.fit_prior(seeds, family="auto").family == "scaled-chi"  # the width test does not fire on chi data
    # norms |x| = 1.5 * chi(64) in d = 256: the width is free and recovered
    d, n = 256, 4000
    radii = 1.5 * torch.linalg.vector_norm(torch.randn(n, 64, generator=gen, dtype=torch.float64), dim=1)
    directions = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=torch.float64), dim=1)
    wide = directions * radii[:, None]
    fitted = ss.fit_prior(wide, family="auto")
    assert fitted.family == "generalized-chi"
    assert fitted.info["width_test"]["p_value"] < 1e-3
    assert fitted.dof == pytest.approx(64, rel=0.1) and fitted.scale == pytest.approx(1.5, rel=0.05)
    assert fitted.info["log_likelihood"] > ss.fit_prior(wide).info["log_likelihood"]


def test_fit_rejects_bad_seeds():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        ss.fit_prior(torch.randn(1, 16))
    with pytest.raises(ValueError, match="dimension 16, not 32"):
        ss.fit_prior(torch.randn(4, 16), d=32)
    with pytest.raises(ValueError, match="non-finite"):
        ss.fit_prior(torch.tensor([[1.0, float("nan")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="unknown prior family"):
        ss.fit_prior(torch.randn(4, 16), family="gamma")


def test_prior_specs_and_files_round_trip(tmp_path):
    assert repr(ss.load_prior("chi", 64)) == "ChiPrior(d=64)"
    assert ss.load_prior(None, 64).to_record() == {"family": "chi", "d": 64}
    assert ss.load_prior("scaled-chi:0.93", 64).scale == 0.93
    fitted = ss.fit_prior(torch.randn(50, 2, 32, generator=torch.Generator().manual_seed(3)) * 1.1,
                          family="generalized-chi")
    path = tmp_path / "prior.json"
    path.write_text(ss.prior_json(fitted))
    loaded = ss.load_prior(str(path), 64)
    assert loaded.to_record() == fitted.to_record()
    assert json.loads(path.read_text())["info"]["n"] == 50
    assert ss.load_prior(fitted, 64) is fitted
    assert ss.prior_from_record(fitted.to_record()).log_prob(8.0) == fitted.log_prob(8.0)


@pytest.mark.parametrize("spec,message", [
    ("scaled-chi:abc", "expected scaled-chi:S"),
    ("scaled-chi:-1", "scale must be a finite number > 0"),
    ("gamma", "unknown prior 'gamma'"),
    ({"family": "beta", "d": 8}, "unknown prior family"),
    ({"family": "scaled-chi", "d": 8}, "lacks scale"),
    ({"family": "scaled-chi", "d": 8, "scale": float("inf")}, "finite numbers"),
    ({"family": "chi", "d": 16}, "prior is for d=16 but the seeds have d=8"),
    ({"family": "generalized-chi", "d": 8, "scale": 0.1, "dof": 8}, "not be positive"),
    (3.5, "a prior must be"),
])
def test_bad_priors(spec, message):
    with pytest.raises(ValueError, match=message):
        ss.load_prior(spec, 8)


def test_bad_prior_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ss.load_prior(str(bad), 8)


def test_prior_keyword_moves_paths_and_centroids():
    d = 4096
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, d, generator=gen, dtype=torch.float64)
    a, b = a / a.norm() * 0.93 * math.sqrt(d), b / b.norm() * 0.93 * math.sqrt(d)
    mid_chi = ss.interpolate(a, b, steps=9)[4].norm() / math.sqrt(d)
    mid_fit = ss.interpolate(a, b, steps=9, prior="scaled-chi:0.93")[4].norm() / math.sqrt(d)
    assert mid_chi > 0.96 and abs(mid_fit - 0.93) < 0.01  # chi pulls the path up to its mode, the fit does not
    path = ss.interpolate(a, b, steps=200, prior="scaled-chi:0.93")
    exact = ss.distance(a, b, prior="scaled-chi:0.93")
    assert exact < ss.distance(a, b)
    assert 1.0 <= ss.path_energy(path, prior="scaled-chi:0.93") / exact < 1.005
    X = torch.randn(4, d, generator=gen, dtype=torch.float64) * 0.93
    c = ss.centroid(X, prior="scaled-chi:0.93")
    assert abs(float(c.norm()) / math.sqrt(d) - 0.93) < 0.01
    assert ss.centroid(X, "normalized", prior="scaled-chi:0.93").norm() == pytest.approx(0.93 * math.sqrt(d - 1))
    w = ss.blend(X[:2], [0.5, 0.5], prior="scaled-chi:0.93")
    assert abs(float(w.norm()) / math.sqrt(d) - 0.93) < 0.01
    rep = ss.norm_report(X.numpy(), prior="scaled-chi:0.93")
    assert all(not r.atypical for r in rep) and all(r.atypical for r in ss.norm_report(X.numpy()))


def test_a_narrow_fixed_width_fit_is_refused_but_the_free_width_fit_works():
    """Seeds at 0.3 sqrt(d) in d = 64: chi(64) scaled by 0.3 would have density > 1 at its mode (w = -log p < 0),
    so scaled-chi is refused; generalized-chi (and auto, which needs the free width here) still fit."""
    seeds = 0.3 * torch.randn(400, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with pytest.raises(ValueError):
        ss.fit_prior(seeds)
    for family in ("generalized-chi", "auto"):
        fitted = ss.fit_prior(seeds, family=family)
        assert fitted.family == "generalized-chi" and fitted.mode == pytest.approx(0.3 * 8, rel=0.05)


# -- the chi distribution of seed norms ------------------------------------------------------------
@pytest.mark.parametrize("d", DIMS)
def test_log_prob_integrates_to_one(d):
    prior = ChiPrior(d)
    lo, hi = max(prior.mean - 20 * prior.std, 0.0), prior.mean + 20 * prior.std
    total, _ = integrate.quad(lambda r: math.exp(prior.log_prob(r)), lo, hi, points=[prior.mode], limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("d", DIMS)
def test_matches_scipy_chi(d):
    prior = ChiPrior(d)
    ref = stats.chi(d)
    r = np.linspace(max(prior.mean - 5 * prior.std, 1e-3), prior.mean + 5 * prior.std, 7)
    np.testing.assert_allclose(prior.log_prob(r), ref.logpdf(r), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(prior.weight(r), -ref.logpdf(r), rtol=1e-9, atol=1e-9)
    assert prior.mean == pytest.approx(ref.mean(), rel=1e-10)
    assert prior.std == pytest.approx(ref.std(), rel=1e-6)
    if d > 1:
        assert prior.mode == pytest.approx(math.sqrt(d - 1))
        grid = np.linspace(prior.mode - 0.5, prior.mode + 0.5, 10001)
        assert grid[np.argmax(ref.logpdf(grid))] == pytest.approx(prior.mode, abs=1e-3)
    lo, hi = prior.typical_interval(0.99)
    assert ref.cdf(hi) - ref.cdf(lo) == pytest.approx(0.99, abs=1e-9)


@pytest.mark.parametrize("d", DIMS)
def test_weight_positive_and_derivative(d):
    prior = ChiPrior(d)
    r = np.linspace(0.01, 3 * math.sqrt(d) + 3, 500)
    assert np.all(prior.weight(r) > 0)
    h = 1e-6
    fd = (prior.weight(r + h) - prior.weight(r - h)) / (2 * h)
    np.testing.assert_allclose(prior.weight_derivative(r), fd, rtol=1e-5, atol=1e-4)


def test_input_kinds():
    prior = ChiPrior(16)
    assert isinstance(prior.log_prob(3.0), float)
    assert isinstance(prior.log_prob(np.array([3.0, 4.0])), np.ndarray)
    t = prior.weight(torch.tensor([3.0, 4.0]))
    assert isinstance(t, torch.Tensor) and t.shape == (2,)
    assert prior.log_prob(-1.0) == -math.inf
    with pytest.raises(ValueError):
        ChiPrior(0)
    with pytest.raises(ValueError):
        ChiPrior(2.5)
    with pytest.raises(ValueError):
        prior.typical_interval(1.5)


def test_zscore_and_percentile():
    d = 4096
    prior = ChiPrior(d)
    x = torch.randn(d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n = float(x.norm())
    assert prior.zscore(x) == pytest.approx((n - stats.chi(d).mean()) / stats.chi(d).std(), rel=1e-6)
    assert prior.percentile(x.numpy()) == pytest.approx(100 * stats.chi(d).cdf(n), rel=1e-9)
    assert prior.zscore(x * 1.2) > 10
    with pytest.raises(ValueError):
        prior.zscore(torch.randn(10))


def test_norm_report_flags():
    gen = torch.Generator().manual_seed(1)
    d = 4096
    seeds = torch.randn(3, 64, 64, generator=gen)
    reports = norm_report(seeds)
    assert len(reports) == 3
    for rep in reports:
        assert not rep.atypical
        assert rep.ks_pvalue > 1e-4
        assert abs(rep.zscore) < 5
        assert 0 < rep.percentile < 100
        assert rep.norm_ratio == pytest.approx(rep.norm / math.sqrt(d))
        assert set(rep.as_dict()) >= {"norm", "zscore", "percentile", "ks_statistic", "ks_pvalue", "atypical"}
    # uniform entries scaled to unit variance: right norm, wrong distribution -> KS flags them
    uniform = (torch.rand(2, d, generator=gen) - 0.5) * math.sqrt(12)
    for rep in norm_report(uniform.numpy()):
        assert rep.ks_pvalue < 1e-6
    # Gaussian entries with an atypical norm
    rep = norm_report(torch.randn(1, d, generator=gen) * 1.1)[0]
    assert rep.atypical and rep.zscore > 5
    with pytest.raises(ValueError):
        norm_report(torch.randn(5))
    with pytest.raises(ValueError):
        norm_report(torch.full((1, 4), float("nan")))
