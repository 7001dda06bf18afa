"""seedspace: explore the seed (initial-noise) space of diffusion models with norm-aware geometry.

    import seedspace as ss
    path = ss.interpolate(a, b, steps=9)            # NAO geodesic, evenly spaced in arc length
    c = ss.centroid(seeds)                          # NAO centroid
    m = ss.blend([a, b], [0.2, 0.8])                # weighted NAO blend (0.8 of the way from a to b)
    prior = ss.fit_prior(inverted_seeds)            # norm prior fitted to your seeds; pass prior=... anywhere
    model = ss.load_model()                         # the embedded testbed (offline, CPU)
    images = model.generate(path, condition=3)
    seeds, provenance = ss.load_seeds("boot1.png,boot2.png", model, condition="Ankle boot")  # inverted images
"""

from ._version import __version__
from .backends.base import SeedModel, load_model, seeds_from_ints
from .conditions import resolve_condition
from .geometry import (
    CENTROID_METHODS,
    DISTANCE_METRICS,
    INTERPOLATION_METHODS,
    ChiPrior,
    ClusterResult,
    NormPrior,
    blend,
    centroid,
    cluster,
    distance,
    fit_prior,
    interpolate,
    load_prior,
    norm_report,
    pairwise_distances,
    path_energy,
    prior_from_record,
    prior_json,
)
from .seeds import LoadedSeeds, describe_seed, load_seeds, parse_seed_spec

__all__ = [
    "CENTROID_METHODS", "DISTANCE_METRICS", "INTERPOLATION_METHODS", "ChiPrior", "ClusterResult", "LoadedSeeds",
    "NormPrior", "SeedModel", "__version__", "blend", "centroid", "cluster", "describe_seed", "distance", "fit_prior",
    "interpolate", "load_model", "load_prior", "load_seeds", "norm_report", "pairwise_distances", "parse_seed_spec",
    "path_energy", "prior_from_record", "prior_json", "resolve_condition", "seeds_from_ints", "seedselect",
]


def __getattr__(name):  # keep `import seedspace` light: applications load on first use
    if name == "seedselect":
        from .apps.seedselect import seedselect

        return seedselect
    raise AttributeError(f"module 'seedspace' has no attribute {name!r}")
