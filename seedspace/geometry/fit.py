"""Maximum-likelihood norm priors: from a set of seeds (e.g. a user's own inversions), from weighted norms, and from
a measured curve of image quality against the seed norm (:func:`prior_from_quality`, what ``seedspace calibrate``
turns its measurements into)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import optimize, stats

from ._tensors import as_tensor, check_choice, check_norms, flat_seeds
from .prior import _GL8_G, _GL8_S, ChiPrior

FIT_FAMILIES = ("scaled-chi", "generalized-chi", "auto")
#: ``family="auto"`` frees the width when the likelihood-ratio test rejects the fixed width at this level
AUTO_LEVEL = 1e-3


def _log_likelihood(r: np.ndarray, scale: float, dof: float, w: np.ndarray | None = None) -> float:
    """``sum_i w_i log p(r_i)`` (``w = 1`` when None) under ``|x| / scale ~ chi(dof)``."""
    logpdf = stats.chi.logpdf(r, dof, scale=scale)
    return float(np.sum(logpdf if w is None else w * logpdf))


def _profile(r: np.ndarray, dof: float, w: np.ndarray | None = None):
    """(scale, log-likelihood) maximising over the scale at fixed dof: ``s^2 = mean_w(r^2) / k``."""
    scale = math.sqrt(float(np.average(r * r, weights=w)) / dof)
    return scale, _log_likelihood(r, scale, dof, w)


def _max_dof(r: np.ndarray, d: int, w: np.ndarray | None = None) -> float:
    """Largest dof whose profile fit keeps the NAO weight positive (density < 1 at the mode)."""
    mean_sq = float(np.average(r * r, weights=w))

    def margin(log_k):
        k = math.exp(log_k)
        s = math.sqrt(mean_sq / k)
        mode = s * math.sqrt(k - 1)
        return float(stats.chi.logpdf(mode, k, scale=s)) + 1e-6

    hi = math.log(max(4.0 * mean_sq, 2.0))
    return math.exp(optimize.brentq(margin, 0.0, hi)) if margin(hi) > 0 else math.exp(hi)


def _fit(r: np.ndarray, D: int, family: str, w: np.ndarray | None = None) -> tuple[ChiPrior, dict]:
    """(prior, info) of the (weighted) maximum-likelihood fit of norms ``r`` in dimension ``D``."""
    scale, ll = _profile(r, float(D), w)
    info = {"log_likelihood": ll}
    if family == "scaled-chi":
        return ChiPrior(D, scale), info  # ValueError when the fit is too narrow for a positive NAO weight
    k_max = _max_dof(r, D, w)
    res = optimize.minimize_scalar(lambda lk: -_profile(r, math.exp(lk), w)[1], bounds=(0.0, math.log(k_max)),
                                   method="bounded", options={"xatol": 1e-10})
    dof = math.exp(res.x)
    g_scale, g_ll = _profile(r, dof, w)
    lr = max(2.0 * (g_ll - ll), 0.0)
    p = float(stats.chi2.sf(lr, 1))
    # the fixed width is usable only where chi(D) scaled by s keeps density < 1 at its mode (w = -log p > 0)
    fixed_valid = float(stats.chi.logpdf(scale * math.sqrt(D - 1), D, scale=scale)) < 0
    if family == "auto":
        info["width_test"] = {"lr_statistic": lr, "p_value": p, "level": AUTO_LEVEL, "fixed_width_valid": fixed_valid}
        if p >= AUTO_LEVEL and fixed_valid:
            return ChiPrior(D, scale), info
    info["log_likelihood"] = g_ll
    return ChiPrior(D, g_scale, dof), info


def fit_prior(seeds, family: str = "scaled-chi", d: int | None = None) -> ChiPrior:
    """Maximum-likelihood norm prior of seeds ``(n, *seed_shape)``, n >= 2 (``d``: the dimension they must have).

    ``scaled-chi``: ``|x| / s ~ chi(d)``, ``s^2 = mean |x|^2 / d`` (closed form).  ``generalized-chi``:
    ``|x| / s ~ chi(k)`` with the width ``k`` free too (profile likelihood in k, ``s^2 = mean |x|^2 / k``; k is kept
    where the density stays below 1, so that ``w = -log p > 0``).  ``auto``: generalized-chi if the likelihood
    ratio test against scaled-chi rejects it (``2 dLL ~ chi2(1)``, p < 0.001) or the scaled-chi fit is too narrow
    for a positive weight (norms spread less than about 0.4 around a small mean), else scaled-chi.  The prior's ``info`` records n, the
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
    prior, info = _fit(r, D, family)
    prior.info = {"fit": "maximum likelihood", "n": int(r.size), "mean_norm_ratio": float(r.mean() / math.sqrt(D)),
                  **info}
    return prior


QUALITY_FAMILIES = ("scaled-chi", "generalized-chi")


def prior_from_quality(norms, quality, d: int, family: str = "scaled-chi") -> ChiPrior:
    """The norm prior of a measured quality curve: image quality ``q_j`` (any finite score, higher is better) at seed
    norms ``r_j`` (absolute norms, m >= 2 distinct; e.g. ``s_j sqrt(d)``) in dimension ``d``.

    The quality-weighted norm density is ``rho(r) ∝ q(r) - min_j q_j`` with q linear between the measured norms and
    0 outside them (quality above the worst measured norm); the prior is the member of the family closest to it in
    KL, i.e. the maximiser of ``int rho(r) log p(r) dr``: ``scaled-chi`` (``|x|/s ~ chi(d)``, the geometry's
    width) has ``s^2 = int rho r^2 / (d int rho)`` in closed form, mode ``s sqrt(d-1)`` at the rho-weighted RMS norm;
    ``generalized-chi`` frees the width k as :func:`fit_prior` does, so the spread matches rho's too.  The integrals
    use 8-point Gauss-Legendre per interval (exact for the cubic ``rho r^2``).  A norm outside the measured range
    cannot be chosen: ``info["peak_at_edge"]`` says when the best measured norm is an end of the range (measure
    wider).  ValueError for fewer than 2 distinct positive finite norms, non-finite quality, or a flat curve.
    """
    check_choice(family, QUALITY_FAMILIES, "prior family")
    if isinstance(d, bool) or int(d) != d or d < 2:
        raise ValueError(f"dimension d must be an integer >= 2, got {d!r}")
    r = np.asarray(norms, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.size != q.size:
        raise ValueError(f"got {r.size} norms but {q.size} quality values")
    if r.size < 2:
        raise ValueError(f"a quality curve needs at least 2 norms, got {r.size}")
    if not (np.isfinite(r).all() and (r > 0).all()):
        raise ValueError(f"norms must be finite and > 0, got {r.tolist()}")
    if not np.isfinite(q).all():
        raise ValueError(f"quality values must be finite, got {q.tolist()}")
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    if (np.diff(r) <= 0).any():
        raise ValueError(f"norms must be distinct, got {r.tolist()}")
    excess = q - q.min()
    if not excess.max() > 0:
        raise ValueError("the quality does not change with the norm: the curve gives no prior (measure more images "
                         "or a wider range of norms)")
    # quadrature nodes of every interval: rho there by linear interpolation, weight = GL weight * interval * rho
    left, width = r[:-1, None], np.diff(r)[:, None]
    nodes = left + width * _GL8_S
    rho = excess[:-1, None] + (excess[1:, None] - excess[:-1, None]) * _GL8_S
    weights = (width * _GL8_G * rho).ravel()
    nodes = nodes.ravel()
    keep = weights > 0
    prior, info = _fit(nodes[keep], int(d), family, weights[keep] / weights.sum())
    root_d = math.sqrt(d)
    best = int(np.argmax(q))
    prior.info = {"fit": "quality-weighted maximum likelihood", "norm_ratios": (r / root_d).tolist(),
                  "quality": q.tolist(), "baseline": float(q.min()),
                  "weighted_mean_ratio": float(np.average(nodes, weights=weights) / root_d),
                  "weighted_rms_ratio": float(math.sqrt(np.average(nodes * nodes, weights=weights)) / root_d),
                  "best_measured_ratio": float(r[best] / root_d), "peak_at_edge": best in (0, r.size - 1),
                  "mode_ratio": prior.mode / root_d, **info}
    return prior
