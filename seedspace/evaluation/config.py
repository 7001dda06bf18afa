"""What `seedspace evaluate` runs: the experiments, their counts (default and ``--quick``), and the cost arithmetic.

Cost model (the embedded testbed, 32x32 grey, on 2 CPU cores): one DDIM step with classifier-free guidance
(two UNet passes) costs about 0.3 s per 64 images, so at the default 50 steps a generated image costs
50 * 0.3 / 64 ~= 0.23 s and an inversion (guidance 1, one pass per step) ~= 0.12 s. The judge, the geometry
(except the slow ``reference`` solver) and the statistics are seconds in total.

Default run, images generated (each counted once; identical seeds are generated once):

- inversions: 10 classes x 12 few-shot images = 120 x 0.12 s                              ~=  14 s
- norm: 7 norms x 2 groups (head, tail) x 102 seeds (100 rounded up to a multiple of the
  group's class count) = 1428 images                                                    ~= 335 s
- interpolation: 10 classes x 4 pairs = 40 paths; 5 interior frames x 4 methods = 800,
  + 80 endpoint reconstructions + reference on 10 paths x 5 = 50 -> 930 images            ~= 220 s
  (the reference solver itself: ~8 s per path at d = 1024 -> ~80 s)
- centroid: 10 classes x k in {2, 5, 10} x 4 input sets = 120 sets per method; each gives
  1 centroid image + the midpoints of the paths to min(k, 3) inputs -> 3, 4, 4 images;
  5 methods x 40 x (3 + 4 + 4) = 2200 (+ reference on 10 sets, ~37) -> ~2240 images      ~= 525 s
  (geometry: nao ~0.1 s per set, reference ~0.1-2.5 s per set -> ~30 s)
- rare: tail classes (3 on the testbed) x 4 input sets of k = 5; each gives the centroid + 2 points on each
  of the 5 paths = 11 images; (5 methods + random seeds) x 3 x 4 x 11 = 792 images        ~= 185 s
- paired: no images (re-uses the per-item results above)

Total ~= 5390 images ~= 1265 s, plus inversions, geometry (~110 s), judge and statistics (~30 s) and plots:
about 24 min on 2 cores (scale by steps / 50 for a model with other default steps). Cells have >= 100 images
per method and condition (norm: 102 per cell; interpolation: 200 frames per method; centroid: 120 centroid and
320 path images per method, 40 centroid images per k row; rare: 132 per arm) except the reference-subset rows.
The FID-style bootstraps resample whole paths / input sets.

``--quick`` (what CI runs): 3 classes (first head, a middle class, last tail), 16 seeds per norm cell at 3 norms,
1 pair per class, 1 input set per class and k, 1 tail class: ~330 images ~= 80 s + ~10 s reference on one path
+ model loading: about 1.5-2 min on the testbed; seconds on the tiny test model.

``--experiments priors`` (opt-in, experiment 8: does a model-aware prior fix NAO?), on the interpolation
experiment's 40 paths and the first 3 of the centroid experiment's 4 input sets per class and k, same inversions:

- interpolation: 40 paths x 5 frames x 5 arms (nao-chi, nao-fit, nao-file, slerp, cog) + 80 endpoints = 1080
- centroids: 10 classes x k in {2, 5, 10} x 3 sets = 90 sets x 5 arms (nao-chi, nao-fit, nao-file, normalized, cog)
  x (the centroid + 1 point on its path to its first input) = 900

Total 1980 images ~= 455 s (without --prior-file 4 arms: 1600 ~= 370 s), + 120 inversions ~= 14 s, geometry
(270-360 NAO centroids with their paths, ~0.1 s each) ~= 45 s, judge setup and statistics ~= 40 s: about 9-10 min
on 2 cores; at the 0.37 s per image the last recorded run measured on the shared 2-core VM, about 12 (without
--prior-file) to 14 min. Run in one evaluation with interpolation and centroid, the nao-chi, slerp, cog and
normalized images are cache hits: priors then adds 380 images (760 with --prior-file). Cells: 40 paths (200
frames) per arm; 90 centroid images per arm (30 per k). ``--quick``: 3 paths x 3 frames and 9 input sets,
~140 images ~= 35-55 s: about 1-1.5 min with model loading.

Sampler study (opt-in, ``--experiments schedulers``, experiment 9), costed in network evaluations (NFE): one guided
NFE of one image ~= 0.3 s / 64 ~= 0.005 s (the 2,062 s evaluation run on the results page measured 0.0074 s on the shared
2-core VM), an unguided one half that. Budget B = 25: DDIM, DPM++ 2M, Euler and UniPC at 25 steps (25 NFE each;
equal steps and equal NFE are the same run), Heun at 25 steps (49 NFE, equal steps) and 13 steps (25 NFE, equal
NFE): 174 NFE per seed for all six runs.

- seeds: interpolation 10 classes x 2 pairs x 5 frames x 2 methods (nao, slerp) = 200; centroids 10 classes x 10
  sets of k = 5 x 3 methods (nao, cog, normalized) = 300 -> 500 x 174 x 0.005-0.0074 s            ~= 435-645 s
- endpoint reconstructions (guidance 1): ~40 inverted images x 174 x 0.0025-0.0037 s            ~=  17-26 s
- inversions: 120 x 50 unguided NFE (shared with interpolation / centroid when they run too)     ~=  15 s
- judge set-up ~20 s; statistics: 30 table rows + 43 paired rows with FID-style / KID bootstraps ~= 75-150 s

Total about 10-14 min on 2 quiet cores (each cell: 100 frames or 100 centroid images per method and run).
``--quick``: 3 classes, 1 pair, 3 frames, 2 sets, B = 9 (Heun at 9 and 5 steps: 62 NFE per seed), 36 seeds + 6
reconstructions + 30 inversions: ~20 s of sampling, about 1-1.5 min on 2 quiet cores (measured: 344 s with 1
thread on the VM while two other jobs loaded both cores, where a guided NFE cost 0.1 s).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..checks import Flag, Integer, Items, Number, OneOf, Text, setting
from ..geometry import CENTROID_METHODS as GEOMETRY_CENTROIDS
from ..geometry import FIT_FAMILIES
from ..geometry import INTERPOLATION_METHODS as GEOMETRY_PATHS
from ..settings import CLASSES, GUIDANCE_OR_DEFAULT, SEED, STEPS_OR_DEFAULT, Settings, nested
from .longtail_settings import FewshotSettings, LongtailSettings

CLAIM_EXPERIMENTS = ("norm", "interpolation", "centroid", "rare", "paired")  # the paper's claims: `--experiments all`
BENCHMARK_EXPERIMENTS = ("longtail", "fewshot")  # the downstream benchmark (trains classifiers): opt-in
PRIORS_EXPERIMENTS = ("priors",)  # does a model-aware prior fix NAO? (NAO under fitted / calibrated priors): opt-in
SCHEDULER_EXPERIMENTS = ("schedulers",)  # the sampler study (claims 2 and 3 under five samplers): opt-in
EXPERIMENTS = CLAIM_EXPERIMENTS + BENCHMARK_EXPERIMENTS + PRIORS_EXPERIMENTS + SCHEDULER_EXPERIMENTS
# the methods the experiments compare by default (a choice among the geometry's, which also has 'reference': the
# slow full-dimensional NAO solver, run on a subset only)
INTERPOLATION_METHODS = ("lerp", "slerp", "cog", "nao")
CENTROID_METHODS = ("euclidean", "normalized", "spherical", "cog", "nao")
REFERENCE_METHOD = "reference"
SCHEDULER_SAMPLERS = ("ddim", "dpmpp-2m", "euler", "heun", "unipc")  # the sampler study's samplers, DDIM first

# (experiment, method a, method b): the paired comparisons of a - b
PAIRED_COMPARISONS = (
    ("interpolation", "nao", "slerp"), ("interpolation", "nao", "cog"), ("interpolation", "nao", "lerp"),
    ("centroid", "nao", "spherical"), ("centroid", "nao", "cog"), ("centroid", "nao", "euclidean"),
    ("rare", "nao", "random"), ("rare", "nao", "cog"),
)

# metric key -> (column title, better: 'higher' / 'lower' / None): the columns of every table
METRICS = {
    "acc": ("accuracy", "higher"),
    "conf": ("judge conf.", "higher"),
    "fdist": ("feat. dist.", "lower"),
    "fid": ("FID-style", "lower"),
    "kid": ("KID", "lower"),
    "norm_mean": ("norm/√d mean", None),
    "norm_min": ("norm/√d min", None),
    "norm": ("norm/√d", None),
    "smooth_mean": ("step mean", "lower"),
    "smooth_max": ("step max", "lower"),
    "diversity": ("diversity", "higher"),
    "time_ms": ("time ms", "lower"),
    "p_acc": ("path accuracy", "higher"),
    "p_conf": ("path conf.", "higher"),
    "p_fdist": ("path feat. dist.", "lower"),
    "p_fid": ("path FID-style", "lower"),
    "p_kid": ("path KID", "lower"),
    "p_norm_min": ("path norm/√d min", None),
    "lt_all": ("balanced accuracy", "higher"),
    "diff_t": ("a − b [95% t]", None),
    "diff_boot": ("a − b [95% paired bootstrap]", None),
    "lt_many": ("many-shot", "higher"),
    "lt_medium": ("medium-shot", "higher"),
    "lt_few": ("few-shot", "higher"),
    "precision": ("precision", "higher"),
    "recall": ("recall", "higher"),
    "nearest_ref": ("dist. to nearest reference", None),
    "density": ("density", "higher"),
    "coverage": ("coverage", "higher"),
    "fs_ce": ("few-shot acc. CE", "higher"),
    "fs_la": ("few-shot acc. LA", "higher"),
    "fs_all": ("all classes LA", "higher"),
    "psnr": ("recon. PSNR dB", "higher"),
    "prior_mode": ("mode/√d", None),
    "prior_mean": ("mean/√d", None),
    "prior_sd": ("sd/√d", None),
}


def _methods(allowed):
    return Items(OneOf(allowed), repeats=False)


def _counts(low=1, high=100_000):
    return Integer(low, high)


@dataclass(frozen=True)
class NormEvalSettings(Settings):
    """Experiment 1, norm bias: seed directions rescaled to norm s·√d for each s of ``scales``, ``per_group`` seeds
    per class group (rounded up to a multiple of the group's class count)."""

    field_prefix = "norm "
    scales: tuple = setting((0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5), Items(Number(0.0, 10.0, low_open=True)))
    per_group: int = setting(100, _counts())

    @classmethod
    def quick(cls, **overrides) -> "NormEvalSettings":
        return cls(scales=(0.5, 1.0, 1.5), per_group=16).replace(**overrides)


@dataclass(frozen=True)
class InterpolationEvalSettings(Settings):
    """Experiment 2, interpolation: ``pairs_per_class`` pairs of inverted few-shot images per class, ``points``
    interior frames per path (the endpoints are generated once, shared); the first ``reference_paths`` paths (the
    first pair of each class first) also with the slow reference solver."""

    field_prefix = "interpolation "
    methods: tuple = setting(INTERPOLATION_METHODS, _methods(GEOMETRY_PATHS))
    pairs_per_class: int = setting(4, _counts())
    points: int = setting(5, _counts())
    reference_paths: int = setting(10, _counts(0))

    @classmethod
    def quick(cls, **overrides) -> "InterpolationEvalSettings":
        return cls(pairs_per_class=1, points=3, reference_paths=1).replace(**overrides)


@dataclass(frozen=True)
class CentroidEvalSettings(Settings):
    """Experiment 3, centroids: ``sets`` input sets per class and k of ``ks``; paths from each centroid to at most
    ``path_inputs`` inputs with ``path_steps`` points each, ends included (the interior ones are generated); the
    first ``reference_sets`` sets also with the reference solver."""

    field_prefix = "centroid "
    methods: tuple = setting(CENTROID_METHODS, _methods(GEOMETRY_CENTROIDS))
    ks: tuple = setting((2, 5, 10), Items(Integer(2, 10_000), repeats=False))
    sets: int = setting(4, _counts())
    path_inputs: int = setting(3, _counts(0))
    path_steps: int = setting(3, _counts(2))
    reference_sets: int = setting(10, _counts(0))

    @classmethod
    def quick(cls, **overrides) -> "CentroidEvalSettings":
        return cls(sets=1, path_inputs=2, reference_sets=1).replace(**overrides)


@dataclass(frozen=True)
class RareEvalSettings(Settings):
    """Experiment 4, rare concepts: for each of ``classes`` (None: the model's tail classes), ``sets`` input sets
    of ``k`` inversions; each method's centroid and, on its paths of ``path_steps`` points (ends included) to the
    inputs, the points at the indices ``path_take``."""

    field_prefix = "rare "
    classes: tuple | None = setting(None, CLASSES)
    k: int = setting(5, _counts(2))
    sets: int = setting(4, _counts())
    path_steps: int = setting(5, _counts(2))
    path_take: tuple = setting((1, 2), Items(Integer(0, 100_000)))
    methods: tuple = setting(CENTROID_METHODS, _methods(GEOMETRY_CENTROIDS))

    @classmethod
    def quick(cls, **overrides) -> "RareEvalSettings":
        return cls(sets=1, path_take=(2,)).replace(**overrides)


@dataclass(frozen=True)
class PriorsEvalSettings(Settings):
    """Experiment 8, priors: the interpolation experiment's pairs and the first ``centroid_sets`` of the centroid
    experiment's input sets per class and k, NAO under the chi prior, a prior of family ``fit`` fitted to the
    inversions and the calibrated prior ``file`` (a prior file or scaled-chi:S; None: the model's own), with paths
    from each centroid to at most ``path_inputs`` inputs."""

    field_prefix = "prior "  # 'prior file' -> --prior-file
    fit: str = setting("scaled-chi", OneOf(FIT_FAMILIES))
    file: str | None = setting(None, Text(optional=True))
    centroid_sets: int = setting(3, _counts())
    path_inputs: int = setting(1, _counts(0))

    @classmethod
    def quick(cls, **overrides) -> "PriorsEvalSettings":
        return cls(centroid_sets=1).replace(**overrides)


@dataclass(frozen=True)
class SchedulersEvalSettings(Settings):
    """Experiment 9, the sampler study: the same inverted seeds, paths and centroids rendered by each of
    ``samplers``; per budget B of ``budgets``, each sampler at B steps and at the most steps within B network
    evaluations. Paths: the first ``pairs_per_class`` of the interpolation experiment's pairs (same seeded order),
    ``points`` interior frames, ``interp_methods``; centroids: the first ``sets`` input sets per class at k = ``k``
    of the centroid experiment's, ``centroid_methods``."""

    field_prefix = "schedulers "
    samplers: tuple = setting(SCHEDULER_SAMPLERS, _methods(SCHEDULER_SAMPLERS))
    budgets: tuple = setting((25,), Items(Integer(1, 1000)))
    interp_methods: tuple = setting(("nao", "slerp"), _methods(GEOMETRY_PATHS))
    pairs_per_class: int = setting(2, _counts())
    points: int = setting(5, _counts())
    centroid_methods: tuple = setting(("nao", "cog", "normalized"), _methods(GEOMETRY_CENTROIDS))
    k: int = setting(5, _counts(2))
    sets: int = setting(10, _counts())

    @classmethod
    def quick(cls, **overrides) -> "SchedulersEvalSettings":
        return cls(budgets=(9,), pairs_per_class=1, points=3, sets=2).replace(**overrides)


# each experiment's settings, under the experiment's name (EvalConfig's field)
EXPERIMENT_SETTINGS = {"norm": NormEvalSettings, "interpolation": InterpolationEvalSettings,
                       "centroid": CentroidEvalSettings, "rare": RareEvalSettings, "longtail": LongtailSettings,
                       "fewshot": FewshotSettings, "priors": PriorsEvalSettings, "schedulers": SchedulersEvalSettings}
# records written before the split kept the experiments' settings flat, under these prefixes
_FLAT_PREFIXES = {"norm_": "norm", "interp_": "interpolation", "centroid_": "centroid", "rare_": "rare",
                  "prior_": "priors", "sched_": "schedulers"}


@dataclass(frozen=True)
class EvalConfig(Settings):
    """An evaluation run: the shared settings (experiments, seed, sampling, the judge's references, the
    statistics) and each experiment's own settings under its name; all of it is written to results.json."""

    experiments: tuple = setting(CLAIM_EXPERIMENTS, _methods(EXPERIMENTS))
    seed: int = setting(0, SEED)
    steps: int | None = setting(None, STEPS_OR_DEFAULT)            # DDIM steps; None = the model's default
    guidance: float | None = setting(None, GUIDANCE_OR_DEFAULT)    # None = the model's default
    inversion_steps: int | None = setting(None, STEPS_OR_DEFAULT)  # None = steps
    classes: tuple | None = setting(None, CLASSES)  # interpolation, centroid and their studies; None = all
    references: str = setting("auto", OneOf(("auto", "fashion-mnist", "fewshot")))
    ref_per_class: int = setting(500, _counts())  # real reference images per class (judge feature statistics, FID)
    n_boot: int = setting(1000, _counts(10, 10**6))   # bootstrap resamples for means
    fid_boot: int = setting(200, _counts(10, 10**6))  # bootstrap resamples for FID-style scores
    confidence: float = setting(0.95, Number(0.5, 0.9999))
    inversions_per_class: int = setting(12, _counts(2))  # the few-shot inversions the experiments share
    norm: NormEvalSettings = setting(NormEvalSettings(), nested(NormEvalSettings))
    interpolation: InterpolationEvalSettings = setting(InterpolationEvalSettings(), nested(InterpolationEvalSettings))
    centroid: CentroidEvalSettings = setting(CentroidEvalSettings(), nested(CentroidEvalSettings))
    rare: RareEvalSettings = setting(RareEvalSettings(), nested(RareEvalSettings))
    longtail: LongtailSettings = setting(LongtailSettings(), nested(LongtailSettings))
    fewshot: FewshotSettings = setting(FewshotSettings(), nested(FewshotSettings))
    priors: PriorsEvalSettings = setting(PriorsEvalSettings(), nested(PriorsEvalSettings))
    schedulers: SchedulersEvalSettings = setting(SchedulersEvalSettings(), nested(SchedulersEvalSettings))
    quick: bool = setting(False, Flag())

    def check_together(self):
        if self.priors.file is not None and "priors" not in self.experiments:
            raise ValueError("prior file is used only by the priors experiment; add it to experiments")

    @classmethod
    def quick_preset(cls, **overrides) -> "EvalConfig":
        """Every experiment on a small subset (what CI runs); ``overrides``: fields of this class."""
        sections = {name: settings.quick() for name, settings in EXPERIMENT_SETTINGS.items()}
        cfg = cls(inversions_per_class=10, n_boot=500, fid_boot=50, ref_per_class=200, quick=True, **sections)
        return dataclasses.replace(cfg, **overrides)

    @classmethod
    def from_record(cls, record: dict) -> "EvalConfig":
        """The configuration a record describes; a record written before the experiments had settings of their
        own (flat ``interp_points``, ``prior_file``, ...; an empty ``extra``) reads as the same configuration."""
        if isinstance(record, dict):
            record = _nested_record(record)
        return super().from_record(record)

    def to_dict(self) -> dict:
        return self.to_record()


def _nested_record(record: dict) -> dict:
    out = {k: v for k, v in record.items() if not (k == "extra" and v == {})}
    for key in list(out):
        prefix = next((p for p in _FLAT_PREFIXES if key.startswith(p)), None)
        if prefix is not None and key not in EXPERIMENT_SETTINGS:
            section = _FLAT_PREFIXES[prefix]
            out.setdefault(section, {})
            if isinstance(out[section], dict):
                out[section][key[len(prefix):]] = out.pop(key)
    return out
