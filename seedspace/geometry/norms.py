"""Per-seed norm diagnostics under a norm prior."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List

import numpy as np
import torch
from scipy import stats

from ._tensors import as_tensor
from .prior_io import resolve_prior


@dataclass
class NormReport:
    """Norm statistics of one seed (see :func:`norm_report`)."""

    norm: float
    norm_ratio: float  # norm / sqrt(d)
    zscore: float
    percentile: float  # 0..100 under the prior (chi(d) by default)
    ks_statistic: float  # entries vs N(0, 1)
    ks_pvalue: float
    atypical: bool  # norm outside the prior's central 99.9% interval

    def as_dict(self) -> dict:
        return asdict(self)


def norm_report(seeds, typical_prob: float = 0.999, *, prior=None) -> List[NormReport]:
    """Per-seed report for a batch ``(N, *seed_shape)``: norm, norm/sqrt(d), z-score ``(|x| - mean)/std`` and
    percentile under the prior (chi(d) by default; anything :func:`load_prior` takes), Kolmogorov-Smirnov test of the entries against N(0, 1), and
    ``atypical`` when the norm falls outside the prior's central ``typical_prob`` interval."""
    t, _ = as_tensor(seeds, "seeds")
    if t.dim() < 2:
        raise ValueError(f"seeds must have shape (N, *seed_shape), got {tuple(t.shape)}")
    if t.shape[0] == 0 or t[0].numel() == 0:
        raise ValueError("seeds is empty")
    flat = t.reshape(t.shape[0], -1).to(torch.float64)
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("seeds contain non-finite values (nan or inf)")
    prior = resolve_prior(prior, flat.shape[1])
    lo, hi = prior.typical_interval(typical_prob)
    entries = flat.cpu().numpy()
    norms = np.linalg.norm(entries, axis=1)
    pct = 100.0 * np.asarray(prior.cdf(norms))
    mean, std = prior.mean, prior.std
    reports = []
    for i, n in enumerate(norms):
        ks = stats.kstest(entries[i], "norm")
        reports.append(
            NormReport(
                norm=float(n),
                norm_ratio=float(n / math.sqrt(prior.d)),
                zscore=float((n - mean) / std),
                percentile=float(pct[i]),
                ks_statistic=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
                atypical=bool(n < lo or n > hi),
            )
        )
    return reports
