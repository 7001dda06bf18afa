"""seedspace: explore the seed (initial-noise) space of diffusion models with norm-aware geometry.

    import seedspace as ss
    path = ss.interpolate(a, b, steps=9)            # NAO geodesic, evenly spaced in arc length
    c = ss.centroid(seeds)                          # NAO centroid
    m = ss.blend([a, b], [0.2, 0.8])                # weighted NAO blend (0.8 of the way from a to b)
    model = ss.load_model()                         # the embedded testbed (offline, CPU)
    images = model.generate(path, condition=3)
"""

from .backends.base import SeedModel, seeds_from_ints
from .backends.loading import load_model
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

__version__ = "0.1.0"

__all__ = [
    "CENTROID_METHODS", "DISTANCE_METRICS", "INTERPOLATION_METHODS", "ChiPrior", "SeedModel", "SeedSelectSettings",
    "blend", "centroid", "distance", "interpolate", "load_model", "norm_report", "pairwise_distances", "path_energy",
    "seeds_from_ints", "seedselect",
]


def __getattr__(name):
    if name in ("seedselect", "SeedSelectSettings"):
        # the one application reachable from the package root, imported on first use so that `import seedspace`
        # imports no application code (and the library layer never depends on the applications)
        from .apps import seedselect

        return getattr(seedselect, name)
    raise AttributeError(f"module 'seedspace' has no attribute {name!r}")
