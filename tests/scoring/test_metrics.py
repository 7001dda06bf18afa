"""The statistics of seedspace.scoring.metrics against closed forms and simulated data with known answers."""

import math

import numpy as np
import pytest

from seedspace.scoring.metrics import (FeatureReference, bootstrap_ci, frechet_distance, gaussian_frechet_distance,
                                    group_frechet, group_kid, index_bootstrap_ci, kernel_inception_distance,
                                    mean_pairwise_distance, paired_bootstrap_ci, polynomial_kernel, weighted_kid)


def test_frechet_distance_equals_the_closed_form_for_gaussians():
    # diagonal covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = 1.0 + 4.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert gaussian_frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    # a rotated pair (commuting covariances) gives the same distance as the diagonal one
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rotated = gaussian_frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)
    # from samples: the distance between the fitted Gaussians, also with fewer samples than dimensions
    rng = np.random.default_rng(1)
    for n_a in (5, 300):
        a, b = rng.normal(size=(n_a, 20)) * 1.5, rng.normal(size=(80, 20)) + 0.3
        exact = gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-6)
    # large samples approach the population value |m|^2 + D (sigma_a - sigma_b)^2
    a, b = rng.normal(size=(50_000, 4)), 2.0 * rng.normal(size=(50_000, 4)) + 1.0
    assert frechet_distance(a, b) == pytest.approx(4 * 1.0 + 4 * 1.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(a, a[:, :3])


def test_kid_is_the_unbiased_mmd_and_zero_in_expectation_for_one_distribution():
    rng = np.random.default_rng(2)
    x, r = rng.normal(size=(6, 5)), rng.normal(size=(7, 5))
    k = lambda u, v: (u @ v / 5 + 1) ** 3  # noqa: E731
    brute = (np.mean([k(x[i], x[j]) for i in range(6) for j in range(6) if i != j])
             + np.mean([k(r[i], r[j]) for i in range(7) for j in range(7) if i != j])
             - 2 * np.mean([k(x[i], r[j]) for i in range(6) for j in range(7)]))
    assert kernel_inception_distance(x, r) == pytest.approx(brute, rel=1e-10)
    # unbiased at small n: KIDs of 10 images from the reference distribution average to ~0 (within 4 std. errors),
    # while the same images shifted by 0.5 score clearly above 0
    ref = FeatureReference(rng.normal(size=(2000, 8)))
    same = np.array([ref.kid(rng.normal(size=(10, 8))) for _ in range(400)])
    assert abs(same.mean()) < 4 * same.std() / math.sqrt(same.size)
    shifted = np.array([ref.kid(rng.normal(size=(10, 8)) + 0.5) for _ in range(50)])
    assert shifted.mean() > 10 * same.std() / math.sqrt(same.size) and (shifted > 0).mean() > 0.9


def test_weighted_kid_leaves_out_the_pairs_of_an_image_with_its_own_copies():
    rng = np.random.default_rng(3)
    x, ref = rng.normal(size=(5, 4)), FeatureReference(rng.normal(size=(50, 4)))
    kernel, cross = ref.kid_terms(x)
    assert weighted_kid(kernel, cross, ref.kernel_mean(), np.ones(5)) == pytest.approx(ref.kid(x))
    counts = np.array([2, 0, 1, 3, 0])
    rows = np.repeat(np.arange(5), counts)  # the resample: image i appears counts[i] times
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(rows)) if rows[i] != rows[j]]
    within = np.mean([kernel[rows[i], rows[j]] for i, j in pairs])
    expected = within + ref.kernel_mean() - 2 * cross[rows].mean()
    assert weighted_kid(kernel, cross, ref.kernel_mean(), counts) == pytest.approx(expected)
    assert np.allclose(polynomial_kernel(x, x), kernel)


def test_group_kid_counts_a_groups_own_pairs_once_per_copy():
    rng = np.random.default_rng(7)
    ref = FeatureReference(rng.normal(size=(60, 4)))
    groups = [rng.normal(size=(n, 4)) for n in (3, 1, 2, 4)]
    stat = group_kid(ref, groups)
    assert stat(np.arange(4)) == pytest.approx(ref.kid(np.concatenate(groups)))
    idx = np.array([0, 0, 2, 3, 3, 3])  # group 0 twice, group 3 three times, group 1 not at all
    rows = [(copy, g, i) for copy, g in enumerate(idx) for i in range(len(groups[g]))]
    feats = np.stack([groups[g][i] for _, g, i in rows])
    kernel, cross = ref.kid_terms(feats)
    pairs = [(a, b) for a in range(len(rows)) for b in range(len(rows))
             if a != b and (rows[a][1] != rows[b][1] or rows[a][0] == rows[b][0])]  # no pair across copies of one group
    expected = np.mean([kernel[a, b] for a, b in pairs]) + ref.kernel_mean() - 2 * cross.mean()
    assert stat(idx) == pytest.approx(expected)
    singletons = list(rng.normal(size=(5, 1, 4)))
    kernel, cross = ref.kid_terms(np.concatenate(singletons))
    counts = np.array([2, 0, 1, 3, 0])
    assert group_kid(ref, singletons)(np.repeat(np.arange(5), counts)) == pytest.approx(
        weighted_kid(kernel, cross, ref.kernel_mean(), counts))


def test_group_kid_replicates_are_not_inflated_by_correlated_groups():
    # 30 "paths" of 5 strongly correlated frames each, from the reference distribution: bootstrap replicates that
    # counted the pairs across copies of a path would sit far above the estimate (and the interval exclude it).
    rng = np.random.default_rng(8)
    ref = FeatureReference(rng.normal(size=(2000, 6)))
    groups = [rng.normal(size=(1, 6)) + 0.05 * rng.normal(size=(5, 6)) for _ in range(30)]
    stat = group_kid(ref, groups)
    point = stat(np.arange(30))
    replicates = np.array([stat(rng.integers(0, 30, 30)) for _ in range(300)])
    assert abs(replicates.mean() - point) < 3 * replicates.std() / math.sqrt(replicates.size) + 0.05 * replicates.std()
    kid, lo, hi = index_bootstrap_ci(30, stat, n_boot=300, method="BCa")
    assert lo <= kid <= hi


def test_bca_interval_covers_a_known_mean_at_the_nominal_rate():
    rng = np.random.default_rng(4)
    hits = []
    for trial in range(150):
        values = rng.exponential(1.0, size=40)  # skewed, mean 1
        mean, lo, hi = bootstrap_ci(values, n_boot=400, seed=trial)
        assert lo <= mean <= hi and mean == pytest.approx(values.mean())
        hits.append(lo <= 1.0 <= hi)
    assert 0.86 <= np.mean(hits) <= 0.99
    assert bootstrap_ci([3.0]) == (3.0, 3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([1.0, np.nan, 1.0]) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown bootstrap interval"):
        bootstrap_ci([1.0, 2.0, 3.0], method="studentized")


def test_paired_interval_uses_the_pairing():
    rng = np.random.default_rng(5)
    item = rng.normal(0, 5, size=60)  # a large per-item effect shared by both arms
    a, b = item + 0.3 + rng.normal(0, 0.2, 60), item + rng.normal(0, 0.2, 60)
    mean, lo, hi = paired_bootstrap_ci(a, b, seed=0)
    assert mean == pytest.approx(np.mean(a - b)) and 0 < lo < 0.3 < hi
    _, ua, ub = bootstrap_ci(a, seed=0)  # unpaired, each arm's interval is ~25x wider
    assert (hi - lo) * 10 < ub - ua
    assert paired_bootstrap_ci([1.0, 2.0], [1.0, 2.0]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap_ci([1.0], [1.0, 2.0])


def test_fid_style_interval_contains_its_biased_estimate():
    # 40 images in 8 dimensions from the reference distribution: every resample duplicates images, so the
    # percentile interval lies above the estimate; the re-centred interval contains it, and KID's interval
    # (duplicate pairs left out) contains both its estimate and the true value 0.
    rng = np.random.default_rng(6)
    ref = FeatureReference(rng.normal(size=(2000, 8)))
    groups = list(rng.normal(size=(40, 1, 8)))
    point, p_lo, p_hi = index_bootstrap_ci(40, group_frechet(ref, groups), n_boot=300, method="percentile")
    same, lo, hi = index_bootstrap_ci(40, group_frechet(ref, groups), n_boot=300, method="recentred")
    assert same == point < p_lo and lo <= point <= hi
    assert hi - lo == pytest.approx(p_hi - p_lo)
    kid, k_lo, k_hi = index_bootstrap_ci(40, group_kid(ref, groups), n_boot=300, method="BCa")
    assert k_lo <= kid <= k_hi and k_lo <= 0.0 <= k_hi


def test_groups_and_strata_are_resampled_whole():
    seen = []

    def statistic(idx):
        seen.append(np.asarray(idx).copy())
        return float(np.concatenate([groups[i] for i in idx]).mean())

    groups = [np.ones(3), np.zeros(2), np.ones(1)]
    point, lo, hi = index_bootstrap_ci(3, statistic, n_boot=50)
    assert point == pytest.approx(4 / 6) and 0 <= lo <= point <= hi <= 1
    assert all(s.dtype == np.int64 and len(s) == 3 and s.max() < 3 for s in seen)
    sizes = []
    point, lo, hi = index_bootstrap_ci([2, 5], lambda idx: sizes.append([len(i) for i in idx]) or 1.0, n_boot=20)
    assert (point, lo, hi) == (1.0, 1.0, 1.0) and all(s == [2, 5] for s in sizes)
    assert index_bootstrap_ci(1, lambda idx: 7.0) == (7.0, 7.0, 7.0)


def test_mean_pairwise_distance():
    x = np.random.default_rng(7).normal(size=(6, 3))
    brute = np.mean([np.linalg.norm(x[i] - x[j]) for i in range(6) for j in range(i + 1, 6)])
    assert mean_pairwise_distance(x) == pytest.approx(brute)
    assert mean_pairwise_distance(x[:1]) == 0.0
