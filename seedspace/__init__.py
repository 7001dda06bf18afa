"""seedspace: explore the seed (initial-noise) space of diffusion models with norm-aware geometry.

    import seedspace as ss
    path = ss.interpolate(a, b, steps=9)            # NAO geodesic, evenly spaced in arc length
    c = ss.centroid(seeds)                          # NAO centroid
    m = ss.blend([a, b], [0.2, 0.8])                # weighted NAO blend (0.8 of the way from a to b)
    model = ss.load_model()                         # the embedded testbed (offline, CPU)
    images = model.generate(path, condition=3)
    seeds, provenance = ss.load_seeds("boot1.png,boot2.png", model, condition="Ankle boot")  # inverted images
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(["CENTROID_METHODS", "DISTANCE_METRICS", "INTERPOLATION_METHODS", "ChiPrior", "ClusterResult",
                     "NormPrior", "blend", "centroid", "cluster", "distance", "fit_prior", "interpolate", "load_prior",
                     "norm_report", "pairwise_distances", "path_energy", "prior_from_quality", "prior_from_record",
                     "prior_json"],
                    ".geometry"),
    **dict.fromkeys(["SeedModel"], ".backends.base"),
    **dict.fromkeys(["seeds_from_ints"], ".noise"),
    **dict.fromkeys(["progress_bars"], ".progress"),
    **dict.fromkeys(["load_model"], ".backends.loading"),
    **dict.fromkeys(["latent_shape", "pipeline_latents"], ".backends.pipeline_latents"),
    **dict.fromkeys(["resolve_condition"], ".conditions"),
    **dict.fromkeys(["LoadedSeeds", "describe_seed", "load_seeds", "parse_seed_spec"], ".seeds"),
    **dict.fromkeys(["SeedSelectSettings", "seedselect"], ".methods.seedselect"),
    **dict.fromkeys(["AugmentSettings", "augment"], ".methods.augment"),
    **dict.fromkeys(["CalibrationResult", "CalibrationSettings", "calibrate"], ".methods.calibrate"),
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    # PEP 562 lazy attributes: `import seedspace` stays instant (torch, scipy and the applications load on first
    # use), so the command line can answer Ctrl-C with one line from its first moment
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seedspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .methods.augment import AugmentSettings, augment
    from .methods.calibrate import CalibrationResult, CalibrationSettings, calibrate
    from .methods.seedselect import SeedSelectSettings, seedselect
    from .backends.base import SeedModel
    from .backends.pipeline_latents import latent_shape, pipeline_latents
    from .noise import seeds_from_ints
    from .progress import progress_bars
    from .backends.loading import load_model
    from .conditions import resolve_condition
    from .geometry import (CENTROID_METHODS, DISTANCE_METRICS, INTERPOLATION_METHODS, ChiPrior, ClusterResult,
                           NormPrior, blend, centroid, cluster, distance, fit_prior, interpolate, load_prior,
                           norm_report, pairwise_distances, path_energy, prior_from_quality, prior_from_record,
                           prior_json)
    from .seeds import LoadedSeeds, describe_seed, load_seeds, parse_seed_spec
