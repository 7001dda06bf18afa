"""seedspace: explore the seed (initial-noise) space of diffusion models with norm-aware geometry.

    import seedspace as ss
    path = ss.interpolate(a, b, steps=9)            # NAO geodesic, evenly spaced in arc length
    c = ss.centroid(seeds)                          # NAO centroid
    m = ss.blend([a, b], [0.2, 0.8])                # weighted NAO blend (0.8 of the way from a to b)
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
    blend,
    centroid,
    distance,
    interpolate,
    norm_report,
    pairwise_distances,
    path_energy,
)
from .seeds import LoadedSeeds, describe_seed, load_seeds, parse_seed_spec

__all__ = [
    "CENTROID_METHODS", "DISTANCE_METRICS", "INTERPOLATION_METHODS", "ChiPrior", "LoadedSeeds", "SeedModel",
    "__version__", "blend", "centroid", "describe_seed", "distance", "interpolate", "load_model", "load_seeds",
    "norm_report", "pairwise_distances", "parse_seed_spec", "path_energy", "resolve_condition", "seeds_from_ints",
    "seedselect",
]


def __getattr__(name):  # keep `import seedspace` light: applications load on first use
    if name == "seedselect":
        from .apps.seedselect import seedselect

        return seedselect
    raise AttributeError(f"module 'seedspace' has no attribute {name!r}")
