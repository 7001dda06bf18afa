"""Small evaluation helpers shared by the applications and report scripts.

- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to two sets of features (the
  statistic behind FID; "FID-style" here because the features are whatever the caller passes, e.g. the
  testbed judge's 128-d penultimate features rather than Inception-v3 pool features).
- :func:`bootstrap_ci`: a percentile-bootstrap confidence interval for the mean (or any statistic);
  :func:`bootstrap_interval` also gives the "basic" interval, for biased statistics such as Fréchet distances.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _as_2d(feats, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(feats, torch.Tensor):
            feats = feats.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples to fit a Gaussian, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between N(mu1, S1) and N(mu2, S2).

    The matrix square root is taken with ``scipy.linalg.sqrtm``; its tiny imaginary part (numerical noise for
    PSD inputs) is dropped, and a small ridge is added when the product is singular (few samples).
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched Gaussian shapes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        ridge = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D) (tensors or arrays).

    Unbiased sample covariances (``np.cov``). With fewer samples than dimensions in either set the trace of the
    matrix square root is computed exactly from a small eigenproblem (fast, and free of ``sqrtm``'s trouble with
    singular matrices); otherwise with ``scipy.linalg.sqrtm``. Few samples bias the score upwards, so only
    compare scores computed from equal sample counts.
    """
    a, b = _as_2d(feats_a, "feats_a"), _as_2d(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if min(a.shape[0], b.shape[0]) <= a.shape[1]:
        # Low-rank exact form: with S_a = A A^T (A = centred samples / sqrt(n - 1), D x n), the non-zero
        # eigenvalues of S_a S_b are those of the small symmetric PSD matrix A^T S_b A, so
        # tr (S_a S_b)^(1/2) = sum sqrt(eig(A^T S_b A)) -- no D x D matrix square root needed.
        if a.shape[0] > b.shape[0]:
            a, b = b, a
        mu_a, mu_b = a.mean(0), b.mean(0)
        A = (a - mu_a).T / np.sqrt(a.shape[0] - 1)
        sigma_b = np.cov(b, rowvar=False)
        eig = np.linalg.eigvalsh(A.T @ sigma_b @ A)
        tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
        diff = mu_a - mu_b
        value = float(diff @ diff + (A * A).sum() + np.trace(sigma_b) - 2.0 * tr_covmean)
        return max(value, 0.0)
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def bootstrap_ci(values, confidence: float = 0.95, n_boot: int = 2000, statistic: Callable = np.mean,
                 seed: int = 0) -> tuple[float, float, float]:
    """(statistic, low, high): a percentile-bootstrap ``confidence`` interval of ``statistic`` over ``values``.

    NaNs are dropped; with a single value (or all equal values) the interval collapses to the value; with
    none, all three are NaN. Deterministic for a given ``seed``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    point = float(statistic(x))
    if x.size == 1 or np.all(x == x[0]):
        return point, point, point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    stats = np.array([statistic(x[i]) for i in idx]) if statistic is not np.mean else x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(low), float(high)


# -- fast repeated Fréchet distances and paired / clustered bootstraps (used by `seedspace evaluate`) --------
class GaussianReference:
    """A Gaussian fitted once to reference features, for many fast Fréchet distances against it.

    ``tr (S_g S_r)^(1/2)`` equals the sum of square roots of the eigenvalues of ``R S_g R`` with ``R = S_r^(1/2)``
    (symmetric PSD), so each distance costs one symmetric eigen-decomposition (fast enough for bootstraps).
    """

    def __init__(self, feats):
        import torch

        x = _as_2d(feats, "reference features")
        self.n, self.dim = x.shape
        self.mu = x.mean(0)
        with _one_thread():
            xc = torch.from_numpy(x - self.mu)
            sigma = xc.T @ xc / (self.n - 1)
            w, v = torch.linalg.eigh(sigma)
            self._sqrt_sigma_t = (v * w.clamp_min(0).sqrt()) @ v.T
        self.sigma = sigma.numpy()
        self.sqrt_sigma = self._sqrt_sigma_t.numpy()
        self.trace = float(np.trace(self.sigma))

    def distance(self, feats) -> float:
        """Fréchet distance from a Gaussian fitted to ``feats`` (N, D) to the reference (same value as
        :func:`frechet_distance` up to round-off); one sample -> zero covariance.

        With centred features ``Xc`` and ``Y = Xc R``, ``R S_g R = Y^T Y / (N - 1)`` has the same non-zero
        eigenvalues as the N x N matrix ``Y Y^T / (N - 1)``: the smaller of the two is decomposed."""
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] < 1:
            raise ValueError(f"features must have shape (N >= 1, {self.dim}), got {x.shape}")
        n = x.shape[0]
        mu = x.mean(0)
        diff = mu - self.mu
        if n == 1:
            return max(float(diff @ diff + self.trace), 0.0)
        import torch

        with _one_thread():  # small matrices: threads only add overhead (and stall on a busy machine)
            xc = torch.from_numpy(x - mu)
            y = xc @ self._sqrt_sigma_t
            m = (y @ y.T if n <= self.dim else y.T @ y) / (n - 1)
            root_trace = float(torch.linalg.eigvalsh(m).clamp_min(0).sqrt().sum())
            trace_g = float((xc * xc).sum() / (n - 1))
        return max(float(diff @ diff + trace_g + self.trace - 2.0 * root_trace), 0.0)


class _one_thread:
    """Run torch's small linear algebra on one thread, restoring the caller's setting afterwards."""

    def __enter__(self):
        import torch

        self.threads = torch.get_num_threads()
        if self.threads != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        if self.threads != 1:
            torch.set_num_threads(self.threads)


def bootstrap_interval(point: float, stats, confidence: float = 0.95, method: str = "percentile") -> tuple[float, float]:
    """(low, high) from bootstrap replicates ``stats`` of a statistic whose estimate is ``point``.

    ``'percentile'``: the quantiles (q_a, q_1-a) of the replicates. ``'basic'``: (2 point - q_1-a, 2 point - q_a),
    which corrects for a biased statistic: resampling with replacement duplicates samples, which shrinks the
    fitted covariance's rank and inflates a Fréchet distance, so its percentile interval sits above the
    estimate (it can even exclude it); the basic interval reflects that shift back.
    """
    stats = np.asarray(stats, dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    if method == "basic":
        low, high = 2 * point - high, 2 * point - low
    elif method != "percentile":
        raise ValueError(f"unknown bootstrap interval {method!r}: 'percentile' or 'basic'")
    return float(low), float(high)


def paired_bootstrap_ci(values_a, values_b, confidence: float = 0.95, n_boot: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, low, high) of ``a - b`` over paired items (same endpoint pair, same seed set, ...):
    the percentile bootstrap of the mean of per-item differences. NaN pairs are dropped."""
    a, b = np.asarray(values_a, dtype=np.float64).ravel(), np.asarray(values_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    return bootstrap_ci(a - b, confidence=confidence, n_boot=n_boot, seed=seed)


def cluster_bootstrap_ci(groups, statistic: Callable, confidence: float = 0.95, n_boot: int = 200,
                         seed: int = 0, method: str = "percentile") -> tuple[float, float, float]:
    """(statistic, low, high) where ``statistic(list_of_groups)`` is recomputed on groups resampled with
    replacement (a cluster bootstrap: e.g. all frames of one path move together, because they are correlated).

    ``groups`` is a sequence of items (one per cluster); with one group the interval collapses to the point.
    ``method``: the interval, see :func:`bootstrap_interval` (use ``'basic'`` for Fréchet distances).
    """
    groups = list(groups)
    if not groups:
        return float("nan"), float("nan"), float("nan")
    point = float(statistic(groups))
    if len(groups) == 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    stats = [statistic([groups[i] for i in rng.integers(0, len(groups), len(groups))]) for _ in range(n_boot)]
    low, high = bootstrap_interval(point, stats, confidence, method)
    return point, low, high


def mean_pairwise_distance(feats) -> float:
    """Mean Euclidean distance over distinct pairs of rows of ``feats`` (N, D); 0 for fewer than 2 rows."""
    x = np.asarray(feats, dtype=np.float64)
    if x.shape[0] < 2:
        return 0.0
    import torch

    with _one_thread():
        d = torch.pdist(torch.from_numpy(x))
    return float(d.mean())
