"""``calibrate``: measure a model's image quality against the seed norm and turn the curve into a norm prior.

Seed directions ``u`` (unit vectors) are rescaled to every norm ``s_j sqrt(d)`` of a grid around ``sqrt(d)`` (the
same directions at every norm, so the curve's shape is not confounded by which seeds were drawn) and generated with
their class:

- ``random`` directions: ``z / |z|`` for ``z ~ N(0, I)`` drawn with a CPU ``torch.Generator`` seeded by ``seed``,
  classes taken in turn;
- ``inverted`` directions: the model's real few-shot images (``model.fewshot()``, a seeded order per class, classes
  taken in turn), DDIM-inverted with their class and normalised: the directions real images actually have.

Each image is scored for the class it was generated for: ``conf`` (the judge's probability of that class),
``accuracy`` (1 when the judge's arg-max is that class), or ``features``, for models with a feature extractor but no
judge: ``cos(f(image), mean_i f(real_i) / |.|)`` over the class's few-shot real images, the similarity to the class's
real images in the feature space SeedSelect optimises in (higher: closer to real images of the class).  The quality
curve ``q_j`` is the mean score at norm j (for ``both``: the mean of the random and inverted curves, each kind
weighted equally) and :func:`seedspace.geometry.prior_from_quality` turns it into a scaled-chi prior whose mode sits
at the quality-weighted RMS norm (or a generalized chi whose width matches the curve's too).  The prior keeps the
measurements in its ``info["calibration"]`` and is written as a prior JSON file that every ``--prior`` option reads.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import outputs
from .._version import __version__
from ..checks import MAX_BATCH_SIZE, Integer, OneOf, Rule, check_number, setting
from ..geometry import QUALITY_FAMILIES, ChiPrior, prior_from_quality, prior_json
from ..progress import command_bar, progress_bars
from ..runs.provenance import model_record
from ..scoring.judge import resize_images
from ..settings import CLASSES, GUIDANCE_OR_DEFAULT, SEED, STEPS_OR_DEFAULT, Settings, model_sampling

log = logging.getLogger(__name__)

DIRECTIONS = ("random", "inverted", "both")
SCORES = ("auto", "conf", "accuracy", "features")
DEFAULT_NORMS = (0.80, 0.85, 0.90, 0.95, 1.00, 1.05, 1.10)  # norm / sqrt(d)
DEFAULT_PER_NORM = 32  # images per norm and direction kind: 7 x 32 x 2 = 448 testbed images, ~3 min on 2 CPU cores
MAX_NORM_RATIO = 4.0
MAX_PER_NORM = MAX_BATCH_SIZE


@dataclass
class CalibrationResult:
    """What :func:`calibrate` measured: the prior (its ``info`` holds the fit and the measurements), the norm grid
    (norm / sqrt(d)), the quality curve the prior was fitted to and every score's curve per direction kind."""

    prior: ChiPrior
    norm_ratios: list[float]
    quality: list[float]
    score: str
    curves: dict = field(default_factory=dict)  # kind -> score name -> {"mean": [...], "sem": [...], "n": n}

    @property
    def mode_ratio(self) -> float:
        """The prior's most likely norm / sqrt(d)."""
        return self.prior.mode / math.sqrt(self.prior.d)


def parse_norms(spec) -> tuple[float, ...]:
    """Norm ratios (norm / sqrt(d)) from a sequence of numbers, a comma list ``"0.8,0.9,1.0"`` or a range
    ``"LO:HI:STEP"`` (HI included); sorted, each finite in (0, MAX_NORM_RATIO], at least 2 distinct."""
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ValueError("no norms given: pass e.g. 0.8,0.9,1.0 or 0.80:1.10:0.05 (norm / sqrt(d))")
        try:
            if ":" in text:
                lo, hi, step = (float(v) for v in text.split(":"))
                if not (math.isfinite(step) and step > 0 and math.isfinite(lo) and math.isfinite(hi) and hi >= lo):
                    raise ValueError
                if (hi - lo) / step > 1000:
                    raise ValueError(f"norms {text!r} give more than 1000 values")
                values = [round(lo + i * step, 10) for i in range(int(math.floor((hi - lo) / step + 1e-9)) + 1)]
            else:
                values = [float(v) for v in text.split(",")]
        except ValueError as exc:
            raise ValueError(f"bad norms {text!r}: expected a comma list of numbers or LO:HI:STEP "
                             f"(norm / sqrt(d)){f'; {exc}' if str(exc) else ''}") from None
    else:
        values = list(spec) if spec is not None else []
    if not values:
        raise ValueError("no norms given: pass e.g. 0.8,0.9,1.0 (norm / sqrt(d))")
    values = sorted(check_number(v, "a norm ratio", 0.0, MAX_NORM_RATIO, low_open=True) for v in values)
    if len(set(values)) != len(values):
        raise ValueError(f"norms must be distinct, got {values}")
    if len(values) < 2:
        raise ValueError(f"a quality curve needs at least 2 norms, got {values}")
    return tuple(values)


def default_prior_path(model_ref: str, base: str | Path = "outputs") -> Path:
    """``<base>/calibrate/<model>.prior.json``: the model reference's last part ('testbed', a folder's name, a hub
    id with '/' as '--'), with anything but letters, digits, '.', '_' and '-' replaced by '-'."""
    ref = str(model_ref)
    name = ref.replace("/", "--") if ref.count("/") == 1 and not Path(ref).expanduser().exists() else \
        Path(ref).expanduser().name or "model"
    return Path(base) / "calibrate" / f"{re.sub(r'[^A-Za-z0-9._-]', '-', name)}.prior.json"


def save_prior(path: str | Path, prior, overwrite: bool = False) -> Path:
    """Write :func:`prior_json` of the prior to ``path`` atomically (temporary name, then rename); FileExistsError
    for an existing file unless ``overwrite``."""
    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another --out or pass --overwrite")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; --out takes the prior file's name")
    return outputs.write_text(path, prior_json(prior))


def resolve_score(model, score: str) -> str:
    """A score of ``SCORES`` (checked by :class:`CalibrationSettings`) for ``model``: 'auto' -> 'conf' with a judge,
    else 'features' with a feature extractor; ValueError when the model can score neither way (or the asked score
    needs what it lacks)."""
    has_judge, has_features = bool(getattr(model, "has_judge", False)), bool(getattr(model, "has_features", False))
    if score == "auto":
        if not (has_judge or has_features):
            raise ValueError(f"{model.name} has neither a judge nor an image feature extractor, so calibrate cannot "
                             "score its images; use a testbed-format model (judge.safetensors or encoder.safetensors, "
                             "and fewshot.safetensors)")
        return "conf" if has_judge else "features"
    if score in ("conf", "accuracy") and not has_judge:
        raise ValueError(f"{model.name} has no judge: score {score!r} needs one (try score 'features')")
    if score == "features" and not has_features:
        raise ValueError(f"{model.name} has no image feature extractor: score 'features' needs one")
    return score


def resolve_classes(model, classes) -> list[int]:
    """Class indices of a class-conditional model (all its classes when None); ValueError otherwise."""
    if getattr(model, "conditioning", None) != "class" or not getattr(model, "class_names", None):
        raise ValueError(f"{model.name} is not class-conditional: calibrate scores each image for the class it was "
                         "generated for")
    if classes is None:
        return list(range(len(model.class_names)))
    items = [classes] if isinstance(classes, (str, int)) else list(classes)
    if not items:
        raise ValueError("no classes given")
    out = []
    for item in items:
        index = model.class_index(item)
        if index is None or index == getattr(model, "null_class", None):
            raise ValueError(f"class {item!r} is the unconditional (null) class; calibrate needs real classes")
        if index not in out:
            out.append(int(index))
    return out


def _fewshot(model, c: int) -> torch.Tensor | None:
    """The real few-shot images of class c at the model's image size, or None when the model has none."""
    try:
        images, _ = model.fewshot(c)
    except (ValueError, AttributeError, NotImplementedError, OSError):
        return None
    return resize_images(images, model.image_shape[-2:]) if images.shape[0] else None


def _unit(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1).double()
    return (flat / flat.norm(dim=1, keepdim=True)).reshape(x.shape)


def random_directions(model, classes: list[int], n: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    """n unit directions ``z / |z|``, ``z ~ N(0, I)`` from a CPU generator seeded by ``seed``; classes in turn."""
    z = torch.randn((n, *model.seed_shape), generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    return _unit(z), [classes[i % len(classes)] for i in range(n)]


def inverted_directions(model, classes: list[int], n: int, seed: int, steps: int,
                        real: dict) -> tuple[torch.Tensor, list[int]] | None:
    """Up to n unit directions of DDIM-inverted real images: the classes' few-shot images (``real``: class ->
    images) in a seeded order per class, classes in turn; None when there are none."""
    rng = np.random.default_rng([int(seed), 1])
    queues = {c: [int(i) for i in rng.permutation(real[c].shape[0])] for c in classes if real.get(c) is not None}
    picks = []
    while len(picks) < n and any(queues.values()):
        for c in classes:
            if queues.get(c) and len(picks) < n:
                picks.append((c, queues[c].pop(0)))
    if not picks:
        return None
    images = torch.stack([real[c][i] for c, i in picks])
    labels = [c for c, _ in picks]
    seeds = model.invert(images, condition=labels, steps=steps).float().cpu()
    return _unit(seeds), labels


class _Scorer:
    """Per-image scores of generated images for their intended classes: judge conf and accuracy, and feature
    similarity to the class's real images when asked."""

    def __init__(self, model, score: str, classes: list[int], real: dict):
        self.model, self.score = model, score
        self.prototypes = None
        if score == "features":
            missing = [c for c in classes if real.get(c) is None]
            if missing:
                raise ValueError(f"score 'features' compares with the class's real images, but {model.name} has no "
                                 f"few-shot images of class {missing[0]}")
            with torch.no_grad():
                self.prototypes = {c: torch.nn.functional.normalize(
                    torch.nn.functional.normalize(model.features(real[c]).double(), dim=1).mean(0), dim=0)
                    for c in classes}

    def __call__(self, images: torch.Tensor, labels: Sequence[int]) -> dict:
        labels_t = torch.as_tensor(list(labels), dtype=torch.long)
        out = {}
        if self.score in ("conf", "accuracy"):
            probs = self.model.classify(images).double().cpu()
            out["conf"] = probs[torch.arange(len(labels_t)), labels_t].numpy()
            out["accuracy"] = (probs.argmax(1) == labels_t).double().numpy()
        if self.score == "features":
            with torch.no_grad():
                f = torch.nn.functional.normalize(self.model.features(images).double().cpu(), dim=1)
            proto = torch.stack([self.prototypes[int(c)] for c in labels_t])
            out["features"] = (f * proto).sum(1).numpy()
        return out


def _summary(values: list[np.ndarray]) -> dict:
    """Per-norm mean, standard error of the mean and n of per-image scores."""
    mean = [float(v.mean()) for v in values]
    sem = [float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0 for v in values]
    return {"mean": mean, "sem": sem, "n": int(values[0].size)}


@dataclass(frozen=True)
class CalibrationSettings(Settings):
    """What decides a calibration (recorded in the prior's ``info``), validated when made.

    - ``classes``: class indices or names to generate (None: all the model's classes).
    - ``directions``: 'random', 'inverted' (the few-shot images' DDIM inversions) or 'both'; 'both' uses the random
      directions alone (noted in ``info``) when the model has no few-shot images.
    - ``norms``: norm / sqrt(d) of the grid (a sequence, or text for :func:`parse_norms`).
    - ``per_norm``: images per norm and direction kind (inverted: at most the few-shot images available).
    - ``steps``, ``guidance``: sampling (None: the model's defaults); inversion uses ``steps`` too.
    - ``score``: 'auto' (conf with a judge, else features), 'conf', 'accuracy' or 'features'.
    - ``family``: 'scaled-chi' (the geometry's width, mode at the quality-weighted RMS norm) or 'generalized-chi'.
    - ``seed``: the integer the random directions and the few-shot order derive from.
    """

    classes: Sequence | None = setting(None, CLASSES)
    directions: str = setting("both", OneOf(DIRECTIONS))
    norms: Sequence[float] | str = setting(DEFAULT_NORMS, Rule(lambda v, name: parse_norms(v), ("", (1.0,), "a:b")))
    per_norm: int = setting(DEFAULT_PER_NORM, Integer(1, MAX_PER_NORM))
    steps: int | None = setting(None, STEPS_OR_DEFAULT)
    guidance: float | None = setting(None, GUIDANCE_OR_DEFAULT)
    score: str = setting("auto", OneOf(SCORES))
    family: str = setting("scaled-chi", OneOf(QUALITY_FAMILIES))
    seed: int = setting(0, SEED)


def calibrate(model, settings: CalibrationSettings | None = None, *, model_id: str | None = None,
              command: str | None = None, **options) -> CalibrationResult:
    """Measure image quality against the seed norm and fit a norm prior to it (see the module docstring).

    Args:
        model: a loaded class-conditional seedspace model with a judge (``has_judge``) or features.
        settings: a :class:`CalibrationSettings` (default: its defaults).
        model_id: recorded in the provenance: how the model is loaded again.
        command: recorded in the provenance: the command line that ran.
        **options: fields of :class:`CalibrationSettings` as keywords (``per_norm=...``); they override
            ``settings``.

    ``q_j`` = mean score at norm ``s_j``; prior = :func:`prior_from_quality` (``s_j sqrt(d)``, ``q_j``). Each step
    logs one INFO line (logger ``seedspace.methods.calibrate``).
    """
    settings = dataclasses.replace(settings or CalibrationSettings(), **options)
    classes, directions, ratios, per_norm = settings.classes, settings.directions, settings.norms, settings.per_norm
    steps, guidance, score, family, seed = settings.steps, settings.guidance, settings.score, settings.family, settings.seed
    score = resolve_score(model, score)
    class_list = resolve_classes(model, classes)
    steps, guidance = model_sampling(model, steps, guidance)
    d = math.prod(model.seed_shape)

    needs_real = directions != "random" or score == "features"
    real = {c: _fewshot(model, c) for c in class_list} if needs_real else {}
    scorer = _Scorer(model, score, class_list, real)
    kinds = {}
    if directions in ("random", "both"):
        kinds["random"] = random_directions(model, class_list, per_norm, seed)
    if directions in ("inverted", "both"):
        n_real = sum(real[c].shape[0] for c in class_list if real.get(c) is not None)
        if n_real == 0 and directions == "inverted":
            raise ValueError(f"{model.name} has no few-shot real images of the classes {class_list} to invert; use "
                             "directions 'random'")
        if n_real:
            log.info(f"inverting {min(per_norm, n_real)} real images ({steps} DDIM steps)")
            with progress_bars(False):
                kinds["inverted"] = inverted_directions(model, class_list, per_norm, seed, steps, real)
        else:
            log.info("no few-shot real images: using random directions only")
    used = list(kinds)

    curves = {}
    total = len(ratios) * sum(u.shape[0] for u, _ in kinds.values())
    with command_bar(total=total, desc="calibrate", unit="image") as bar:
        for kind, (unit, labels) in kinds.items():
            per_score: dict[str, list[np.ndarray]] = {}
            for s in ratios:
                seeds = (unit * (s * math.sqrt(d))).float()
                images = model.generate(seeds, condition=labels, steps=steps, guidance=guidance)
                for name, values in scorer(images, labels).items():
                    per_score.setdefault(name, []).append(values)
                bar.update(unit.shape[0])
            curves[kind] = {name: _summary(values) for name, values in per_score.items()}
            log.info(f"{kind}: {score} " + ", ".join(f"{s:g}: {m:.3f}" for s, m in zip(ratios, curves[kind][score]["mean"])))
    quality = np.mean([curves[k][score]["mean"] for k in used], axis=0)
    prior = prior_from_quality(np.array(ratios) * math.sqrt(d), quality, d, family)
    prior.info["calibration"] = {
        "model": model_record(model, model_id or model.name),
        "score": score, "directions": directions, "directions_used": used, "classes": class_list,
        "per_norm": {k: int(kinds[k][0].shape[0]) for k in used}, "steps": steps,
        "scheduler": model.default_scheduler, "guidance": guidance,
        "seed": int(seed), "curves": curves, "command": command, "seedspace": __version__}
    return CalibrationResult(prior, list(ratios), quality.tolist(), score, curves)
