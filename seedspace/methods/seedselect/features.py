"""Image feature extractors for SeedSelect's semantic term: the model's own, or CLIP from a local folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def clip_feature_fn(path: str | Path, device: str | torch.device = "cpu") -> FeatureFn:
    """CLIP image features from a local folder, differentiable (resize + normalise done in torch).

    A transformers CLIP folder (``config.json`` of a CLIPModel or CLIPVisionModelWithProjection) or an
    open_clip folder (``open_clip_config.json``, loaded with open_clip's ``local-dir:`` schema). Nothing is
    downloaded. Grey images are repeated to three channels; images are centre-cropped to a square and resized;
    then f(x) = encode((x - mean) / std).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"CLIP model folder {path} does not exist")
    if (folder / "open_clip_config.json").is_file():
        encode, size, mean, std = _open_clip(folder, device)
    elif (folder / "config.json").is_file():
        encode, size, mean, std = _transformers_clip(folder, device)
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


def _open_clip(folder: Path, device):
    """(encode, input size, mean, std) of an open_clip folder."""
    try:
        import open_clip  # optional and heavy: only for open_clip folders
    except ImportError as exc:
        raise ValueError(f"{folder} is an open_clip model but open_clip cannot be imported: {exc}") from None
    model = open_clip.create_model(f"local-dir:{folder}").to(device).eval().requires_grad_(False)
    cfg = json.loads((folder / "open_clip_config.json").read_text()).get("preprocess_cfg", {})
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    return model.encode_image, size, tuple(cfg.get("mean", CLIP_MEAN)), tuple(cfg.get("std", CLIP_STD))


def _transformers_clip(folder: Path, device):
    """(encode, input size, mean, std) of a transformers CLIP folder."""
    from transformers import CLIPVisionModelWithProjection  # heavy: only for CLIP folders

    try:
        model = CLIPVisionModelWithProjection.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load a CLIP vision model from {folder}: {str(exc).splitlines()[0]}") from None
    model = model.to(device).eval().requires_grad_(False)
    mean, std = CLIP_MEAN, CLIP_STD
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))

    def encode(pixels):
        return model(pixel_values=pixels).image_embeds

    return encode, int(model.config.image_size), mean, std


def resolve_feature_fn(model, feature_fn: FeatureFn | str | Path | None) -> FeatureFn:
    """A callable is used as is; a str/Path is a local CLIP folder (:func:`clip_feature_fn`); None -> the model's
    own ``features``, or $SEEDSPACE_CLIP (a local CLIP folder) when the model has none."""
    if callable(feature_fn):
        return feature_fn
    if feature_fn is not None:
        return clip_feature_fn(feature_fn)
    if model.has_features:
        return model.features
    if os.environ.get("SEEDSPACE_CLIP"):
        return clip_feature_fn(os.environ["SEEDSPACE_CLIP"])
    raise ValueError(f"{model.name} has no built-in feature extractor: pass feature_fn=<callable images -> "
                     "features> or feature_fn='path/to/local/clip'")
