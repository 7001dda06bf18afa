"""Norm priors: densities ``p(r)`` of seed norms and the NAO weight ``w(r) = -log p(r)``.

:class:`NormPrior` is the protocol every geometry function takes as ``prior=``: any smooth density of the
norm, given by ``log p`` and its first two derivatives.  The solver needs ``F(u) = r w(r)`` (``r = e^u``),
its u-derivatives and the primitive ``int F du = int w dr``; the base class tabulates that primitive by
Gauss-Legendre quadrature, so a new density needs no closed form.  :class:`ChiPrior` is the family
``|x| / s ~ chi(k)`` with closed forms everywhere: ``chi(d)`` (the paper's, the default), the scaled chi
(``k = d``) and the generalised chi (``k`` free, a width parameter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import integrate, optimize, stats

from ._tensors import as_tensor


def _as_array(r: Any):
    """Return (float64 ndarray, converter back to the caller's kind)."""
    if isinstance(r, torch.Tensor):
        dev = r.device
        return r.detach().to(torch.float64).cpu().numpy(), lambda v: torch.from_numpy(np.asarray(v)).to(dev)
    if isinstance(r, np.ndarray):
        return r.astype(np.float64, copy=False), lambda v: v
    return np.asarray(r, dtype=np.float64), lambda v: float(v) if np.ndim(v) == 0 else v


_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)
_GL8_S, _GL8_G = (_GL8_X + 1.0) / 2.0, _GL8_W / 2.0  # nodes on [0, 1], weights summing to 1
_TABLE_STEP = 1.0 / 64  # u-spacing of the tabulated primitive; 8-point Gauss-Legendre is exact to rounding on it
_TABLE_SPAN = (-12.0, 5.0)  # table range in u around log(mode): norms mode * e^-12 .. mode * e^5


class NormPrior:
    """A smooth density ``p(r)`` of seed norms in ``R^d`` with NAO weight ``w(r) = -log p(r)`` (must stay > 0).

    Subclasses define ``d``, :meth:`_log_prob`, :meth:`_log_prob_derivatives`, :attr:`mode` and
    :meth:`to_record`; moments, the CDF and the solver's primitive ``int w dr`` follow numerically.
    """

    d: int

    # --- what a subclass provides (float64 ndarrays, no validation) ----------------------------------
    def _log_prob(self, r: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _log_prob_derivatives(self, r: np.ndarray):
        """``(d/dr log p, d^2/dr^2 log p)``."""
        raise NotImplementedError

    @property
    def mode(self) -> float:
        """Most likely norm."""
        raise NotImplementedError

    def to_record(self) -> dict:
        """JSON-ready description that :func:`seedspace.geometry.prior_from_record` turns back into the prior."""
        raise NotImplementedError(f"{type(self).__name__} cannot be recorded")

    # --- densities -----------------------------------------------------------------------------------
    def log_prob(self, r):
        """log density of the norm (-inf for r < 0)."""
        arr, back = _as_array(r)
        return back(self._log_prob(arr))

    def weight(self, r):
        """NAO weight ``w(r) = -log p(r)``."""
        arr, back = _as_array(r)
        return back(-self._log_prob(arr))

    def weight_derivative(self, r):
        """``w'(r) = -d/dr log p(r)``."""
        arr, back = _as_array(r)
        return back(-self._log_prob_derivatives(arr)[0])

    def f_derivatives(self, u: np.ndarray, order: int) -> list:
        """``F(u) = r w(r)`` (``r = e^u``) and its u-derivatives up to ``order``:
        ``F' = r (w + r w')``, ``F'' = r (w + 3 r w' + r^2 w'')``."""
        r = np.exp(u)
        w = -self._log_prob(r)
        out = [r * w]
        if order >= 1:
            l1, l2 = self._log_prob_derivatives(r)
            rw1 = -r * l1
            out.append(r * (w + rw1))
            if order >= 2:
                out.append(r * (w + 3.0 * rw1 - r * r * l2))
        return out

    def primitive_difference(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``int_p^q F(u) du`` (``= int_{e^p}^{e^q} w dr``): a table of the primitive on a u-grid of step 1/64
        (each cell by 8-point Gauss-Legendre) plus 8-point Gauss-Legendre from the nearest node below; exact to
        rounding for norms within ``mode * e^-12 .. mode * e^5``, graceful outside."""
        u0, table = self._primitive_table()

        def primitive(u):
            j = np.clip(np.floor((u - u0) / _TABLE_STEP), 0, table.size - 1)
            node = u0 + j * _TABLE_STEP
            length = u - node
            part = self.f_derivatives(node[..., None] + length[..., None] * _GL8_S, 0)[0] @ _GL8_G
            return table[j.astype(np.int64)] + length * part

        return primitive(q) - primitive(p)

    @property
    def solver_cache(self) -> dict:
        """Store for what the solvers derive from ``F`` alone (``u*``, tables), computed once per density: the
        instance's own dict here; :class:`ChiPrior` shares one between instances with the same coefficients."""
        cache = self.__dict__.get("_solver_cache")
        if cache is None:
            cache = self._solver_cache = {}
        return cache

    def cached(self, key: str, build):
        """``solver_cache[key]``, built by ``build()`` on first use."""
        cache = self.solver_cache
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _primitive_table(self):
        def build():
            lo, hi = (math.log(self.mode) + s for s in _TABLE_SPAN)
            nodes = lo + _TABLE_STEP * np.arange(int(round((hi - lo) / _TABLE_STEP)) + 1)
            cells = self.f_derivatives(nodes[:-1, None] + _TABLE_STEP * _GL8_S, 0)[0] @ _GL8_G * _TABLE_STEP
            return lo, np.concatenate([[0.0], np.cumsum(cells)])

        return self.cached("primitive", build)

    @property
    def cheapest_log_norm(self) -> float:
        """``u* = argmin_u F(u)``, ``F = r w(r)``, ``r = e^u``: the log-norm where travelling around costs least."""
        def build():
            lm = math.log(self.mode)
            return float(optimize.minimize_scalar(
                lambda u: float(self.f_derivatives(np.array(u), 0)[0]), bounds=(lm - 1.0, lm + 1.0),
                method="bounded", options={"xatol": 1e-12}).x)

        return self.cached("u_star", build)

    # --- moments (numerical; subclasses with closed forms override) -------------------------------------
    def _support(self):
        """Interval holding all but a negligible part of the mass: 40 curvature widths around the mode."""
        m = self.mode
        width = 1.0 / math.sqrt(max(-float(self._log_prob_derivatives(np.array(m))[1]), 1e-12))
        return max(m - 40 * width, 0.0), m + 40 * width

    def _integral(self, fn, upper=None) -> float:
        lo, hi = self._support()
        hi = hi if upper is None else min(max(upper, lo), hi)
        points = [self.mode] if lo < self.mode < hi else None
        return integrate.quad(lambda r: fn(r) * math.exp(self._log_prob(np.array(r))), lo, hi, points=points,
                              limit=200, epsabs=1e-13)[0]

    @property
    def mean(self) -> float:
        """``E|x| = int r p(r) dr``."""
        return self._integral(lambda r: r)

    @property
    def std(self) -> float:
        """``sqrt(E|x|^2 - mean^2)``."""
        return math.sqrt(max(self._integral(lambda r: r * r) - self.mean**2, 0.0))

    def cdf(self, r):
        """``P(|x| <= r)``."""
        arr, back = _as_array(r)
        return back(np.vectorize(lambda v: self._integral(lambda _: 1.0, upper=v))(arr))

    def _ppf(self, probs) -> np.ndarray:
        lo, hi = self._support()
        return np.array([optimize.brentq(lambda r: float(self.cdf(r)) - p, lo, hi, xtol=1e-12) for p in probs])

    def typical_interval(self, prob: float = 0.99):
        """Central interval of norms holding probability ``prob``: quantiles (1-prob)/2 and (1+prob)/2."""
        if not 0.0 < prob < 1.0:
            raise ValueError(f"prob must be in (0, 1), got {prob!r}")
        lo, hi = self._ppf([(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)

    # --- per-seed statistics -------------------------------------------------------------------------
    def _seed_norm(self, seed) -> float:
        t, _ = as_tensor(seed, "seed")
        if t.numel() != self.d:
            raise ValueError(f"seed has {t.numel()} entries but the prior has d={self.d}")
        return float(torch.linalg.vector_norm(t.reshape(-1).to(torch.float64)))

    def zscore(self, seed) -> float:
        """``(|x| - mean) / std`` of one seed."""
        return (self._seed_norm(seed) - self.mean) / self.std

    def percentile(self, seed) -> float:
        """Percentile (0-100) of the seed's norm: ``100 * cdf(|x|)``."""
        return 100.0 * float(self.cdf(self._seed_norm(seed)))

    def check_positive_weight(self) -> None:
        """ValueError unless ``w = -log p > 0`` at the mode (where it is smallest): a density above 1 there would give
        paths of negative cost."""
        if not float(self._log_prob(np.array(self.mode))) < 0:
            raise ValueError(f"{self!r} has density >= 1 at its mode (norms spread less than ~0.4): its NAO weight "
                             f"-log p would not be positive")


def _positive_real(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return v


SCALE_RANGE = (1e-6, 1e6)  # the norm scales a chi prior accepts (a seed's norm is s sqrt(d) at the mode)


_CHI_CACHES: dict = {}  # (class, ChiPrior.weight_coefficients) -> solver cache
_CHI_CACHE_SIZE = 64


class ChiPrior(NormPrior):
    """Norms with ``|x| / scale ~ chi(dof)`` (defaults: ``scale = 1``, ``dof = d``, the norm of a standard Gaussian
    seed in ``R^d``, the paper's prior).  ``w(r) = c - (k-1) log r + r^2 / (2 s^2)`` with
    ``c = (k/2 - 1) log 2 + lgamma(k/2) + k log s``; ``scale`` moves the mode to ``s sqrt(k-1)``, ``dof`` sets the
    relative width (std ~ s / sqrt 2 whatever k).
    """

    def __init__(self, d: int, scale: float = 1.0, dof: float | None = None):
        if isinstance(d, bool) or int(d) != d or d < 1:
            raise ValueError(f"dimension d must be a positive integer, got {d!r}")
        self.d = int(d)
        self.scale = _positive_real(scale, "scale")
        if not SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]:  # beyond it w(r)'s coefficients under- or overflow
            raise ValueError(f"scale must be in [{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}], got {scale!r}")
        self.dof = float(self.d) if dof is None else _positive_real(dof, "dof")
        if self.dof < 1:
            raise ValueError(f"dof must be >= 1, got {dof!r}")
        k = self.dof
        self.log_normalizer = (k / 2.0 - 1.0) * math.log(2.0) + math.lgamma(k / 2.0)  # of chi(k)
        #: ``w(r) = c - a log r + b r^2 / 2``
        self.weight_coefficients = (k - 1.0, 1.0 / self.scale**2, self.log_normalizer + k * math.log(self.scale))
        self.info: dict = {}  # how the prior was obtained (fit or calibration), kept in its record
        self.check_positive_weight()

    @property
    def family(self) -> str:
        if self.dof != self.d:
            return "generalized-chi"
        return "chi" if self.scale == 1.0 else "scaled-chi"

    def __repr__(self) -> str:
        extra = "" if self.scale == 1.0 else f", scale={self.scale:.6g}"
        extra += "" if self.dof == self.d else f", dof={self.dof:.6g}"
        return f"ChiPrior(d={self.d}{extra})"

    def to_record(self) -> dict:
        rec = {"family": self.family, "d": self.d}
        if self.family != "chi":
            rec["scale"] = self.scale
        if self.family == "generalized-chi":
            rec["dof"] = self.dof
        return {**rec, **({"info": self.info} if self.info else {})}

    @property
    def solver_cache(self) -> dict:
        """Shared by every ChiPrior of one class with the same ``weight_coefficients`` (which fix ``F``): a path call
        builds a fresh ``ChiPrior(d)``, and its solver tables would otherwise be rebuilt on every call."""
        key = (type(self), self.weight_coefficients)
        if key not in _CHI_CACHES and len(_CHI_CACHES) >= _CHI_CACHE_SIZE:
            _CHI_CACHES.pop(next(iter(_CHI_CACHES)))  # the oldest
        return _CHI_CACHES.setdefault(key, {})

    def _log_prob(self, r: np.ndarray) -> np.ndarray:
        a, b, c = self.weight_coefficients
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -0.5 * (b * r * r) - c if a == 0 else a * np.log(r) - 0.5 * (b * r * r) - c
        return np.where(r < 0, -np.inf, out)

    def _log_prob_derivatives(self, r: np.ndarray):
        a, b, _ = self.weight_coefficients
        with np.errstate(divide="ignore"):
            return a / r - b * r, -a / (r * r) - b

    def f_derivatives(self, u: np.ndarray, order: int) -> list:
        """Closed form: ``F = r w``, ``F' = r (w + b r^2 - a)``, ``F'' = r (w + 4 b r^2 - 2a)``."""
        a, b, c = self.weight_coefficients
        r = np.exp(u)
        br2 = b * (r * r)
        w = (c - a * u) + 0.5 * br2
        out = [r * w]
        if order >= 1:
            out.append(r * (w + br2 - a))
            if order >= 2:
                out.append(r * (w + 4.0 * br2 - 2.0 * a))
        return out

    def primitive_difference(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``W(e^q) - W(e^p)``, ``W(r) = int w dr = -a (r log r - r) + b r^3/6 + c r``, arranged so that every term
        is proportional to ``e^q - e^p`` (no large cancellations)."""
        a, b, c = self.weight_coefficients
        rp = np.exp(p)
        dr = rp * np.expm1(q - p)  # e^q - e^p
        rq = rp + dr
        return dr * (c - a * (q - 1.0)) - a * rp * (q - p) + b * (dr * (rq * rq + rq * rp + rp * rp) / 6.0)

    @property
    def mode(self) -> float:
        """``s sqrt(k-1)``."""
        return self.scale * math.sqrt(self.dof - 1)

    @property
    def mean(self) -> float:
        """``s sqrt(2) Gamma((k+1)/2) / Gamma(k/2)`` (via lgamma)."""
        return self.scale * math.sqrt(2.0) * math.exp(math.lgamma((self.dof + 1) / 2.0) - math.lgamma(self.dof / 2.0))

    @property
    def std(self) -> float:
        """``s sqrt(k - (mean/s)^2)``."""
        return self.scale * math.sqrt(max(self.dof - (self.mean / self.scale) ** 2, 0.0))

    def cdf(self, r):
        """``P(|x| <= r)``."""
        arr, back = _as_array(r)
        return back(stats.chi.cdf(arr, self.dof, scale=self.scale))

    def _ppf(self, probs) -> np.ndarray:
        return stats.chi.ppf(probs, self.dof, scale=self.scale)
