"""Fast NAO distance matrices (tabulated) and clustering in the NAO metric."""

import math

import numpy as np
import pytest
import torch

import seedspace as ss
from seedspace.geometry import planar
from seedspace.geometry.distance_table import TABLE_RTOL, DistanceTable

torch.set_num_threads(1)


@pytest.mark.parametrize("prior", [ss.ChiPrior(784, 1.5, 196.0), ss.ChiPrior(64)])
def test_table_within_its_bound_of_the_exact_solver(prior):
    u = math.log(prior.mode)
    table = DistanceTable(prior, u - 0.05, u + 0.05, planar.DEFAULT_GRID, 0.4, 2.0)  # norms within ~2 widths
    assert table.ok
    rng = np.random.default_rng(7)
    ua, ub = rng.uniform(u - 0.05, u + 0.05, 200), rng.uniform(u - 0.05, u + 0.05, 200)
    phi = rng.uniform(0.4, 2.0, 200)
    exact = planar.solve(ua, ub, phi, prior).energy
    got = table.evaluate(*(torch.from_numpy(v) for v in (ua, ub, phi))).numpy()
    assert np.max(np.abs(got - exact) / exact) <= TABLE_RTOL


def test_pairwise_table_matches_exact():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(30, 256, generator=gen, dtype=torch.float64)
    Y = torch.randn(20, 256, generator=gen, dtype=torch.float64)
    exact = ss.pairwise_distances(X, Y, method="exact")
    fast = ss.pairwise_distances(X, Y, method="table")
    assert fast.shape == (30, 20)
    assert torch.max(torch.abs(fast - exact) / exact) <= 1e-3
    sym = ss.pairwise_distances(X, method="table")
    assert torch.all(sym.diagonal() == 0) and torch.allclose(sym, sym.T, rtol=1e-3)
    with pytest.raises(ValueError, match="one dimension"):
        ss.pairwise_distances(X, torch.randn(3, 10))
    with pytest.raises(ValueError, match="pairwise method"):
        ss.pairwise_distances(X, method="fast")


def planted(n_per=8, d=512, seed=0):
    """Seeds around 3 orthogonal directions (angle ~0.5 rad to their centre), norms ~ chi(d)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.linalg.qr(torch.randn(d, 3, generator=gen, dtype=torch.float64))[0].T
    X = torch.cat([centres[j] + 0.5 * torch.randn(n_per, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
                   for j in range(3)])
    X = X / X.norm(dim=1, keepdim=True) * torch.linalg.vector_norm(torch.randn(3 * n_per, d, generator=gen), dim=1)[:, None]
    return X, np.repeat(np.arange(3), n_per)


@pytest.mark.parametrize("metric", ["nao", "angular"])
def test_cluster_recovers_planted_clusters(metric):
    X, truth = planted()
    res = ss.cluster(X, 3, metric=metric, seed=1)
    assert np.array_equal(res.labels, truth)  # clusters are numbered by their smallest member
    assert res.centroids.shape == (3, 512)
    for j in range(3):
        members = X[res.members(j)]
        cos = torch.nn.functional.cosine_similarity(res.centroids[j][None], members).min()
        assert cos > 0.8


def test_cluster_is_deterministic_and_checks_k():
    X, _ = planted(seed=3)
    a, b = ss.cluster(X, 2, seed=5), ss.cluster(X, 2, seed=5)
    assert np.array_equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
    assert a.objective == b.objective
    assert ss.cluster(X.numpy(), 1).labels.tolist() == [0] * X.shape[0]
    for k in (0, X.shape[0] + 1, 2.5):
        with pytest.raises(ValueError, match="k must be an integer from 1"):
            ss.cluster(X, k)


def test_singleton_clusters_have_a_nao_centroid():
    """The NAO centroid of one seed (equal lower and upper bounds of every start, rounded apart) is defined: a
    point on its ray, and k-means with a singleton cluster runs (seed 0 below made one and crashed)."""
    X = torch.randn(10, 1, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = ss.centroid(X[:1], "nao")
    assert torch.nn.functional.cosine_similarity(c.flatten(), X[0].flatten(), dim=0) > 1 - 1e-9
    res = ss.cluster(X, 3, "nao", seed=0)
    assert sorted(np.bincount(res.labels, minlength=3) > 0) == [True] * 3
