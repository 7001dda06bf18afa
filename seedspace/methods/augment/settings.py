"""The settings of an augmentation run: one frozen dataclass, validated up front, recorded in run.json."""

from __future__ import annotations

from dataclasses import dataclass

from ...backends.run_prior import prior_record
from ...backends.images import DEFAULT_FIT, FITS
from ...checks import MAX_IMAGE_SIDE, MAX_OPT_STEPS, MAX_PER_CLASS, Flag, Integer, OneOf, setting
from ...settings import BATCH_SIZE, DTYPE, GUIDANCE_OR_DEFAULT, PRIOR_SPEC, SEED, STEPS_OR_DEFAULT, THREADS_OR_CURRENT
from ...settings import Settings, model_sampling

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
class AugmentSettings(Settings):
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
    - ``height``, ``width``: the image size of a diffusers pipeline (None: the model's own; fixed-size models take
      only their own). ``fit``: how reference images of another aspect ratio are fitted ('crop' or 'pad', see
      :mod:`~seedspace.backends.images`).
    - ``keep_blank``: write images that come out blank (one value everywhere once 8-bit: the model drew nothing at
      that seed) as data, each marked in the manifest (``"blank"``) and counted in run.json's result, instead of
      refusing the shard (the default: a ValueError naming the image). Images that are not finite are always
      refused. For experiments that must measure what a strategy makes, failures included.
    - ``prior``: the norm prior of the centroids and paths (None: chi(d), the paper's; 'model': the model's own,
      chi where it has none; 'scaled-chi:S', a prior file
      such as ``seedspace calibrate`` writes, a record or a prior object); :meth:`resolved` turns it into the prior's
      record (JSON, what run.json keeps and the shards use). NAO centroids and paths follow it; the normalized and
      spherical centroids sit at its mode; lerp, slerp and cog ignore it.
    """

    per_class: int = setting(rule=Integer(1, MAX_PER_CLASS))
    strategy: str = setting("paths", OneOf(STRATEGIES))
    method: str = setting("nao", OneOf(tuple(METHODS)))
    condition: str = setting("class", OneOf(CONDITIONS))
    seed: int = setting(0, SEED)
    steps: int | None = setting(None, STEPS_OR_DEFAULT)
    guidance: float | None = setting(None, GUIDANCE_OR_DEFAULT)
    inversion_steps: int | None = setting(None, STEPS_OR_DEFAULT)
    seedselect_steps: int = setting(3, Integer(1, MAX_OPT_STEPS))
    seedselect_start: str = setting("paths", OneOf(SEEDSELECT_STARTS))
    inversion: str = setting("ddim", OneOf(INVERSIONS))
    shard_size: int = setting(64, Integer(1))
    batch_size: int = setting(16, BATCH_SIZE)
    dtype: str = setting("auto", DTYPE)
    prior: object = setting(None, PRIOR_SPEC)
    clusters: int | None = setting(None, Integer(1, optional=True))
    threads: int | None = setting(None, THREADS_OR_CURRENT)
    height: int | None = setting(None, Integer(1, MAX_IMAGE_SIDE, optional=True))
    width: int | None = setting(None, Integer(1, MAX_IMAGE_SIDE, optional=True))
    fit: str = setting(DEFAULT_FIT, OneOf(FITS))
    keep_blank: bool = setting(False, Flag())

    def check_together(self):
        if self.shard_size % self.batch_size:
            raise ValueError(f"shard_size must be a multiple of batch_size, got {self.shard_size} and {self.batch_size}")
        if self.strategy in ("paths", "seedselect") and METHODS[self.method][1] is None:
            usable = ", ".join(m for m, (_, i) in METHODS.items() if i)
            raise ValueError(f"method {self.method!r} is a centroid only; --strategy {self.strategy} interpolates: "
                             f"choose one of {usable}")
        if self.seedselect_start != "paths" and self.strategy != "seedselect":
            raise ValueError(f"seedselect_start applies to the seedselect strategy only, not {self.strategy!r}")
        if self.inversion == "fixed-point" and self.inversion_steps is not None and self.inversion_steps != self.steps:
            raise ValueError(f"inversion_steps ({self.inversion_steps}) differs from steps ({self.steps}): the "
                             "fixed-point inversion inverts the sampler at its own steps; leave inversion_steps out")
        if self.clusters is not None and self.strategy != "clusters":
            raise ValueError(f"clusters applies to the clusters strategy only, not {self.strategy!r}")

    @property
    def centroid_method(self) -> str:
        return METHODS[self.method][0]

    @property
    def interpolation_method(self) -> str | None:
        return METHODS[self.method][1]

    @property
    def min_references(self) -> int:
        return MIN_REFERENCES[self.strategy]

    @property
    def model_options(self) -> dict:
        """The options of :func:`~seedspace.backends.loading.load_model` the run records: image size and fit."""
        return {"height": self.height, "width": self.width, "fit": self.fit}

    def resolved(self, model) -> "AugmentSettings":
        """The settings with the model's defaults filled in, the thread count fixed (this process's when unset)
        and the prior as its record for the model's seed dimension (None for chi(d)): what run.json records."""
        import torch  # settings are plain data until resolved against a loaded model

        steps, guidance = model_sampling(model, self.steps, self.guidance)
        return self.replace(
            steps=steps, inversion_steps=steps if self.inversion == "fixed-point" else int(self.inversion_steps or steps),
            guidance=guidance, prior=prior_record(self.prior, model), threads=self.threads or torch.get_num_threads())
