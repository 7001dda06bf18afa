"""Tests of the chi prior of seed norms (seedspace.geometry.prior)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from seedspace.geometry import ChiPrior, norm_report

torch.set_num_threads(1)
DIMS = [1, 2, 3, 10, 64, 1000, 16384]


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
