"""The settings of an augmentation run: one frozen dataclass, validated up front, recorded in run.json."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ...backends.loading import resolve_model_prior
from ...checks import MAX_OPT_STEPS, MAX_PER_CLASS, MAX_THREADS, check_batch_size, check_guidance, check_int, check_steps
from ...geometry import NormPrior, load_prior

STRATEGIES = ("random", "centroid", "clusters", "paths", "seedselect")
CONDITIONS = ("class", "unconditional")
# One --method name per geometry, as (centroid method, interpolation method) of seedspace.geometry: the centroid
# strategy uses the first, the paths use the second for every geodesic (from the first's centroid).
METHODS = {
    "nao": ("nao", "nao"),
    "slerp": ("spherical", "slerp"),
    "lerp": ("euclidean", "lerp"),
    "cog": ("cog", "cog"),
    "normalized": ("normalized", None),  # a centroid only: there is no "normalized" interpolation
}
MIN_REFERENCES = {"random": 1, "centroid": 2, "clusters": 2, "paths": 2, "seedselect": 2}
# where the seedselect strategy's seeds start: the paths' points; the centroid of all k inversions, then its
# neighbourhood (points on the geodesics from the centroid halfway to each inversion); N(0, I) from distinct integers
SEEDSELECT_STARTS = ("paths", "centroid", "random")
# how the references are inverted: the model's DDIM inversion at inversion_steps without guidance; or the
# fixed-point inversion of the run's own sampler (its steps and guidance: see inversion.py)
INVERSIONS = ("ddim", "fixed-point")


@dataclass(frozen=True)
class AugmentSettings:
    """What decides the bytes of an augmented data set (a resumed run must use the same).

    - ``per_class``: images per class (N).
    - ``strategy``: ``random`` (plain sampling from random seeds), ``centroid`` (centroids of subsets of the k
      inversions; the first image is the centroid of all k), ``clusters`` (the inversions split into ``clusters``
      NAO clusters, then centroids of subsets within each cluster, the clusters taken round robin), ``paths`` (points on the geodesics centroid ->
      inversion and inversion <-> inversion, t by a scrambled Sobol sequence), ``seedselect`` (the ``paths`` seeds
      refined by ``seedselect_steps`` SeedSelect steps).
    - ``method``: the geometry, see ``METHODS`` (nao, slerp, lerp, cog; normalized for centroids only).
    - ``condition``: ``class`` (generate with the class / prompt) or ``unconditional`` (the class given only by the
      references' inversions; the model's null class or empty prompt).
    - ``clusters``: M of the clusters strategy, 1 <= M <= k for every class (None: min(3, k // 2), at least 1);
      only with that strategy.
    - ``seed``: the one integer all randomness of the plan derives from.
    - ``steps``, ``guidance``, ``inversion_steps``: DDIM sampling / inversion (None: the model's defaults).
    - ``inversion``: ``ddim`` (the model's DDIM inversion at ``inversion_steps``, no guidance) or ``fixed-point``
      (the seeds the run's own sampler, at ``steps`` and ``guidance`` with the class's condition, maps back onto
      the references: a path's endpoints decode to its references; ``inversion_steps`` is ``steps``).
    - ``shard_size``: images per shard (the unit of work, of atomic writing and of resuming), a multiple of
      ``batch_size``: images per model call. Image i of a class is always in batch i // batch_size, whatever the
      shard size, executor or worker, so those never change the bytes.
    - ``threads``: the torch CPU threads every inversion and image is computed with, in the driver and in every
      worker (None: this process's count when the run starts; a resumed run keeps the recorded count). CPU
      kernels split their sums by thread, so the count can change the last bit of an image: it is part of what
      decides the bytes, like the dtype.
    - ``dtype``: model weights dtype (float32, float16, bfloat16; auto: bfloat16 where the device computes it
      natively, else float32); run.json records the one that ran.
    - ``prior``: the norm prior of the centroids and paths (None: chi(d), the paper's; 'model': the model's own,
      chi where it has none; 'scaled-chi:S', a prior file
      such as ``seedspace calibrate`` writes, a record or a prior object); :meth:`resolved` turns it into the prior's
      record (JSON, what run.json keeps and the shards use). NAO centroids and paths follow it; the normalized and
      spherical centroids sit at its mode; lerp, slerp and cog ignore it.
    """

    per_class: int
    strategy: str = "paths"
    method: str = "nao"
    condition: str = "class"
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    inversion_steps: int | None = None
    seedselect_steps: int = 3
    seedselect_start: str = "paths"
    inversion: str = "ddim"
    shard_size: int = 64
    batch_size: int = 16
    dtype: str = "auto"
    prior: object = None
    clusters: int | None = None
    threads: int | None = None

    def __post_init__(self):
        def positive(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        # the checks every generating command makes (interpolate's), here before any folder exists
        check_int(self.per_class, "per_class", 1, MAX_PER_CLASS)
        positive("shard_size")
        check_batch_size(self.batch_size)
        if self.shard_size % self.batch_size:
            raise ValueError(f"shard_size must be a multiple of batch_size, got {self.shard_size} and {self.batch_size}")
        if self.threads is not None:
            check_int(self.threads, "threads", 1, MAX_THREADS)
        for name in ("steps", "inversion_steps"):
            if getattr(self, name) is not None:
                check_steps(getattr(self, name), name)
        if self.guidance is not None:
            check_guidance(self.guidance)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.strategy in ("paths", "seedselect") and METHODS[self.method][1] is None:
            usable = ", ".join(m for m, (_, i) in METHODS.items() if i)
            raise ValueError(f"method {self.method!r} is a centroid only; --strategy {self.strategy} interpolates: "
                             f"choose one of {usable}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; choose one of {', '.join(CONDITIONS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"seed must be an integer in [0, 2^63), got {self.seed!r}")
        if self.strategy == "seedselect":
            check_int(self.seedselect_steps, "seedselect_steps", 1, MAX_OPT_STEPS)
        if self.seedselect_start not in SEEDSELECT_STARTS:
            raise ValueError(f"unknown seedselect_start {self.seedselect_start!r}; choose one of "
                             f"{', '.join(SEEDSELECT_STARTS)}")
        if self.seedselect_start != "paths" and self.strategy != "seedselect":
            raise ValueError(f"seedselect_start applies to the seedselect strategy only, not {self.strategy!r}")
        if self.inversion not in INVERSIONS:
            raise ValueError(f"unknown inversion {self.inversion!r}; choose one of {', '.join(INVERSIONS)}")
        if self.inversion == "fixed-point" and self.inversion_steps is not None and self.inversion_steps != self.steps:
            raise ValueError(f"inversion_steps ({self.inversion_steps}) differs from steps ({self.steps}): the "
                             "fixed-point inversion inverts the sampler at its own steps; leave inversion_steps out")
        if self.clusters is not None:
            if self.strategy != "clusters":
                raise ValueError(f"clusters applies to the clusters strategy only, not {self.strategy!r}")
            positive("clusters")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be auto, float32, float16 or bfloat16, got {self.dtype!r}")
        if isinstance(self.prior, NormPrior):
            object.__setattr__(self, "prior", self.prior.to_record())
        elif isinstance(self.prior, Path):
            object.__setattr__(self, "prior", str(self.prior))
        elif self.prior is not None and not isinstance(self.prior, (str, dict)):
            raise ValueError(f"prior must be 'chi', 'scaled-chi:S', a prior file, a record or a prior, got "
                             f"{self.prior!r}")

    @property
    def centroid_method(self) -> str:
        return METHODS[self.method][0]

    @property
    def interpolation_method(self) -> str | None:
        return METHODS[self.method][1]

    @property
    def min_references(self) -> int:
        return MIN_REFERENCES[self.strategy]

    def resolved(self, model) -> "AugmentSettings":
        """The settings with the model's defaults filled in, the thread count fixed (this process's when unset)
        and the prior as its record for the model's seed dimension (None for chi(d)): what run.json records."""
        import torch  # settings are plain data until resolved against a loaded model

        steps = int(self.steps or model.default_steps)
        prior = resolve_model_prior(self.prior, model)
        if prior is not None:
            prior = load_prior(prior, math.prod(model.seed_shape)).to_record()
            prior = None if prior == {"family": "chi", "d": prior["d"]} else prior
        return dataclasses.replace(
            self, steps=steps, inversion_steps=steps if self.inversion == "fixed-point" else int(self.inversion_steps or steps),
            guidance=float(model.default_guidance if self.guidance is None else self.guidance), prior=prior,
            threads=self.threads or torch.get_num_threads())

    def to_record(self) -> dict:
        return dataclasses.asdict(self)
