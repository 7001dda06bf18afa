"""The seedspace nodes for ComfyUI: thin shells over the library's seed and geometry calls.

LATENT values are ComfyUI's dicts ``{"samples": (B, C, H, W)}`` (SD 1.x / SDXL: 4 channels; SD3 / Flux: 16);
every node keeps the other keys of its first LATENT input (e.g. a noise mask) and returns a new dict. Bad input
(latents of different shapes, fewer than two frames, non-finite values, an unknown prior) raises ValueError with
one line, which ComfyUI shows as the node's error. ComfyUI writes every node's inputs into the workflow it saves
with each PNG, so a frame's method, t list, prior and seeds travel with it.
"""

from __future__ import annotations

import math
import torch

from ..geometry import (CENTROID_METHODS, INTERPOLATION_METHODS, blend, centroid, interpolate, load_prior, norm_report,
                        path_at)
from ..noise import seeds_from_ints

CATEGORY = "seedspace"
NODE_PATHS = tuple(m for m in INTERPOLATION_METHODS if m != "reference")  # the slow published solver stays in Python
NODE_CENTROIDS = tuple(m for m in CENTROID_METHODS if m != "reference")
PRIOR_HELP = "chi (the paper's), scaled-chi:S (|x|/S ~ chi(d)) or the path of a prior JSON file (seedspace calibrate)"


def samples(latent, what: str = "latent") -> torch.Tensor:
    """The (B, C, H, W) tensor of a LATENT dict, checked: a 4-d floating tensor of finite values."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError(f"{what} must be a LATENT (a dict with 'samples')")
    x = latent["samples"]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point() or x.shape[0] == 0:
        raise ValueError(f"{what} must hold a (batch, channels, height, width) float tensor, got "
                         f"{tuple(getattr(x, 'shape', ()))}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return x


def latent_like(latent: dict, x: torch.Tensor) -> dict:
    """A new LATENT with ``x`` as its samples and the other keys of ``latent`` (a noise mask is per image, so it
    is dropped when the batch size changes)."""
    out = {k: v for k, v in latent.items() if k != "samples" and not (k == "noise_mask" and x.shape[0] != latent["samples"].shape[0])}
    out["samples"] = x
    return out


def prior_for(text: str, d: int):
    """A prior from the node's text ('chi' when empty), for seeds of dimension d."""
    return load_prior((text or "chi").strip(), d)


def noise_for_seeds(text: str, shape: tuple[int, ...]) -> torch.Tensor:
    """(N, *shape) unit Gaussian noise for seed integers and weighted NAO blends of them ('11,42',
    '1111:0.2|2222:0.8'), each integer drawn with a CPU ``torch.Generator`` seeded by it: for a batch-1 latent,
    exactly the noise ComfyUI's KSampler draws for that seed (``torch.randn`` of the latent's shape from
    ``torch.manual_seed(seed)``), and the seeds of ``seedspace --seeds`` (the same grammar, integers only here:
    the command line's parser also reads files and images, which needs the models extra)."""
    out = []
    for token in [t.strip() for t in str(text).split(",") if t.strip()] or [""]:
        entries = [e.strip() for e in token.split("|")]
        ints, weights = [], []
        for entry in entries:
            value, _, weight = entry.partition(":")
            if not value.isdigit() or int(value) >= 2 ** 63 or (len(entries) > 1) != bool(weight):
                raise ValueError(f"seeds: {token!r} is not a seed integer or a blend SEED:W|SEED:W (e.g. 1111:0.2|2222:0.8)")
            ints.append(int(value))
            weights.append(float(weight) if weight else 1.0)
        noise = seeds_from_ints(ints, shape, dtype=torch.float64)
        out.append(noise[0] if len(ints) == 1 else blend(noise, weights))
    return torch.stack(out).float()


class _LatentNode:
    """What ComfyUI reads from every node here: its menu category, the method it calls, a LATENT out."""

    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("LATENT",)


class NoiseFromSeeds(_LatentNode):
    """Seed integers (and weighted NAO blends of them) -> a batch of noise latents of the input latent's shape."""

    RETURN_NAMES = ("noise",)
    DESCRIPTION = "KSampler's noise for each seed (batch-1 latents), or the NAO blend of several with weights."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT", {"tooltip": "gives the shape (channels, height, width)"}),
                             "seeds": ("STRING", {"default": "11,42", "tooltip": "comma list; '1111:0.2|2222:0.8' blends"})}}

    def run(self, latent, seeds):
        x = samples(latent)
        noise = noise_for_seeds(seeds, tuple(x.shape[1:])).to(x.dtype)
        return (latent_like(latent, noise),)


class Interpolate(_LatentNode):
    """The path between two latents (or noises): NAO (the likelihood-maximising path under a norm prior), SLERP,
    COG or LERP; frames as a batch, t = 0 the first input."""

    RETURN_NAMES = ("frames",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("LATENT",), "b": ("LATENT",),
                             "method": (list(NODE_PATHS), {"default": "nao"}),
                             "frames": ("INT", {"default": 9, "min": 2, "max": 10000}),
                             "spacing": (["euclidean", "nao", "angle"], {"default": "euclidean"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP}),
                             "t": ("STRING", {"default": "", "tooltip": "comma list of t in [0, 1] (arc-length "
                                              "fractions for NAO); empty: `frames` evenly spaced"})}}

    def run(self, a, b, method, frames, spacing="euclidean", prior="chi", t=""):
        xa, xb = samples(a, "a"), samples(b, "b")
        if xa.shape != xb.shape or xa.shape[0] != 1:
            raise ValueError(f"a and b must be single latents of one shape, got {tuple(xa.shape)} and {tuple(xb.shape)}")
        prior = prior_for(prior, xa[0].numel()) if method == "nao" else None
        if str(t).strip():
            try:
                positions = [float(v) for v in str(t).split(",") if v.strip()]
            except ValueError:
                raise ValueError(f"t must be comma-separated numbers in [0, 1], got {t!r}") from None
            return (latent_like(a, path_at(xa[0], xb[0], positions, method, prior)),)
        if int(frames) < 2:
            raise ValueError(f"frames must be at least 2, got {frames}")
        return (latent_like(a, interpolate(xa[0], xb[0], steps=int(frames), method=method, spacing=spacing,
                                           prior=prior)),)


class Centroid(_LatentNode):
    """The centroid of a batch of latents: NAO (the Fréchet mean in the NAO metric), normalized, spherical, COG
    or the Euclidean mean."""

    RETURN_NAMES = ("centroid",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latents": ("LATENT", {"tooltip": "a batch of at least two"}),
                             "method": (list(NODE_CENTROIDS), {"default": "nao"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def run(self, latents, method, prior="chi"):
        x = samples(latents, "latents")
        if x.shape[0] < 2:
            raise ValueError(f"a centroid needs a batch of at least two latents, got {x.shape[0]}")
        c = centroid(x, method=method, prior=prior_for(prior, x[0].numel()) if method == "nao" else None)
        return (latent_like(latents, c[None]),)


class Blend(_LatentNode):
    """The weighted NAO blend of a batch of latents: argmin_c sum_i w_i dist(c, x_i)^2."""

    RETURN_NAMES = ("blend",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latents": ("LATENT",),
                             "weights": ("STRING", {"default": "0.5,0.5", "tooltip": "one weight per latent"}),
                             "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def run(self, latents, weights, prior="chi"):
        x = samples(latents, "latents")
        try:
            w = [float(v) for v in str(weights).split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"weights must be comma-separated numbers, got {weights!r}") from None
        if len(w) != x.shape[0]:
            raise ValueError(f"{len(w)} weights for {x.shape[0]} latents")
        return (latent_like(latents, blend(x, w, prior=prior_for(prior, x[0].numel()))[None]),)


class NormReport(_LatentNode):
    """Each latent's norm / sqrt(d), its z-score under the prior and a flag when it is off the shell: why a frame
    comes out washed out or burnt. Passes the latent through."""

    RETURN_TYPES = ("LATENT", "STRING")
    RETURN_NAMES = ("latent", "report")
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT",), "prior": ("STRING", {"default": "chi", "tooltip": PRIOR_HELP})}}

    def run(self, latent, prior="chi"):
        x = samples(latent)
        d = x[0].numel()
        lines = [f"d = {d}, sqrt(d) = {math.sqrt(d):.1f}"]
        for i, r in enumerate(norm_report(x.double(), prior=prior_for(prior, d))):
            lines.append(f"{i}: norm/sqrt(d) {r.norm_ratio:.3f}, z {r.zscore:+.1f}, percentile {r.percentile:.1f}"
                         + ("  OFF THE SHELL" if r.atypical else ""))
        text = "\n".join(lines)
        return {"ui": {"text": [text]}, "result": (latent, text)}


NODE_CLASS_MAPPINGS = {"SeedspaceNoiseFromSeeds": NoiseFromSeeds, "SeedspaceInterpolate": Interpolate,
                       "SeedspaceCentroid": Centroid, "SeedspaceBlend": Blend, "SeedspaceNormReport": NormReport}
NODE_DISPLAY_NAME_MAPPINGS = {"SeedspaceNoiseFromSeeds": "Noise from seeds (seedspace)",
                              "SeedspaceInterpolate": "Interpolate latents: NAO / SLERP / COG (seedspace)",
                              "SeedspaceCentroid": "Centroid of latents (seedspace)",
                              "SeedspaceBlend": "Weighted NAO blend (seedspace)",
                              "SeedspaceNormReport": "Norm report (seedspace)"}
