"""Geometry of the seed space of diffusion models (pure tensor code, no models).

Seeds ``x ~ N(0, I_d)`` concentrate near the sphere ``|x| = sqrt(d-1)``; NAO (Samuel et al.,
"Norm-guided latent space exploration for text-to-image generation", arXiv 2306.08687) measures
paths by ``int w(|x|) ds`` with ``w = -log chi_d``.  This package computes NAO geodesics,
distances and centroids exactly (by reduction to a 2-D problem), the usual baselines, the
published optimisation for reference, and chi-prior diagnostics.
"""

from .centroids import CENTROID_METHODS, blend, centroid, centroid_objective
from .distances import DISTANCE_METRICS, distance, pairwise_distances
from .energy import path_energy
from .paths import INTERPOLATION_METHODS, SPACINGS, interpolate
from .prior import ChiPrior, NormReport, norm_report

__all__ = [
    "CENTROID_METHODS",
    "DISTANCE_METRICS",
    "INTERPOLATION_METHODS",
    "SPACINGS",
    "ChiPrior",
    "NormReport",
    "blend",
    "centroid",
    "centroid_objective",
    "distance",
    "interpolate",
    "norm_report",
    "pairwise_distances",
    "path_energy",
]
