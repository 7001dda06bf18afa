"""Statistics shared by the evaluation and the report scripts.

- :class:`FeatureReference`: real features fitted once; the Fréchet distance (the statistic behind FID; "FID-style"
  here because the features are the testbed judge's, not Inception-v3's) and KID (the unbiased squared MMD with
  the cubic polynomial kernel) of generated features against it. :func:`frechet_distance`,
  :func:`gaussian_frechet_distance` and :func:`kernel_inception_distance` are the one-off forms.
- Bootstrap confidence intervals from ``scipy.stats.bootstrap``: :func:`bootstrap_ci` (items, BCa),
  :func:`paired_bootstrap_ci` (paired items, BCa) and :func:`index_bootstrap_ci` (items, groups resampled whole,
  or strata, with an interval method to choose; ``'recentred'`` for the biased Fréchet distance), with the
  statistics :func:`group_frechet` and :func:`group_kid` of resampled feature groups.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import stats
from scipy.spatial.distance import cdist

INTERVAL_METHODS = ("BCa", "percentile", "basic", "recentred")


def image_psnr(a, b, cap: float = 100.0) -> np.ndarray:
    """Per-image PSNR in dB of images (N, ...) in [0, 1]: 10 log10(1 / mean (a - b)^2), capped at ``cap`` (identical
    images)."""
    a = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float64)
    b = b.detach().cpu().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"image_psnr needs two image batches of one shape, got {a.shape} and {b.shape}")
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(cap, 10.0 * np.log10(1.0 / np.maximum(mse, 0.0)))


def _features(feats, name: str, min_rows: int = 2) -> np.ndarray:
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu().double().numpy()
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x . y / d + 1)^3 between the rows of x (n, d) and y (m, d) -> (n, m)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


class FeatureReference:
    """Real features (M, D) fitted once, for many Fréchet distances and KIDs of generated features against them.

    Fréchet distance between Gaussians: d^2 = |mu_g - mu_r|^2 + tr S_g + tr S_r - 2 tr (S_g S_r)^(1/2). With
    S_g = F^T F and R = S_r^(1/2), tr (S_g S_r)^(1/2) = sum sqrt(eig(R S_g R)), and R S_g R = (F R)^T (F R) has
    the non-zero eigenvalues of the smaller of (F R)^T (F R) and (F R)(F R)^T: one small symmetric eigenproblem,
    exact for few samples (singular S_g), where ``scipy.linalg.sqrtm`` struggles.
    """

    def __init__(self, feats):
        x = _features(feats, "reference features")
        self.n, self.dim = x.shape
        self.feats = x
        self._set_moments(x.mean(0), np.cov(x, rowvar=False).reshape(self.dim, self.dim))
        self._kernel_mean = None

    @classmethod
    def from_moments(cls, mean, cov) -> "FeatureReference":
        """A reference given by a Gaussian's mean (D,) and covariance (D, D) (Fréchet distances only)."""
        ref = cls.__new__(cls)
        mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        ref.n, ref.dim, ref.feats, ref._kernel_mean = 0, mean.size, None, None
        ref._set_moments(mean, np.atleast_2d(np.asarray(cov, dtype=np.float64)))
        return ref

    def _set_moments(self, mean: np.ndarray, cov: np.ndarray) -> None:
        if cov.shape != (mean.size, mean.size):
            raise ValueError(f"mismatched Gaussian shapes: mean {mean.shape}, covariance {cov.shape}")
        self.mean, self.cov = mean, cov
        self.sqrt_cov = _psd_sqrt(cov)
        self.trace = float(np.trace(cov))

    def _frechet(self, mean: np.ndarray, factor: np.ndarray) -> float:
        """The Fréchet distance of N(mean, factor^T factor) to the reference Gaussian (clipped at 0)."""
        if mean.shape != self.mean.shape or factor.shape[1] != self.dim:
            raise ValueError(f"features must have {self.dim} dimensions, got {mean.size}")
        y = factor @ self.sqrt_cov
        gram = y @ y.T if y.shape[0] <= y.shape[1] else y.T @ y
        root_trace = float(np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum())
        diff = mean - self.mean
        return max(float(diff @ diff + (factor * factor).sum() + self.trace - 2.0 * root_trace), 0.0)

    def frechet(self, feats) -> float:
        """Fréchet distance from a Gaussian fitted to ``feats`` (N >= 1, D) (unbiased covariance; one sample ->
        zero covariance) to the reference Gaussian. Biased upwards at small N: compare at equal N only."""
        x = _features(feats, "features", min_rows=1)
        n = x.shape[0]
        mean = x.mean(0)
        factor = (x - mean) / np.sqrt(n - 1) if n > 1 else np.zeros((1, x.shape[1]))
        return self._frechet(mean, factor)

    def kernel_mean(self) -> float:
        """mean_{i != j} k(r_i, r_j) over the reference rows (computed once, in blocks of rows)."""
        if self._kernel_mean is None:
            if self.feats is None or self.n < 2:
                raise ValueError("KID needs a reference fitted to at least 2 feature rows")
            total = sum(polynomial_kernel(self.feats[i:i + 1024], self.feats).sum() for i in range(0, self.n, 1024))
            diag = ((np.einsum("ij,ij->i", self.feats, self.feats) / self.dim + 1.0) ** 3).sum()
            self._kernel_mean = float((total - diag) / (self.n * (self.n - 1)))
        return self._kernel_mean

    def kid_terms(self, feats) -> tuple[np.ndarray, np.ndarray]:
        """(K, c) for generated features x (N, D): the kernel matrix K_ij = k(x_i, x_j) and each row's mean
        kernel to the reference c_i = mean_j k(x_i, r_j), everything :func:`weighted_kid` needs."""
        x = _features(feats, "features", min_rows=1)
        if x.shape[1] != self.dim:
            raise ValueError(f"features must have {self.dim} dimensions, got {x.shape[1]}")
        return polynomial_kernel(x, x), polynomial_kernel(x, self.feats).mean(1)

    def kid(self, feats) -> float:
        """KID: the unbiased estimate of MMD^2 between the generated and the reference distribution,
        mean_{i != j} k(x_i, x_j) + mean_{i != j} k(r_i, r_j) - 2 mean_{i, j} k(x_i, r_j); needs N >= 2. Its
        expectation is the population MMD^2 at any N (0 when the distributions agree), so it can be negative."""
        kernel, cross = self.kid_terms(_features(feats, "features"))
        return weighted_kid(kernel, cross, self.kernel_mean(), np.ones(len(cross)))


def weighted_kid(kernel: np.ndarray, cross: np.ndarray, reference_mean: float, counts: np.ndarray) -> float:
    """KID of a resample in which generated row i appears ``counts[i]`` times, with the pairs of a row with its own
    copies left out: sum_{i != j} w_i w_j K_ij / sum_{i != j} w_i w_j + reference_mean - 2 sum w_i c_i / sum w_i.
    With all counts 1 this is the unbiased KID; for a bootstrap resample it stays (nearly) unbiased, whereas the
    plain U-statistic of the resample counts k(x, x) of duplicates and is inflated."""
    w = np.asarray(counts, dtype=np.float64)
    pairs = w.sum() ** 2 - (w * w).sum()
    if pairs <= 0:
        return float("nan")
    within = (w @ kernel @ w - (w * w) @ np.diag(kernel)) / pairs
    return float(within + reference_mean - 2.0 * (w @ cross) / w.sum())


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a >= 2, D) and (N_b >= 2, D) (tensors or
    arrays; unbiased covariances). Few samples bias it upwards: only compare scores from equal sample counts."""
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return FeatureReference(b).frechet(a)


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between N(mu1, S1) and N(mu2, S2) (closed form)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    if sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched Gaussian shapes: mean {mu1.shape}, covariance {sigma1.shape}")
    return FeatureReference.from_moments(mu2, sigma2)._frechet(mu1, _psd_sqrt(sigma1))


def kernel_inception_distance(feats_a, feats_b) -> float:
    """KID (unbiased MMD^2, kernel (x . y / d + 1)^3) between two feature sets (N_a >= 2, D) and (N_b >= 2, D)."""
    return FeatureReference(_features(feats_b, "feats_b")).kid(feats_a)


def feature_spread(feats) -> float:
    """A class's feature scale: the mean distance of the rows of ``feats`` (N, D) to their mean (1.0 where that
    is 0)."""
    x = np.asarray(feats)
    return float(np.linalg.norm(x - x.mean(0), axis=1).mean()) or 1.0


def mean_pairwise_distance(feats) -> float:
    """Mean Euclidean distance over distinct pairs of rows of ``feats`` (N, D); 0 for fewer than 2 rows."""
    x = np.asarray(feats, dtype=np.float64)
    if x.shape[0] < 2:
        return 0.0
    sq = (x * x).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)
    return float(np.sqrt(d2[np.triu_indices(x.shape[0], 1)]).mean())


def manifold_metrics(real, fake, k: int = 5) -> dict:
    """Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020) of ``fake``
    against ``real`` features, with k-nearest-neighbour balls: radius(x) = distance to x's k-th neighbour in its
    own set. precision = share of fakes inside some real ball; recall = share of reals inside some fake ball;
    density = mean number of real balls holding a fake / k; coverage = share of real balls holding a fake.
    (Written here because no dependency of the project implements them; they are a few lines of distances.)"""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"manifold metrics with k = {k} need more than {k} real and fake features, "
                         f"got {real.shape[0]} and {fake.shape[0]}")
    real_radius = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    fake_radius = np.sort(cdist(fake, fake), axis=1)[:, k]
    cross = cdist(fake, real)  # (fake, real)
    inside = cross <= real_radius[None, :]
    return {"precision": float(inside.any(axis=1).mean()),
            "recall": float((cross <= fake_radius[:, None]).any(axis=0).mean()),
            "density": float(inside.sum(axis=1).mean() / k),
            "coverage": float(inside.any(axis=0).mean())}


def t_interval(values, confidence: float = 0.95) -> dict:
    """{mean, lo, hi, n}: the mean of a few independent values (e.g. classifier seeds) with its Student t
    interval (a bootstrap is meaningless at n = 3); lo = hi = mean for a single value."""
    x = np.asarray(values, dtype=np.float64).ravel()
    mean = float(x.mean())
    if x.size < 2 or np.allclose(x, x[0]):
        return {"mean": mean, "lo": mean, "hi": mean, "n": int(x.size)}
    lo, hi = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "n": int(x.size)}


# -- bootstrap intervals -------------------------------------------------------------------------------------
def _scipy_interval(data, statistic, point: float, confidence: float, n_boot: int, seed: int, method: str,
                    paired: bool = False) -> tuple[float, float]:
    """(low, high) from ``scipy.stats.bootstrap``. ``'recentred'``: the percentile interval shifted by the bootstrap
    bias estimate, (q_a - b, q_1-a - b) with b = mean(replicates) - point: for a statistic whose resamples are
    biased (a Fréchet distance grows when resampling duplicates images), an interval of the estimate's spread
    around the estimate. A BCa interval that is undefined or excludes the estimate falls back to percentile, and
    replicates where the statistic is undefined are left out (percentile interval of the rest)."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"unknown bootstrap interval {method!r}: choose from {', '.join(INTERVAL_METHODS)}")
    kwargs = dict(confidence_level=confidence, paired=paired, rng=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        scipy_method = "percentile" if method == "recentred" else method
        res = stats.bootstrap(data, statistic, n_resamples=n_boot, method=scipy_method, **kwargs)
        low, high = (float(v) for v in res.confidence_interval)
        finite = np.isfinite(res.bootstrap_distribution)
        if not finite.all():  # undefined replicates (e.g. a KID of one distinct image): interval of the others
            res = type(res)(res.confidence_interval, res.bootstrap_distribution[finite], res.standard_error)
        if not finite.all() or method == "BCa" and not (np.isfinite(low) and np.isfinite(high) and low <= point <= high):
            res = stats.bootstrap(data, statistic, n_resamples=0, bootstrap_result=res, method="percentile", **kwargs)
            low, high = (float(v) for v in res.confidence_interval)
    if method == "recentred":
        shift = float(np.nanmean(res.bootstrap_distribution)) - point
        low, high = low - shift, high - shift
    return low, high


def bootstrap_ci(values, confidence: float = 0.95, n_boot: int = 2000, statistic: Callable = np.mean,
                 seed: int = 0, method: str = "BCa") -> tuple[float, float, float]:
    """(statistic, low, high): a bootstrap ``confidence`` interval (``scipy.stats.bootstrap``, BCa by default) of
    ``statistic`` (a function of a 1-D array with an ``axis`` argument, e.g. ``np.mean``) over ``values``.

    NaNs are dropped; with a single value (or all equal values) the interval collapses to the value; with none,
    all three are NaN. Deterministic for a given ``seed``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = float(statistic(x))
    if np.all(x == x[0]):
        return point, point, point
    return (point, *_scipy_interval((x,), statistic, point, confidence, n_boot, seed, method))


def paired_bootstrap_ci(values_a, values_b, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0,
                        method: str = "BCa") -> tuple[float, float, float]:
    """(mean of a - b, low, high) over paired items (same endpoint pair, same reference subset, ...): pairs are
    resampled together (``scipy.stats.bootstrap(..., paired=True)``). Pairs with a NaN are dropped."""
    a, b = np.asarray(values_a, dtype=np.float64).ravel(), np.asarray(values_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = float(np.mean(a - b))
    if np.all(a - b == point):
        return point, point, point
    interval = _scipy_interval((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), point, confidence,
                               n_boot, seed, method, paired=True)
    return (point, *interval)


def index_bootstrap_ci(n: int | Sequence[int], statistic: Callable, confidence: float = 0.95, n_boot: int = 200,
                       seed: int = 0, method: str = "percentile") -> tuple[float, float, float]:
    """(statistic, low, high) of ``statistic(indices)`` over item indices 0..n-1 resampled with replacement
    (``scipy.stats.bootstrap`` on the indices): a cluster bootstrap when the items are groups (all images of one
    path or input set move together, as they are correlated), and a statistic can see which items were drawn
    twice. With a sequence of sizes the items are strata resampled separately (e.g. runs within each class) and
    the statistic gets a list of index arrays, one per stratum. ``method``: one of :data:`INTERVAL_METHODS` (see
    :func:`_scipy_interval`). With one item in every stratum the interval collapses to the point."""
    single = np.isscalar(n)
    sizes = [int(n)] if single else [int(s) for s in n]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every stratum needs at least one item, got sizes {sizes}")
    if single:
        stat = lambda idx: float(statistic(np.asarray(idx, dtype=np.int64)))  # noqa: E731
    else:
        stat = lambda *idx: float(statistic([np.asarray(i, dtype=np.int64) for i in idx]))  # noqa: E731
    point = stat(*(np.arange(s) for s in sizes))
    if max(sizes) == 1:
        return point, point, point
    data = tuple(np.arange(s) for s in sizes)
    return (point, *_scipy_interval(data, stat, point, confidence, n_boot, seed, method))


def group_frechet(reference: FeatureReference, groups: Sequence[np.ndarray]) -> Callable[[np.ndarray], float]:
    """statistic(indices) = Fréchet distance to ``reference`` of the pooled feature groups at those indices."""
    return lambda idx: reference.frechet(np.concatenate([groups[i] for i in idx]))


def group_kid(reference: FeatureReference, groups: Sequence[np.ndarray]) -> Callable[[np.ndarray], float]:
    """statistic(indices) = KID to ``reference`` of the pooled feature groups at those indices. A group drawn m
    times keeps its own pairs m times, not m^2: the pairs between different copies of one group (an image with
    its copy, or two correlated frames of one path) are left out, so a resample has the data's share of
    within-group pairs and its KID stays (nearly) unbiased; with one image per group this is :func:`weighted_kid`.
    For counts m_g, block sums G_gh = sum_{i in g, j in h} K_ij and diagonals D_g: pairs sum = m'Gm - sum m_g^2 G_gg
    + sum m_g (G_gg - D_g), over (m.n)^2 - sum m_g^2 n_g^2 + sum m_g (n_g^2 - n_g) pairs."""
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    kernel, cross = reference.kid_terms(np.concatenate(groups))
    owner = np.repeat(np.arange(len(groups)), sizes.astype(np.int64))
    member = np.zeros((len(owner), len(groups)))
    member[np.arange(len(owner)), owner] = 1.0
    blocks = member.T @ kernel @ member
    own, diag = np.diag(blocks).copy(), member.T @ np.diag(kernel)
    cross_sums, ref_mean = member.T @ cross, reference.kernel_mean()

    def statistic(idx: np.ndarray) -> float:
        m = np.bincount(idx, minlength=len(groups)).astype(np.float64)
        pairs = (m @ sizes) ** 2 - (m * m) @ (sizes * sizes) + m @ (sizes * sizes - sizes)
        if pairs <= 0:
            return float("nan")
        within = (m @ blocks @ m - (m * m) @ own + m @ (own - diag)) / pairs
        return float(within + ref_mean - 2.0 * (m @ cross_sums) / (m @ sizes))

    return statistic
