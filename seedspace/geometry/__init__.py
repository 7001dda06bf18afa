"""Geometry of the seed space of diffusion models (pure tensor code, no models).

Seeds ``x ~ N(0, I_d)`` concentrate near the sphere ``|x| = sqrt(d-1)``; NAO (Samuel et al.,
"Norm-guided latent space exploration for text-to-image generation", arXiv 2306.08687) measures
paths by ``int w(|x|) ds`` with ``w = -log p`` for a density p of seed norms (chi(d) in the paper; any
:class:`NormPrior` here, e.g. one fitted to a user's inversions).  This package computes NAO geodesics,
distances (exact, or tabulated at matrix-multiply speed) and centroids exactly (by reduction to a 2-D problem),
clusters seeds, the usual baselines, the published optimisation for reference, and norm diagnostics.
"""

from .centroids import CENTROID_METHODS, blend, centroid, centroid_objective
from .cluster import CLUSTER_METRICS, ClusterResult, cluster
from .distances import DISTANCE_METRICS, PAIRWISE_METHODS, distance, pairwise_distances
from .energy import path_energy
from .fit import FIT_FAMILIES, QUALITY_FAMILIES, fit_prior, prior_from_quality
from .norms import NormReport, norm_report
from .paths import INTERPOLATION_METHODS, SPACINGS, interpolate, path_at
from .prior import ChiPrior, NormPrior
from .prior_io import PRIOR_FAMILIES, load_prior, prior_from_record, prior_json

__all__ = [
    "CENTROID_METHODS",
    "CLUSTER_METRICS",
    "DISTANCE_METRICS",
    "FIT_FAMILIES",
    "INTERPOLATION_METHODS",
    "PAIRWISE_METHODS",
    "PRIOR_FAMILIES",
    "QUALITY_FAMILIES",
    "SPACINGS",
    "ChiPrior",
    "ClusterResult",
    "NormPrior",
    "NormReport",
    "blend",
    "centroid",
    "centroid_objective",
    "cluster",
    "distance",
    "fit_prior",
    "interpolate",
    "path_at",
    "load_prior",
    "norm_report",
    "pairwise_distances",
    "path_energy",
    "prior_from_quality",
    "prior_from_record",
    "prior_json",
]
