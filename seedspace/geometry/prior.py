"""The chi distribution of seed norms and the NAO weight ``w(r) = -log p(r)``.

If ``x ~ N(0, I_d)`` then ``|x| ~ chi(d)`` with
``log p(r) = (d-1) log r - r^2/2 - (d/2 - 1) log 2 - lgamma(d/2)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, List

import numpy as np
import torch
from scipy import stats

from ._tensors import as_tensor


def _as_array(r: Any):
    """Return (float64 ndarray, converter back to the caller's kind)."""
    if isinstance(r, torch.Tensor):
        dev = r.device
        return r.detach().to(torch.float64).cpu().numpy(), lambda v: torch.from_numpy(np.asarray(v)).to(dev)
    if isinstance(r, np.ndarray):
        return r.astype(np.float64, copy=False), lambda v: v
    return np.asarray(r, dtype=np.float64), lambda v: float(v) if np.ndim(v) == 0 else v


class ChiPrior:
    """Norm distribution chi(d) of a standard Gaussian seed in ``R^d``.

    ``log_prob(r) = (d-1) log r - r^2/2 - log Z``, ``log Z = (d/2 - 1) log 2 + lgamma(d/2)``;
    ``weight(r) = -log_prob(r)`` is the NAO conformal weight (always > 0).
    """

    def __init__(self, d: int):
        if isinstance(d, bool) or int(d) != d or d < 1:
            raise ValueError(f"dimension d must be a positive integer, got {d!r}")
        self.d = int(d)
        self.log_normalizer = (self.d / 2.0 - 1.0) * math.log(2.0) + math.lgamma(self.d / 2.0)

    def __repr__(self) -> str:
        return f"ChiPrior(d={self.d})"

    # --- densities --------------------------------------------------------------
    def _log_prob(self, r: np.ndarray) -> np.ndarray:
        """float64 ndarray fast path (no validation); r <= 0 handled by numpy (-inf/nan)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.d == 1:
                out = -0.5 * r * r - self.log_normalizer
            else:
                out = (self.d - 1) * np.log(r) - 0.5 * r * r - self.log_normalizer
        return np.where(r < 0, -np.inf, out)

    def log_prob(self, r):
        """log density of the norm: ``(d-1) log r - r^2/2 - (d/2-1) log 2 - lgamma(d/2)`` (-inf for r < 0)."""
        arr, back = _as_array(r)
        return back(self._log_prob(arr))

    def weight(self, r):
        """NAO weight ``w(r) = -log p(r)`` (> 0 everywhere, +inf at r = 0 for d > 1)."""
        arr, back = _as_array(r)
        return back(-self._log_prob(arr))

    def weight_derivative(self, r):
        """``w'(r) = -(d-1)/r + r``."""
        arr, back = _as_array(r)
        with np.errstate(divide="ignore"):
            return back(arr - (self.d - 1) / arr)

    # --- moments -------------------------------------------------------------------
    @property
    def mode(self) -> float:
        """Most likely norm, ``sqrt(d-1)``."""
        return math.sqrt(self.d - 1)

    @property
    def mean(self) -> float:
        """``E|x| = sqrt(2) Gamma((d+1)/2) / Gamma(d/2)`` (via lgamma)."""
        return math.sqrt(2.0) * math.exp(math.lgamma((self.d + 1) / 2.0) - math.lgamma(self.d / 2.0))

    @property
    def std(self) -> float:
        """``sqrt(d - mean^2)``."""
        return math.sqrt(max(self.d - self.mean**2, 0.0))

    def typical_interval(self, prob: float = 0.99):
        """Central interval of norms holding probability ``prob``: chi(d) quantiles (1-prob)/2, (1+prob)/2."""
        if not 0.0 < prob < 1.0:
            raise ValueError(f"prob must be in (0, 1), got {prob!r}")
        lo, hi = stats.chi.ppf([(1 - prob) / 2, (1 + prob) / 2], self.d)
        return float(lo), float(hi)

    def cdf(self, r):
        """P(|x| <= r) under chi(d)."""
        arr, back = _as_array(r)
        return back(stats.chi.cdf(arr, self.d))

    # --- per-seed statistics -----------------------------------------------------
    def _seed_norm(self, seed) -> float:
        t, _ = as_tensor(seed, "seed")
        if t.numel() != self.d:
            raise ValueError(f"seed has {t.numel()} entries but the prior has d={self.d}")
        return float(torch.linalg.vector_norm(t.reshape(-1).to(torch.float64)))

    def zscore(self, seed) -> float:
        """``(|x| - mean) / std`` of one seed."""
        return (self._seed_norm(seed) - self.mean) / self.std

    def percentile(self, seed) -> float:
        """Percentile (0-100) of the seed's norm under chi(d): ``100 * cdf(|x|)``."""
        return 100.0 * float(stats.chi.cdf(self._seed_norm(seed), self.d))


@dataclass
class NormReport:
    """Norm statistics of one seed (see :func:`norm_report`)."""

    norm: float
    norm_ratio: float  # norm / sqrt(d)
    zscore: float
    percentile: float  # 0..100 under chi(d)
    ks_statistic: float  # entries vs N(0, 1)
    ks_pvalue: float
    atypical: bool  # norm outside the central 99.9% chi(d) interval

    def as_dict(self) -> dict:
        return asdict(self)


def norm_report(seeds, typical_prob: float = 0.999) -> List[NormReport]:
    """Per-seed report for a batch ``(N, *seed_shape)``: norm, norm/sqrt(d), z-score and percentile
    under chi(d), Kolmogorov-Smirnov test of the entries against N(0, 1), and ``atypical`` when the
    norm falls outside the central ``typical_prob`` interval of chi(d)."""
    t, _ = as_tensor(seeds, "seeds")
    if t.dim() < 2:
        raise ValueError(f"seeds must have shape (N, *seed_shape), got {tuple(t.shape)}")
    if t.shape[0] == 0 or t[0].numel() == 0:
        raise ValueError("seeds is empty")
    flat = t.reshape(t.shape[0], -1).to(torch.float64)
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("seeds contain non-finite values (nan or inf)")
    prior = ChiPrior(flat.shape[1])
    lo, hi = prior.typical_interval(typical_prob)
    entries = flat.cpu().numpy()
    norms = np.linalg.norm(entries, axis=1)
    pct = 100.0 * stats.chi.cdf(norms, prior.d)
    reports = []
    for i, n in enumerate(norms):
        ks = stats.kstest(entries[i], "norm")
        reports.append(
            NormReport(
                norm=float(n),
                norm_ratio=float(n / math.sqrt(prior.d)),
                zscore=float((n - prior.mean) / prior.std),
                percentile=float(pct[i]),
                ks_statistic=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
                atypical=bool(n < lo or n > hi),
            )
        )
    return reports
