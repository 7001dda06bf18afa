"""SeedSelect: optimise generation seeds so that a diffusion model renders a concept it renders badly.

Following Samuel et al., "Generating images of rare concepts using pre-trained diffusion models" (SeedSelect,
AAAI 2024, arXiv 2304.14530) and its use in the NAO paper ("Norm-guided latent space exploration for
text-to-image generation", arXiv 2306.08687): given a handful (>= 2) of real
reference images of a concept, the seed x_T is optimised by gradient descent *through the whole DDIM sampler*
(per-step gradient checkpointing, so memory stays flat in the number of sampler steps) to minimise

    loss = semantic_weight * semantic + appearance_weight * appearance          (published: 10 and 1)

- ``semantic`` = sum_j w_j (1 - cos(f(decode(x0_hat_j)), mean_i f(ref_i))) over the last three denoising
  steps j, with w = (0.05, 0.25, 0.7) as published. x0_hat_j is the DDIM clean-image prediction made at step
  j (recovered exactly from the states before and after the step), so the last term is the final image.
  f is a pluggable image feature extractor: the published method uses CLIP ViT-H-14 image features; here
  ``feature_fn`` is any differentiable callable, a local CLIP folder (:func:`clip_feature_fn`), or by default
  the model's own ``features`` (the testbed's encoder, a CNN trained apart from the judge that grades the
  results, so the optimisation cannot simply fool its evaluator).
- ``appearance`` = mean squared error between the final x_0 and the mean of ``model.encode(references)``
  (VAE latents for latent models, [-1, 1] pixels for pixel models).

The optimiser is AdamW (lr 0.1 by default, tenfold decay after 3 updates, as in the published code).

Initialisations (``init=``): ``'random'`` (N(0, I) from a seed integer), ``'nao-centroid'`` (the NAO
centroid of the DDIM inversions of the references), ``'cog-centroid'`` (their centre of gravity, the plain
mean), ``'nao-paths'`` (candidates on the NAO paths from that centroid to each inversion, see
:func:`initial_seeds`), or an explicit seed tensor.

Several independent seeds can be optimised in one batch (the loss is a sum of per-seed losses and AdamW is
element-wise, so each seed follows exactly the trajectory it would follow alone); each seed may have its
own reference set and condition.

With ``out_dir`` every step's seeds, losses, AdamW moments and images are written (``step_XXXX.safetensors``,
``step_XXXX.png``, ``history.json``, atomically), and ``resume=True`` continues a run exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from ..outputs import atomic_path, image_files, save_png, to_uint8, write_text

INIT_METHODS = ("random", "nao-centroid", "nao-paths", "cog-centroid")
SEMANTIC_STEP_WEIGHTS = (0.05, 0.25, 0.7)  # last three denoising steps, final step last (published values)
FORMAT = "seedspace-seedselect/1"

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
ImageSet = Union[str, Path, torch.Tensor, Sequence[torch.Tensor], Sequence[Union[str, Path]]]


# ---------------------------------------------------------------------------------------------------------
# results and targets
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SeedSelectResult:
    """What :func:`seedselect` returns.

    - ``seed``: the optimised seeds (N, *seed_shape) after the last step; ``image``: their images (N, C, H, W)
      in [0, 1].
    - ``history``: one dict per step 0..steps (step 0 = the initial seeds): ``step``, ``loss``, ``semantic``,
      ``appearance`` (means over the batch), ``losses``/``semantics``/``appearances`` (per seed), ``lr`` (of
      the update that follows), ``seconds`` (compute time of this step: forward, backward and update) and
      ``elapsed`` (wall time since the start, initialisation included).
    - ``init``: the initialisation used; ``init_seed``: the initial seeds; ``init_seconds``: the time spent
      finding them (inversion, centroid, candidate scoring); ``out_dir``: where the steps were saved, or None.
    """

    seed: torch.Tensor
    image: torch.Tensor
    history: list[dict]
    init: str
    init_seed: torch.Tensor
    init_seconds: float
    out_dir: Path | None = None
    config: dict = field(default_factory=dict)

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]

    @property
    def steps(self) -> int:
        return self.history[-1]["step"] if self.history else 0


@dataclass
class SeedSelectTarget:
    """Per-seed optimisation targets: mean reference features (N, D) and mean encoded reference (N, *shape)."""

    features: torch.Tensor
    latent: torch.Tensor

    def checksum(self) -> float:
        return float(self.features.double().abs().sum() + self.latent.double().abs().sum())


# ---------------------------------------------------------------------------------------------------------
# feature extractors
# ---------------------------------------------------------------------------------------------------------
def model_feature_fn(model) -> FeatureFn:
    """The model's built-in ``features`` (the testbed encoder's 128-d features); images whose size differs from
    the testbed's 32x32 (tiny test models) are resized bilinearly first. Raises ValueError when the model has
    none."""
    from ..backends.base import DDIMModel

    features = getattr(model, "features", None)
    if features is None or getattr(type(model), "features", None) is DDIMModel.features:
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)} has no built-in feature extractor: pass "
                         "feature_fn=<callable images -> features> or feature_fn='path/to/local/clip'")
    judge_size = 32 if hasattr(model, "judge") else None

    def fn(images: torch.Tensor) -> torch.Tensor:
        if judge_size is not None and tuple(images.shape[-2:]) != (judge_size, judge_size):
            images = F.interpolate(images, size=(judge_size, judge_size), mode="bilinear", align_corners=False)
        return features(images)

    return fn


def clip_feature_fn(path: str | Path, device: str | torch.device = "cpu") -> FeatureFn:
    """CLIP image features from a local folder, differentiable (resize + normalise done in torch).

    A transformers CLIP folder (``config.json`` of a CLIPModel or CLIPVisionModelWithProjection) or an
    open_clip folder (``open_clip_config.json``, loaded with open_clip's ``local-dir:`` schema). Nothing is
    downloaded. Grey images are repeated to three channels; images are centre-cropped to a square and resized.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"CLIP model folder {path} does not exist")
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    if (folder / "open_clip_config.json").is_file():
        try:
            import open_clip
        except ImportError as exc:
            raise ValueError(f"{path} is an open_clip model but open_clip cannot be imported: {exc}") from None
        model = open_clip.create_model(f"local-dir:{folder}").to(device).eval().requires_grad_(False)
        cfg = json.loads((folder / "open_clip_config.json").read_text()).get("preprocess_cfg", {})
        mean, std = tuple(cfg.get("mean", mean)), tuple(cfg.get("std", std))
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else int(size)
        encode = model.encode_image
    elif (folder / "config.json").is_file():
        from transformers import CLIPVisionModelWithProjection

        try:
            model = CLIPVisionModelWithProjection.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"cannot load a CLIP vision model from {path}: {str(exc).splitlines()[0]}") from None
        model = model.to(device).eval().requires_grad_(False)
        size = int(model.config.image_size)
        pre = folder / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))

        def encode(pixels):
            return model(pixel_values=pixels).image_embeds
    else:
        raise ValueError(f"{path} is not a CLIP folder (no config.json or open_clip_config.json)")
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)

    def fn(images: torch.Tensor) -> torch.Tensor:
        x = images.to(device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        s = min(h, w)
        x = x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        if s != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=s > size)
        return encode((x - mean_t.to(x.device)) / std_t.to(x.device)).float()

    return fn


def resolve_feature_fn(model, feature_fn: FeatureFn | str | Path | None) -> FeatureFn:
    """None -> the model's own features (or $SEEDSPACE_CLIP, a local CLIP folder, when the model has none);
    a str/Path -> :func:`clip_feature_fn`; a callable is used as is."""
    if callable(feature_fn):
        return feature_fn
    if feature_fn is not None:
        return clip_feature_fn(feature_fn)
    try:
        return model_feature_fn(model)
    except ValueError:
        if os.environ.get("SEEDSPACE_CLIP"):
            return clip_feature_fn(os.environ["SEEDSPACE_CLIP"])
        raise


# ---------------------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------------------
def image_shape(model) -> tuple[int, ...]:
    """(C, H, W) of the model's images: the seed shape for pixel models, the VAE's output for latent ones."""
    if getattr(model, "image_shape", None) is not None:
        return tuple(model.image_shape)
    vae = getattr(model, "vae", None)
    if vae is not None and hasattr(model, "height"):
        return (int(vae.config.in_channels), int(model.height), int(model.width))
    return tuple(model.seed_shape)


def _check_image_set(model, images, what: str) -> torch.Tensor:
    if isinstance(images, (str, Path)):
        images = image_files(images)  # a folder of reference images
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{what}: no reference images given")
        if all(isinstance(p, (str, Path)) for p in images):
            images = model.load_images(list(images))
        elif all(isinstance(t, torch.Tensor) for t in images):
            shapes = {tuple(t.shape[-3:]) if t.ndim >= 3 else tuple(t.shape) for t in images}
            if len(shapes) > 1:
                raise ValueError(f"{what}: reference images have mismatched sizes {sorted(shapes)}; resize them to "
                                 f"{'x'.join(map(str, image_shape(model)))} (model.load_images does this for files)")
            images = torch.stack([t if t.ndim == 3 else t.reshape(t.shape[-3:]) for t in images])
        else:
            raise ValueError(f"{what}: mix of paths and tensors")
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what}: reference images must be a tensor (K, C, H, W) or a list, got {type(images).__name__}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim == 4 and images.shape[0] == 0:
        raise ValueError(f"{what}: no reference images given")
    if images.ndim != 4 or images.numel() == 0:
        raise ValueError(f"{what}: reference images must have shape (K, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] < 2:
        raise ValueError(f"{what}: SeedSelect needs at least 2 reference images, got 1 (the targets are means over "
                         "the references and the centroid initialisations need several inversions)")
    expected = image_shape(model)
    if tuple(images.shape[1:]) != expected:
        raise ValueError(f"{what}: reference images have size {'x'.join(map(str, images.shape[1:]))} but the model "
                         f"makes {'x'.join(map(str, expected))} images; resize them (model.load_images does this for files)")
    images = images.float()
    if not torch.isfinite(images).all():
        raise ValueError(f"{what}: reference images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{what}: reference images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return images.clamp(0, 1)


def reference_sets(model, reference_images) -> list[torch.Tensor]:
    """Validate references: one set (a (K, C, H, W) tensor, a list of (C, H, W) tensors or of image files, a
    folder of images) or
    several (a list of (K, C, H, W) tensors, one set per seed). ValueError on no images, a single image,
    mismatched sizes, a size the model does not make, or values outside [0, 1]."""
    if reference_images is None:
        raise ValueError("no reference images given")
    if isinstance(reference_images, (list, tuple)) and reference_images and all(
            isinstance(t, torch.Tensor) and t.ndim == 4 for t in reference_images):
        return [_check_image_set(model, t, f"reference set {i}") for i, t in enumerate(reference_images)]
    return [_check_image_set(model, reference_images, "reference images")]


# ---------------------------------------------------------------------------------------------------------
# the objective
# ---------------------------------------------------------------------------------------------------------
@torch.no_grad()
def make_target(model, sets: list[torch.Tensor], feature_fn: FeatureFn) -> SeedSelectTarget:
    """Mean reference features and mean encoded reference of each set (one row per set)."""
    feats, lats = [], []
    for refs in sets:
        feats.append(feature_fn(refs).float().mean(0))
        lats.append(model.encode(refs).float().mean(0).cpu())
    return SeedSelectTarget(torch.stack(feats).cpu(), torch.stack(lats))


def _sample_with_predictions(model, seeds, conditions, sampler_steps, guidance, n_last, checkpoint):
    """x_0 and the DDIM clean-image predictions of the last ``n_last`` steps (oldest first, the last is x_0)."""
    from ..backends.base import conditions_list
    from ..backends.ddim import ddim_sample, ddim_timesteps

    if not (hasattr(model, "eps_fn") and hasattr(model, "alphas_cumprod")):  # any other backend: final image only
        x0 = model.generate_x0(seeds, conditions, sampler_steps, guidance, checkpoint=checkpoint)
        return x0, [x0]
    seeds = model._check_seeds(seeds) if hasattr(model, "_check_seeds") else seeds
    eps = model.eps_fn(conditions_list(conditions, seeds.shape[0]), guidance)
    timesteps = ddim_timesteps(model.alphas_cumprod.numel(), sampler_steps)
    levels = [float(model.alphas_cumprod[t].double()) for t in timesteps] + [1.0]
    n = len(timesteps)
    first = n - min(n_last, n)
    preds, prev = [], [seeds]

    def callback(i, x):
        if i >= first:
            a_in, a_out = levels[i], levels[i + 1]
            if a_out >= 1.0:
                preds.append(x)
            else:  # solve x_i = sqrt(a_in) x0 + sqrt(1-a_in) e, x_{i+1} = sqrt(a_out) x0 + sqrt(1-a_out) e
                A, B, C, D = math.sqrt(a_in), math.sqrt(1 - a_in), math.sqrt(a_out), math.sqrt(1 - a_out)
                preds.append((D * prev[0] - B * x) / (A * D - B * C))
        prev[0] = x

    x0 = ddim_sample(eps, seeds, model.alphas_cumprod, sampler_steps, False, checkpoint, callback)
    return x0, preds


def _decode_for_features(model, x0: torch.Tensor) -> torch.Tensor:
    """Images for the feature extractor. Pixel models: (x0 + 1) / 2 clamped to [0, 1] in the forward pass with a
    straight-through gradient, so out-of-range pixels of early x0-predictions still pass gradient (a plain clamp
    would zero it); other models: ``model.decode``."""
    from ..backends.pixel import PixelUNetModel

    if isinstance(model, PixelUNetModel):
        raw = (x0 + 1) / 2
        return raw + (raw.clamp(0, 1) - raw).detach()
    return model.decode(x0)


def seedselect_loss(model, seeds: torch.Tensor, target: SeedSelectTarget, conditions, feature_fn: FeatureFn,
                    sampler_steps: int, guidance: float, semantic_weight: float = 10.0,
                    appearance_weight: float = 1.0, step_weights: Sequence[float] = SEMANTIC_STEP_WEIGHTS,
                    checkpoint: bool = True):
    """Per-seed (loss, semantic, appearance), each (N,), and the final x_0 (differentiable w.r.t. seeds)."""
    x0, preds = _sample_with_predictions(model, seeds, conditions, sampler_steps, guidance, len(step_weights),
                                         checkpoint)
    w = torch.tensor(list(step_weights)[-len(preds):], dtype=torch.float32)
    w = w / w.sum()
    n = seeds.shape[0]
    feats = feature_fn(_decode_for_features(model, torch.cat(preds))).float()
    feats = feats.reshape(len(preds), n, -1)
    cos = F.cosine_similarity(feats, target.features.to(feats.device)[None], dim=-1)  # (J, N)
    semantic = ((1 - cos) * w.to(cos.device)[:, None]).sum(0)
    appearance = (x0.float() - target.latent.to(x0.device)).pow(2).flatten(1).mean(1)
    semantic = semantic.to(appearance.device)
    return semantic_weight * semantic + appearance_weight * appearance, semantic, appearance, x0


# ---------------------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------------------
def _centroid(inverted: torch.Tensor, method: str, **kwargs):
    from .. import geometry

    out = geometry.centroid(inverted.double(), method=method, **kwargs)  # float64: the geometry's exact solvers
    if isinstance(out, tuple):
        return tuple(torch.as_tensor(o).float() for o in out)
    return torch.as_tensor(out).float()


def initial_seeds(model, init, sets: list[torch.Tensor], conditions: list, target: SeedSelectTarget | None = None,
                  feature_fn: FeatureFn | None = None, num_seeds: int = 1, seed: int | Sequence[int] = 0,
                  inversion_steps: int | None = None, sampler_steps: int | None = None, guidance: float | None = None,
                  path_points: int = 7, loss_kwargs: dict | None = None) -> torch.Tensor:
    """Starting seeds (N, *seed_shape): N = number of reference sets, or ``num_seeds`` with one set.

    - a tensor: used as is ((*seed_shape) or (N, *seed_shape)).
    - 'random': N(0, I) from the seed integers ``seed, seed+1, ...`` (or the list given).
    - 'nao-centroid' / 'cog-centroid': each set is DDIM-inverted (``model.invert``, guidance 1,
      ``inversion_steps``) and the centroid of its inversions taken (``ss.centroid(method='nao'|'cog')``).
    - 'nao-paths': the NAO centroid plus the interior points of the NAO paths from the centroid to each
      inversion (``path_points`` points per path, endpoints excluded), all scored by the SeedSelect loss without
      gradients; the lowest-loss candidate starts (the ``num_seeds`` lowest with one set). The scoring costs one
      batched forward pass over 1 + k (path_points - 2) candidates, included in the initialisation time.
    """
    shape = tuple(model.seed_shape)
    n = len(sets) if len(sets) > 1 else num_seeds
    if isinstance(init, torch.Tensor):
        seeds = init.detach().float().cpu()
        if tuple(seeds.shape) == shape:
            seeds = seeds[None]
        if tuple(seeds.shape[1:]) != shape:
            raise ValueError(f"init seeds must have shape (N, {', '.join(map(str, shape))}), got {tuple(init.shape)}")
        if len(sets) > 1 and seeds.shape[0] != len(sets):
            raise ValueError(f"got {seeds.shape[0]} init seeds for {len(sets)} reference sets")
        if not torch.isfinite(seeds).all():
            raise ValueError("init seeds contain NaN or infinite values")
        return seeds
    if init not in INIT_METHODS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INIT_METHODS)} or pass a seed tensor")
    if init == "random":
        from ..backends.base import seeds_from_ints

        ints = [int(seed) + i for i in range(n)] if isinstance(seed, int) else [int(s) for s in seed]
        if len(ints) != n:
            raise ValueError(f"got {len(ints)} seed integers for {n} seeds")
        return seeds_from_ints(ints, shape)
    if init in ("nao-centroid", "cog-centroid") and len(sets) == 1 and num_seeds > 1:
        raise ValueError(f"init={init!r} gives one seed per reference set; use num_seeds=1, several reference "
                         "sets, or init='nao-paths'/'random'")
    out = []
    for j, refs in enumerate(sets):
        cond = conditions[j] if len(sets) > 1 else conditions[0]
        inverted = model.invert(refs, cond, inversion_steps).float().cpu()
        if init == "cog-centroid":
            out.append(_centroid(inverted, "cog").reshape(1, *shape))
            continue
        if init == "nao-centroid":
            out.append(_centroid(inverted, "nao").reshape(1, *shape))
            continue
        if path_points < 3:
            raise ValueError("path_points must be >= 3 (the path endpoints are not candidates)")
        centre, paths = _centroid(inverted, "nao", return_paths=True, steps=path_points)
        paths = torch.as_tensor(paths).float().reshape(inverted.shape[0], path_points, *shape)
        candidates = torch.cat([torch.as_tensor(centre).float().reshape(1, *shape),
                                paths[:, 1:-1].reshape(-1, *shape)])
        single = SeedSelectTarget(target.features[j:j + 1].expand(candidates.shape[0], -1),
                                  target.latent[j:j + 1].expand(candidates.shape[0], *shape))
        with torch.no_grad():
            scores = []
            for i in range(0, candidates.shape[0], getattr(model, "batch_size", 16) or 16):
                chunk = candidates[i:i + getattr(model, "batch_size", 16)]
                sub = SeedSelectTarget(single.features[i:i + chunk.shape[0]], single.latent[i:i + chunk.shape[0]])
                scores.append(seedselect_loss(model, chunk, sub, cond, feature_fn, sampler_steps, guidance,
                                              checkpoint=False, **(loss_kwargs or {}))[0].cpu())
        order = torch.cat(scores).argsort()
        if len(sets) == 1 and n > candidates.shape[0]:
            raise ValueError(f"num_seeds={n} but 'nao-paths' has only {candidates.shape[0]} candidates; raise "
                             "path_points or lower num_seeds")
        out.append(candidates[order[:n if len(sets) == 1 else 1]])
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------------------
def save_grid(images: torch.Tensor, path: Path) -> None:
    """Images (N, C, H, W) in [0, 1] -> one PNG row, written atomically."""
    import numpy as np

    save_png(path, np.concatenate(list(to_uint8(images)), axis=1))


def _save_step(out_dir: Path, step: int, seeds: torch.Tensor, opt_state: dict, record: dict,
               images: torch.Tensor | None) -> None:
    from safetensors.torch import save_file

    tensors = {
        "seeds": seeds.detach().float().cpu().contiguous(),  # "seeds": usable as a seed file by the CLI
        "loss": torch.tensor(record["losses"], dtype=torch.float32),
        "semantic": torch.tensor(record["semantics"], dtype=torch.float32),
        "appearance": torch.tensor(record["appearances"], dtype=torch.float32),
        "step": torch.tensor([step], dtype=torch.int64),
        "adamw_step": torch.tensor([float(opt_state.get("step", 0.0))], dtype=torch.float32),
    }
    for key in ("exp_avg", "exp_avg_sq"):  # separate copies: safetensors refuses tensors sharing memory
        value = opt_state.get(key)
        tensors[f"adamw_{key}"] = (torch.zeros_like(tensors["seeds"]) if value is None
                                   else value.detach().float().cpu().clone().contiguous())
    with atomic_path(out_dir / f"step_{step:04d}.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "step": str(step)})
    if images is not None:
        save_grid(images, out_dir / f"step_{step:04d}.png")


def _write_history(out_dir: Path, payload: dict) -> None:
    write_text(out_dir / "history.json", json.dumps(payload, indent=1))


def _last_saved_step(out_dir: Path) -> int | None:
    steps = []
    for p in out_dir.glob("step_*.safetensors"):
        try:
            steps.append(int(p.stem.split("_")[1]))
        except (IndexError, ValueError):
            continue
    return max(steps) if steps else None


def load_step(out_dir: str | Path, step: int | None = None) -> dict:
    """A saved step's tensors (seeds, loss, semantic, appearance, AdamW moments), the last one by default."""
    from safetensors.torch import load_file

    out_dir = Path(out_dir)
    step = _last_saved_step(out_dir) if step is None else step
    if step is None:
        raise ValueError(f"no saved SeedSelect steps in {out_dir}")
    return load_file(str(out_dir / f"step_{step:04d}.safetensors"))


# ---------------------------------------------------------------------------------------------------------
# the optimisation
# ---------------------------------------------------------------------------------------------------------
CONFIG_KEYS_MUST_MATCH = ("lr", "lr_decay", "lr_decay_after", "weight_decay", "semantic_weight", "appearance_weight",
                          "step_weights", "sampler_steps", "guidance", "conditions", "num_seeds")


def _open_run_dir(out: Path, config: dict, resume: bool, overwrite: bool) -> tuple[dict | None, list[dict], float]:
    """Prepare ``out`` for a run: (the last saved step's tensors plus the saved config, or None; the history
    before it; the saved initialisation time). Refuses to resume a run whose settings or references differ,
    and to start afresh over a saved run unless ``overwrite``."""
    out.mkdir(parents=True, exist_ok=True)
    last = _last_saved_step(out)
    if last is None:
        return None, [], 0.0
    if not resume:
        if not overwrite:
            raise ValueError(f"{out} already holds a SeedSelect run (up to step {last}); pass resume=True to continue "
                             "it or overwrite=True to start afresh")
        for p in list(out.glob("step_*.safetensors")) + list(out.glob("step_*.png")):
            p.unlink()
        return None, [], 0.0
    if not (out / "history.json").is_file():
        raise ValueError(f"{out} has saved steps but no history.json; cannot resume")
    payload = json.loads((out / "history.json").read_text())
    old = payload.get("config", {})
    for key in CONFIG_KEYS_MUST_MATCH:
        if key in old and old[key] != config[key]:
            raise ValueError(f"cannot resume {out}: {key} was {old[key]!r}, now {config[key]!r}")
    if not math.isclose(old.get("target_checksum", config["target_checksum"]), config["target_checksum"], rel_tol=1e-4):
        raise ValueError(f"cannot resume {out}: the reference images differ from the saved run's")
    saved = dict(load_step(out, last), config=old)
    history = [h for h in payload.get("history", []) if h["step"] < last]
    return saved, history, float(payload.get("init_seconds", 0.0))


def seedselect(model, reference_images: ImageSet | Sequence[torch.Tensor], condition=None, *,
               init: str | torch.Tensor = "nao-centroid", steps: int = 30, lr: float = 0.1,
               lr_decay: float = 0.1, lr_decay_after: int = 3, weight_decay: float = 0.01,
               semantic_weight: float = 10.0, appearance_weight: float = 1.0,
               step_weights: Sequence[float] = SEMANTIC_STEP_WEIGHTS, sampler_steps: int | None = None,
               guidance: float | None = None, feature_fn: FeatureFn | str | Path | None = None,
               num_seeds: int = 1, seed: int | Sequence[int] = 0, inversion_steps: int | None = None,
               path_points: int = 7, out_dir: str | Path | None = None, resume: bool = False,
               overwrite: bool = False, save_images: bool = True, progress: bool = False,
               callback: Callable[[int, dict, torch.Tensor, torch.Tensor], None] | None = None) -> SeedSelectResult:
    """Optimise seeds so the model's images match ``reference_images`` (>= 2 real images in [0, 1]).

    Args:
        model: a seedspace model (any ``DDIMModel`` backend; others work through ``generate_x0`` with the
            semantic term on the final image only).
        reference_images: (K, C, H, W) tensor in [0, 1], a list of (C, H, W) tensors or image files, or a
            folder of images (one reference set), or a list of (K_j, C, H, W) tensors (one set per seed,
            optimised in one batch).
        condition: the class / prompt (one for all seeds, or a list with one per seed).
        init: 'random' | 'nao-centroid' | 'nao-paths' | 'cog-centroid' | a seed tensor (see :func:`initial_seeds`).
        steps: optimisation steps (updates); the history has steps + 1 entries (step 0 = the initial seeds).
        lr, lr_decay, lr_decay_after, weight_decay: AdamW; the lr is multiplied by ``lr_decay`` for every
            update after the first ``lr_decay_after`` (published: 0.1 after 3).
        semantic_weight, appearance_weight, step_weights: the loss (published 10, 1, (0.05, 0.25, 0.7)).
        sampler_steps: DDIM steps of the sampler inside the loop (default: the model's ``default_steps``);
            fewer steps make each optimisation step proportionally cheaper.
        guidance: classifier-free guidance (default: the model's).
        feature_fn: callable images -> features, a local CLIP folder, or None for the model's own features.
        num_seeds, seed: batch size and seed integers for 'random' (and the number of 'nao-paths' candidates
            kept) when there is one reference set.
        inversion_steps: DDIM steps of the inversion for the centroid inits (default: the model's).
        path_points: points per NAO path for 'nao-paths' (endpoints excluded from the candidates).
        out_dir: save every step there (``step_XXXX.safetensors``: seeds, per-seed loss terms, AdamW moments;
            ``step_XXXX.png``; ``history.json``), atomically.
        resume: continue from the last saved step in ``out_dir`` (exactly: the AdamW moments are restored);
            the settings in CONFIG_KEYS_MUST_MATCH and the references must be those of the saved run.
        overwrite: allow starting afresh in an ``out_dir`` that already holds a run (its files are replaced).
        progress: show a tqdm bar with the loss.
        callback: ``callback(step, record, seeds, images)`` after each step's forward pass (before the update).
    """
    from tqdm.auto import tqdm

    from ..backends.base import conditions_list

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1, got {num_seeds}")
    if len(step_weights) < 1 or any(w < 0 for w in step_weights) or sum(step_weights) <= 0:
        raise ValueError(f"step_weights must be non-negative with a positive sum, got {step_weights}")
    sets = reference_sets(model, reference_images)
    n = len(sets) if len(sets) > 1 else (init.shape[0] if isinstance(init, torch.Tensor) and init.ndim == len(model.seed_shape) + 1 else num_seeds)
    if len(sets) > 1 and num_seeds not in (1, len(sets)):
        raise ValueError(f"num_seeds={num_seeds} with {len(sets)} reference sets: one seed per set")
    conditions = conditions_list(condition, n)
    if len(sets) > 1 and isinstance(condition, (list, tuple)) and len(condition) != len(sets):
        raise ValueError(f"got {len(condition)} conditions for {len(sets)} reference sets")
    guidance = float(model.default_guidance if guidance is None else guidance)
    sampler_steps = int(sampler_steps or model.default_steps)
    if hasattr(model, "eps_fn"):
        model.eps_fn(conditions, guidance)  # validates the condition(s) (unknown class, prompt to a class model, ...)
    feature_fn = resolve_feature_fn(model, feature_fn)
    loss_kwargs = dict(semantic_weight=semantic_weight, appearance_weight=appearance_weight,
                       step_weights=tuple(step_weights))

    t_start = time.perf_counter()
    target = make_target(model, sets, feature_fn)
    if len(sets) == 1 and n > 1:
        target = SeedSelectTarget(target.features.expand(n, -1).clone(), target.latent.expand(n, *target.latent.shape[1:]).clone())
    config = {"init": init if isinstance(init, str) else "tensor", "steps": steps, "lr": lr, "lr_decay": lr_decay,
              "lr_decay_after": lr_decay_after, "weight_decay": weight_decay, "semantic_weight": semantic_weight,
              "appearance_weight": appearance_weight, "step_weights": list(step_weights),
              "sampler_steps": sampler_steps, "guidance": guidance, "conditions": [str(c) for c in conditions],
              "num_seeds": n, "num_references": [int(s.shape[0]) for s in sets], "model": getattr(model, "name", ""),
              "target_checksum": target.checksum(), "format": FORMAT}

    out = Path(out_dir).expanduser() if out_dir is not None else None
    saved, history, init_seconds = _open_run_dir(out, config, resume, overwrite) if out is not None else (None, [], 0.0)
    if saved is not None:
        start = int(saved["step"][0])
        config["init"] = saved["config"].get("init", config["init"])
        init_seed = load_step(out, 0)["seeds"] if (out / "step_0000.safetensors").is_file() else saved["seeds"]
        current = saved["seeds"].float()
        if tuple(current.shape) != (n, *model.seed_shape):
            raise ValueError(f"cannot resume {out}: saved seeds have shape {tuple(current.shape)}, expected "
                             f"{(n, *model.seed_shape)}")
        elapsed_before = history[-1]["elapsed"] if history else init_seconds
    else:
        start = 0
        t0 = time.perf_counter()
        current = initial_seeds(model, init, sets, conditions, target, feature_fn, n if len(sets) == 1 else 1, seed,
                                inversion_steps, sampler_steps, guidance, path_points, loss_kwargs)
        init_seconds = time.perf_counter() - t0 + (t0 - t_start)
        init_seed = current.clone()
        elapsed_before = init_seconds

    device = getattr(model, "device", torch.device("cpu"))
    x = current.to(device, torch.float32).clone().requires_grad_(True)
    opt = torch.optim.AdamW([x], lr=lr, weight_decay=weight_decay)
    if saved is not None and float(saved["adamw_step"][0]) > 0:
        opt.state[x] = {"step": torch.tensor(float(saved["adamw_step"][0])),
                        "exp_avg": saved["adamw_exp_avg"].to(device).clone(),
                        "exp_avg_sq": saved["adamw_exp_avg_sq"].to(device).clone()}

    def payload_dict():
        return {"config": config, "init_seconds": init_seconds, "history": history}

    if out is not None and saved is None:
        _write_history(out, payload_dict())

    bar = tqdm(range(start, steps + 1), desc="seedselect", disable=not progress, initial=start, total=steps + 1)
    wall0 = time.perf_counter()
    images = None
    for step in bar:
        t0 = time.perf_counter()
        update = step < steps
        with torch.set_grad_enabled(update):
            losses, sem, app, x0 = seedselect_loss(model, x, target, conditions, feature_fn, sampler_steps, guidance,
                                                   checkpoint=True, **loss_kwargs)
        if update:
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
        step_lr = lr * (lr_decay if step >= lr_decay_after else 1.0)
        with torch.no_grad():
            images = model.decode(x0.detach()).float().cpu()
        losses, sem, app = (t.detach().float().cpu() for t in (losses, sem, app))
        record = {"step": step, "loss": float(losses.mean()), "semantic": float(sem.mean()),
                  "appearance": float(app.mean()), "losses": losses.tolist(), "semantics": sem.tolist(),
                  "appearances": app.tolist(), "lr": step_lr if update else None}
        if callback is not None:
            callback(step, record, x.detach(), images)
        if out is not None:
            _save_step(out, step, x, opt.state.get(x, {}), record, images if save_images else None)
        if update:
            for group in opt.param_groups:
                group["lr"] = step_lr
            opt.step()
        record["seconds"] = time.perf_counter() - t0
        record["elapsed"] = elapsed_before + (time.perf_counter() - wall0)
        history.append(record)
        if out is not None:
            _write_history(out, payload_dict())
        bar.set_postfix(loss=f"{record['loss']:.4f}", sem=f"{record['semantic']:.4f}", app=f"{record['appearance']:.4f}")
    bar.close()

    final = x.detach().cpu()
    return SeedSelectResult(seed=final, image=images, history=history, init=config["init"],
                            init_seed=init_seed.detach().cpu(), init_seconds=init_seconds, out_dir=out, config=config)
