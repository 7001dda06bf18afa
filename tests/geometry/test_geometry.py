"""Tests of the seed-space geometry core (seedspace.geometry)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seedspace.geometry import (
    CENTROID_METHODS,
    DISTANCE_METRICS,
    INTERPOLATION_METHODS,
    SPACINGS,
    ChiPrior,
    blend,
    centroid,
    centroid_objective,
    distance,
    interpolate,
    pairwise_distances,
    path_energy,
)
from seedspace.geometry.reference import reference_path

torch.set_num_threads(1)
FAST = [m for m in INTERPOLATION_METHODS if m != "reference"]
BASELINES = ["slerp", "lerp", "cog"]
CHEAP_CENTROIDS = [m for m in CENTROID_METHODS if m != "reference"]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def make_pair(seed, d, scale_a=1.0, scale_b=1.0, dtype=torch.float64):
    """Gaussian seeds with norms rescaled to scale * sqrt(d)."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, d, generator=gen, dtype=torch.float64)
    a = a / a.norm() * scale_a * math.sqrt(d)
    b = b / b.norm() * scale_b * math.sqrt(d)
    return a.to(dtype), b.to(dtype)


pair_cases = st.tuples(
    st.integers(0, 10**6),
    st.sampled_from([2, 3, 5, 16, 64, 256]),
    st.floats(0.5, 1.5),
    st.floats(0.5, 1.5),
)


# --- interpolation ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_endpoints_exact_and_shape(method, spacing):
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 3, 5, generator=gen)
    path = interpolate(a, b, steps=7, method=method, spacing=spacing)
    assert path.shape == (7, 4, 3, 5) and path.dtype == a.dtype
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.isfinite(path).all()


@settings(max_examples=25, **SETTINGS)
@given(pair_cases)
def test_reversed_path(case):
    seed, d, sa, sb = case
    a, b = make_pair(seed, d, sa, sb)
    fwd = interpolate(a, b, steps=9)
    bwd = interpolate(b, a, steps=9)
    torch.testing.assert_close(bwd.flip(0), fwd, rtol=1e-6, atol=1e-6 * math.sqrt(d))


@settings(max_examples=15, **SETTINGS)
@given(pair_cases)
def test_rotation_invariance(case):
    seed, d, sa, sb = case
    d = min(d, 16)
    a, b = make_pair(seed, d, sa, sb)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64))
    path, rot = interpolate(a, b, steps=6), interpolate(q @ a, q @ b, steps=6)
    torch.testing.assert_close(rot, path @ q.T, rtol=1e-6, atol=1e-6 * math.sqrt(d))
    assert distance(q @ a, q @ b) == pytest.approx(distance(a, b), rel=1e-8)


@settings(max_examples=30, **SETTINGS)
@given(pair_cases)
def test_nao_energy_not_above_baselines(case):
    seed, d, sa, sb = case
    a, b = make_pair(seed, d, sa, sb)
    nao = min(distance(a, b), path_energy(interpolate(a, b, steps=257)))
    for method in BASELINES:
        assert nao <= path_energy(interpolate(a, b, steps=257, method=method)) * (1 + 1e-6)


@pytest.mark.parametrize("scales", [(1.0, 1.0), (0.9, 1.1), (0.5, 2.0), (1.0, 1.0001)])
def test_nao_energy_not_above_baselines_high_dim(scales):
    a, b = make_pair(7, 16384, *scales, dtype=torch.float32)
    nao = path_energy(interpolate(a, b, steps=200))
    assert nao <= distance(a, b) * 1.01  # the polyline is close to the exact curve
    for method in BASELINES:
        assert nao <= path_energy(interpolate(a, b, steps=200, method=method))


def test_nao_vs_reference_small_case():
    a, b = make_pair(3, 64, 0.9, 1.1)
    ref = reference_path(a, b, 8, max_steps=300)
    assert ref.shape == (8, 64)
    ref_energy = path_energy(ref)
    assert path_energy(interpolate(a, b, steps=8)) <= ref_energy
    assert distance(a, b) <= ref_energy
    path = interpolate(a[:8], b[:8], steps=4, method="reference")  # public entry point, tiny case
    assert torch.equal(path[0], a[:8]) and torch.equal(path[-1], b[:8])


@pytest.mark.parametrize("d,scales,phi", [(2, (0.9, 1.1), 2.0), (64, (1.0, 1.0), 3.0), (16384, (0.9, 1.1), 2.0),
                                          (16384, (0.5, 2.0), 3.1), (2, (0.05, 3.0), 3.1), (16384, (1.0, 1.0), 1e-3)])
def test_grid_refinement_changes_energy_little(d, scales, phi):
    e1 = torch.zeros(d, dtype=torch.float64)
    e1[0] = 1
    e2 = torch.zeros(d, dtype=torch.float64)
    e2[1] = 1
    a = scales[0] * math.sqrt(d) * e1
    b = scales[1] * math.sqrt(d) * (math.cos(phi) * e1 + math.sin(phi) * e2)
    coarse, fine = distance(a, b), distance(a, b, grid=1024)
    assert abs(coarse - fine) <= 1e-3 * fine
    assert fine <= coarse * (1 + 1e-6)  # a finer grid does not do worse


def test_spacings():
    a, b = make_pair(5, 64, 0.8, 1.2)
    gaps = lambda p: (p[1:] - p[:-1]).norm(dim=1)  # noqa: E731
    eu = gaps(interpolate(a, b, 41, spacing="euclidean"))
    assert eu.max() / eu.min() < 1.01
    p = interpolate(a, b, 41, spacing="nao")
    seg = np.array([path_energy(p[i:i + 2]) for i in range(40)])
    assert seg.max() / seg.min() < 1.05
    p = interpolate(a, b, 41, spacing="angle")
    ang = torch.acos(torch.clamp((p[1:] * p[:-1]).sum(1) / (p[1:].norm(dim=1) * p[:-1].norm(dim=1)), -1, 1))
    assert ang.max() / ang.min() < 1.01


def test_degenerate_pairs():
    a, _ = make_pair(11, 32)
    const = interpolate(a, a.clone(), steps=5)
    assert torch.equal(const, a.expand(5, -1))
    assert distance(a, a.clone()) == 0.0
    radial = interpolate(a, 2 * a, steps=5)  # parallel: the radial segment
    torch.testing.assert_close(radial, torch.stack([(1 + t) * a for t in np.linspace(0, 1, 5)]))
    assert distance(a, 2 * a) == pytest.approx(path_energy(torch.stack([a, 2 * a])), rel=1e-6)
    for c in (1.0, 1.3):  # opposite: plane chosen deterministically, path avoids the origin
        path = interpolate(a, -c * a, steps=33)
        assert torch.equal(path[-1], -c * a)
        assert path.norm(dim=1).min() > 0.9 * math.sqrt(31)
        assert path_energy(path) <= path_energy(interpolate(a, -c * a, steps=33, method="slerp"))
        torch.testing.assert_close(path, interpolate(a, -c * a, steps=33))
    line = interpolate(torch.tensor([1.0]), torch.tensor([-2.0]), steps=4)  # d = 1: the segment
    torch.testing.assert_close(line[:, 0], torch.tensor([1.0, 0.0, -1.0, -2.0]))


def test_batched_matches_unbatched():
    gen = torch.Generator().manual_seed(2)
    A = torch.randn(6, 2, 32, generator=gen, dtype=torch.float64)
    B = torch.randn(6, 2, 32, generator=gen, dtype=torch.float64) * 1.2
    B[1] = -A[1]
    B[2] = A[2]
    for method in FAST:
        batch = interpolate(A, B, steps=5, method=method, batched=True)
        assert batch.shape == (5, 6, 2, 32)
        for i in range(6):
            torch.testing.assert_close(batch[:, i], interpolate(A[i], B[i], steps=5, method=method), rtol=1e-9, atol=1e-9)
    for metric in DISTANCE_METRICS:
        batch = distance(A, B, metric=metric, batched=True)
        expect = [distance(A[i], B[i], metric=metric) for i in range(6)]
        np.testing.assert_allclose(batch.numpy(), expect, rtol=1e-9, atol=1e-12)


def test_numpy_and_low_precision():
    a, b = make_pair(4, 256, 0.95, 1.05)
    pn = interpolate(a.numpy(), b.numpy(), steps=6)
    assert isinstance(pn, np.ndarray) and pn.dtype == np.float64
    np.testing.assert_allclose(pn, interpolate(a, b, steps=6).numpy())
    assert isinstance(distance(a.numpy(), b.numpy()), float)
    assert isinstance(pairwise_distances(np.stack([a.numpy(), b.numpy()])), np.ndarray)
    c = centroid(np.stack([a.numpy(), b.numpy()]))
    assert isinstance(c, np.ndarray) and c.shape == (256,)
    ref = interpolate(a, b, steps=6)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        la, lb = a.to(dtype), b.to(dtype)
        p = interpolate(la, lb, steps=6)
        assert p.dtype == dtype and torch.equal(p[0], la) and torch.equal(p[-1], lb)
        torch.testing.assert_close(p.double(), ref, rtol=2e-2, atol=5e-2)
        assert centroid(torch.stack([la, lb])).dtype == dtype
        assert distance(la, lb) == pytest.approx(distance(a, b), rel=2e-2)
    p16 = interpolate(a.numpy().astype(np.float16), b.numpy().astype(np.float16), steps=3)
    assert p16.dtype == np.float16


def test_validation_errors():
    a, b = make_pair(0, 8)
    bad = [
        lambda: interpolate(a, b[:4]),
        lambda: interpolate(a, torch.zeros(8)),
        lambda: interpolate(a, b.clone().fill_(float("nan"))),
        lambda: interpolate(a, b, steps=1),
        lambda: interpolate(a, b, method="bogus"),
        lambda: interpolate(a, b, spacing="bogus"),
        lambda: interpolate(a, b, batched=True),
        lambda: distance(a, b, metric="bogus"),
        lambda: distance(torch.zeros(8), b),
        lambda: distance(a, torch.full((8,), float("inf"))),
        lambda: pairwise_distances(torch.zeros(0, 8)),
        lambda: centroid(torch.zeros(0, 8)),
        lambda: centroid(torch.stack([a, torch.zeros(8)])),
        lambda: centroid(a[None], method="bogus"),
        lambda: centroid(a[None], steps=1, return_paths=True),
        lambda: path_energy(a[None]),
        lambda: centroid_objective(torch.stack([a, b]), a[:4]),
    ]
    for fn in bad:
        with pytest.raises(ValueError):
            fn()
    with pytest.raises(ValueError, match="nao"):
        interpolate(a, b, method="bogus")


# --- distances -------------------------------------------------------------------------------


@settings(max_examples=20, **SETTINGS)
@given(st.integers(0, 10**6), st.sampled_from([2, 3, 8, 64]), st.floats(0.3, 2.0))
def test_distance_metric_axioms(seed, d, spread):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(4, d, generator=gen, dtype=torch.float64)
    X = X * (1 + spread * (torch.rand(4, 1, generator=gen, dtype=torch.float64) - 0.5))
    D = pairwise_distances(X)
    assert torch.equal(D, D.T) and torch.all(torch.diag(D) == 0)
    off = D[~torch.eye(4, dtype=torch.bool)]
    assert torch.all(off > 0)
    for i in range(4):
        for j in range(4):
            for k in range(4):
                assert D[i, j] <= (D[i, k] + D[k, j]) * (1 + 1e-4)
    assert distance(X[0], X[1]) == pytest.approx(float(D[0, 1]), rel=1e-9)
    assert distance(X[1], X[0]) == pytest.approx(distance(X[0], X[1]), rel=1e-7)
    for metric in ("euclidean", "angular"):
        Dm = pairwise_distances(X, metric=metric)
        assert float(Dm[0, 1]) == pytest.approx(distance(X[0], X[1], metric=metric), rel=1e-9)
    assert distance(X[0], X[1], "euclidean") == pytest.approx(float((X[0] - X[1]).norm()))
    cos = float(X[0] @ X[1] / (X[0].norm() * X[1].norm()))
    assert distance(X[0], X[1], "angular") == pytest.approx(math.acos(cos), rel=1e-9)


# --- centroids -------------------------------------------------------------------------------


@settings(max_examples=12, **SETTINGS)
@given(st.integers(0, 10**6), st.integers(1, 6), st.sampled_from([2, 3, 16, 128]), st.floats(0.0, 0.5))
def test_nao_centroid_not_above_baselines(seed, k, d, spread):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(k, d, generator=gen, dtype=torch.float64)
    X = X * (1 + spread * (2 * torch.rand(k, 1, generator=gen, dtype=torch.float64) - 1))
    objective = {m: centroid_objective(X, centroid(X, m)) for m in CHEAP_CENTROIDS}
    for m in CHEAP_CENTROIDS:
        assert objective["nao"] <= objective[m] * (1 + 1e-9)


@pytest.mark.parametrize("atypical", [False, True])
def test_nao_centroid_high_dim(atypical):
    gen = torch.Generator().manual_seed(9)
    X = torch.randn(5, 16384, generator=gen)
    if atypical:
        X[0] *= 0.9
        X[1] *= 1.1
    c, paths = centroid(X, return_paths=True, steps=6)
    assert c.shape == (16384,) and c.dtype == torch.float32
    assert paths.shape == (5, 6, 16384)
    assert torch.equal(paths[:, -1], X)
    torch.testing.assert_close(paths[:, 0], c.expand(5, -1))
    objective = {m: centroid_objective(X, centroid(X, m)) for m in CHEAP_CENTROIDS}
    for m in CHEAP_CENTROIDS:
        assert objective["nao"] <= objective[m] * (1 + 1e-7)
    assert objective["nao"] < objective["euclidean"]
    prior = ChiPrior(16384)
    assert abs(float(c.norm()) - prior.mode) < 3


def _weighted_objective(X, w, c):
    return sum(float(wi) * float(distance(c, x)) ** 2 for wi, x in zip(w, X))


@settings(max_examples=10, **SETTINGS)
@given(st.integers(0, 10**6), st.sampled_from([2, 16, 256]), st.floats(0.05, 0.95), st.floats(0.6, 1.4))
def test_blend_of_two_lies_on_the_geodesic_at_its_weight(seed, d, w2, scale):
    a, b = make_pair(seed, d, 1.0, scale)
    m = blend(torch.stack([a, b]), [1 - w2, w2])
    d_ab, d_am, d_mb = (float(distance(*p)) for p in ((a, b), (a, m), (m, b)))
    assert d_am + d_mb == pytest.approx(d_ab, rel=1e-4)  # on a shortest path ...
    assert d_am / d_ab == pytest.approx(w2, abs=1e-3)  # ... at arc-length fraction w2


@settings(max_examples=8, **SETTINGS)
@given(st.integers(0, 10**6), st.integers(3, 5), st.sampled_from([3, 64]))
def test_blend_not_above_weighted_baselines_and_order_free(seed, k, d):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(k, d, generator=gen, dtype=torch.float64)
    w = torch.rand(k, generator=gen, dtype=torch.float64) + 0.05
    m = blend(X, w)
    mean = (w / w.sum()) @ X
    for candidate in (mean, mean / mean.norm() * X.norm(dim=1).mean(), *X):
        assert _weighted_objective(X, w / w.sum(), m) <= _weighted_objective(X, w / w.sum(), candidate) * (1 + 1e-9)
    perm = torch.randperm(k, generator=gen)  # order and scale of the weights do not matter (up to solver tolerance)
    other = blend(X[perm], w[perm] * 3)
    assert _weighted_objective(X, w / w.sum(), other) == pytest.approx(_weighted_objective(X, w / w.sum(), m), rel=1e-4)
    assert float((other - m).norm()) < 1e-2 * float(m.norm())


def test_blend_edge_cases_and_errors():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(3, 4, 8, generator=gen)
    assert torch.equal(blend(X, [0, 1, 0]), X[1])  # a weight of 1 returns the seed itself
    half = blend(X.half(), [0.2, 0.3, 0.5])
    assert half.dtype == torch.float16 and half.shape == (4, 8)
    assert isinstance(blend(X.numpy(), [1, 1, 1]), np.ndarray)
    for bad in ([1, 1], [1, -1, 1], [0, 0, 0], [1, float("nan"), 1], "heavy"):
        with pytest.raises(ValueError):
            blend(X, bad)
    torch.testing.assert_close(blend(X, [1e308, 1e308, 0]), blend(X, [1, 1, 0]))  # the sum would overflow


def test_a_path_too_large_to_hold_is_refused_before_allocating():
    a, b = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="steps=1000000000 of 64 values each"):
        interpolate(a, b, steps=10 ** 9)
    with pytest.raises(ValueError, match="steps must be an integer"):
        interpolate(a, b, steps="9")


def test_centroid_shapes_and_baselines():
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(3, 2, 8, generator=gen, dtype=torch.float64)
    d = 16
    flat = X.reshape(3, -1)
    torch.testing.assert_close(centroid(X, "euclidean").reshape(-1), flat.mean(0))
    torch.testing.assert_close(centroid(X, "cog").reshape(-1), flat.sum(0) / math.sqrt(3))
    assert float(centroid(X, "normalized").norm()) == pytest.approx(math.sqrt(d - 1))
    sph = centroid(X, "spherical").reshape(-1)
    assert float(sph.norm()) == pytest.approx(math.sqrt(d - 1))
    # Karcher mean: the mean of the log maps at the centre vanishes
    p = sph / sph.norm()
    u = flat / flat.norm(dim=1, keepdim=True)
    cos = torch.clamp(u @ p, -1, 1)
    logs = (torch.acos(cos) / torch.sqrt(1 - cos**2))[:, None] * (u - cos[:, None] * p)
    assert float(logs.mean(0).norm()) < 1e-9
    for m in CHEAP_CENTROIDS:
        c, paths = centroid(X, m, return_paths=True, steps=5)
        assert c.shape == (2, 8) and paths.shape == (3, 5, 2, 8)
        assert torch.equal(paths[:, -1], X)
    c, paths = centroid(X[:2, :1, :2], "reference", return_paths=True, steps=4)  # tiny published case
    assert c.shape == (1, 2) and paths.shape == (2, 4, 1, 2)
    single = centroid(X[:1])  # one seed: pulled towards the mode, in its direction
    assert torch.allclose(single / single.norm(), X[0] / X[0].norm())
    assert centroid(torch.tensor([[1.0], [-2.0], [0.5]])).shape == (1,)


# --- path energy -----------------------------------------------------------------------------


def test_path_energy_quadrature():
    prior = ChiPrior(16)
    a, b = make_pair(8, 16, 0.8, 1.3)
    t = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None]
    pts = a + t * (b - a)
    mid = (pts[1:] + pts[:-1]) / 2
    riemann = float((prior.weight(mid.norm(dim=1)) * (pts[1:] - pts[:-1]).norm(dim=1)).sum())
    assert path_energy(torch.stack([a, b])) == pytest.approx(riemann, rel=1e-7)
    # a segment through the origin (log-singular weight) is integrable and integrated accurately
    through = path_energy(torch.stack([a, -a]))
    r = float(a.norm())
    from scipy import integrate

    exact = 2 * integrate.quad(lambda s: float(prior.weight(s)), 0, r, limit=200)[0]
    assert through == pytest.approx(exact, rel=1e-6)
    batch = path_energy(torch.stack([torch.stack([a, a]), torch.stack([b, -a])]), batched=True)
    assert batch.shape == (2,) and float(batch[1]) == pytest.approx(through, rel=1e-12)
