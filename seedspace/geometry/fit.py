"""Maximum-likelihood norm priors from a set of seeds (e.g. a user's own inversions)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import optimize, stats

from ._tensors import as_tensor, check_choice, check_norms, flat_seeds
from .prior import ChiPrior

FIT_FAMILIES = ("scaled-chi", "generalized-chi", "auto")
#: ``family="auto"`` frees the width when the likelihood-ratio test rejects the fixed width at this level
AUTO_LEVEL = 1e-3


def _log_likelihood(r: np.ndarray, scale: float, dof: float) -> float:
    return float(np.sum(stats.chi.logpdf(r, dof, scale=scale)))


def _profile(r: np.ndarray, dof: float):
    """(scale, log-likelihood) maximising over the scale at fixed dof: ``s^2 = mean(r^2) / k``."""
    scale = math.sqrt(float(np.mean(r * r)) / dof)
    return scale, _log_likelihood(r, scale, dof)


def _max_dof(r: np.ndarray, d: int) -> float:
    """Largest dof whose profile fit keeps the NAO weight positive (density < 1 at the mode)."""
    def margin(log_k):
        k = math.exp(log_k)
        s = math.sqrt(float(np.mean(r * r)) / k)
        mode = s * math.sqrt(k - 1)
        return float(stats.chi.logpdf(mode, k, scale=s)) + 1e-6

    hi = math.log(max(4.0 * float(np.mean(r * r)), 2.0))
    return math.exp(optimize.brentq(margin, 0.0, hi)) if margin(hi) > 0 else math.exp(hi)


def fit_prior(seeds, family: str = "scaled-chi", d: int | None = None) -> ChiPrior:
    """Maximum-likelihood norm prior of seeds ``(n, *seed_shape)``, n >= 2 (``d``: the dimension they must have).

    ``scaled-chi``: ``|x| / s ~ chi(d)``, ``s^2 = mean |x|^2 / d`` (closed form).  ``generalized-chi``:
    ``|x| / s ~ chi(k)`` with the width ``k`` free too (profile likelihood in k, ``s^2 = mean |x|^2 / k``; k is kept
    where the density stays below 1, so that ``w = -log p > 0``).  ``auto``: generalized-chi only if the likelihood
    ratio test against scaled-chi rejects it (``2 dLL ~ chi2(1)``, p < 0.001).  The prior's ``info`` records n, the
    log-likelihood and, for auto, the test.
    """
    check_choice(family, FIT_FAMILIES, "prior family")
    t, _ = as_tensor(seeds, "seeds")
    X = flat_seeds(t, "seeds", batched=True)
    if X.shape[0] < 2:
        raise ValueError(f"fitting a prior needs at least 2 seeds, got {X.shape[0]}")
    D = X.shape[1]
    if d is not None and D != d:
        raise ValueError(f"the seeds have dimension {D}, not {d}")
    norms = torch.linalg.vector_norm(X.to(torch.float64), dim=1)
    check_norms(norms, "seeds")
    r = norms.cpu().numpy()
    scale, ll = _profile(r, float(D))
    info = {"fit": "maximum likelihood", "n": int(r.size), "mean_norm_ratio": float(r.mean() / math.sqrt(D)),
            "log_likelihood": ll}
    prior = ChiPrior(D, scale)
    if family != "scaled-chi":
        k_max = _max_dof(r, D)
        res = optimize.minimize_scalar(lambda lk: -_profile(r, math.exp(lk))[1], bounds=(0.0, math.log(k_max)),
                                       method="bounded", options={"xatol": 1e-10})
        dof = math.exp(res.x)
        g_scale, g_ll = _profile(r, dof)
        lr = max(2.0 * (g_ll - ll), 0.0)
        p = float(stats.chi2.sf(lr, 1))
        if family == "generalized-chi" or p < AUTO_LEVEL:
            prior = ChiPrior(D, g_scale, dof)
            info["log_likelihood"] = g_ll
        if family == "auto":
            info["width_test"] = {"lr_statistic": lr, "p_value": p, "level": AUTO_LEVEL}
    prior.info = info
    return prior
