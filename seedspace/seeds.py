"""Seed specs: integers, seed files, images (DDIM-inverted) and weighted NAO blends, turned into seeds with their
provenance.

    seeds, sources = ss.load_seeds("examples/ankle_boot_1.png,examples/ankle_boot_2.png", model, condition=9)
    seeds, sources = ss.load_seeds("11,42,mix.safetensors,'1111:0.2|2222:0.8'", model)

A spec is a comma list of entries; each entry becomes one seed (a seed file may hold a batch, a folder every image
in it). Its provenance is a JSON-ready dict per seed (``{"int": 11}``, ``{"image": path, "sha256": ...}``,
``{"file": path, "sha256": ..., "index": k}``, ``{"blend": [...], "weights": [...]}``), the record that run folders
and PNG metadata carry so a seed can be made again.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import NamedTuple, Sequence, Union

import torch

from .checks import SEED_INT_LIMIT
from .backends.base import check_seed_values, seeds_from_ints
from .geometry import blend
from .outputs import IMAGE_SUFFIXES, file_sha256, image_files, load_seed_file

SeedSpec = Union[str, int, Path, Sequence[Union[str, int, Path]]]

_INT = re.compile(r"^[+]?\d+$")
_WEIGHTED = re.compile(r"^(.+):([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$")
_NUMBER = re.compile(r"^[-+]?[\d.eE+-]+$")


class LoadedSeeds(NamedTuple):
    """Seeds (N, *seed_shape) float32 on the CPU and one provenance dict per seed."""

    seeds: torch.Tensor
    provenance: list[dict]


def parse_seed_spec(spec: SeedSpec, what: str = "seeds", blends: bool = True) -> list[dict]:
    """``"11,42,a.safetensors,img.png,folder/,1:0.2|2:0.8"`` (or a list of entries) -> one item per entry:
    ``{"int": 11}``, ``{"file": ...}``, ``{"image": ...}`` (a folder gives one per image, sorted by name),
    ``{"blend": [items], "weights": [w]}``. Files are resolved to absolute paths and fingerprinted (SHA-256);
    nothing is loaded. ValueError (naming ``what``) for a malformed entry or a missing file."""
    tokens = _tokens(spec, what)
    items: list[dict] = []
    for token in tokens:
        if blends and ("|" in token or (_WEIGHTED.match(token) and not Path(token).expanduser().exists())):
            items.append(_parse_blend(token, what))
        else:
            items.extend(_parse_entry(token, what))
    return items


def _tokens(spec: SeedSpec, what: str) -> list[str]:
    if isinstance(spec, (str, Path, int)):
        text = str(spec)
        if not text.strip():
            raise ValueError(f"{what} is empty")
        tokens = text.split(",") if isinstance(spec, str) else [text]
    else:
        tokens = [str(t) for t in spec]
        if not tokens:
            raise ValueError(f"{what} is empty")
    tokens = [t.strip() for t in tokens]
    if not all(tokens):
        raise ValueError(f"{what}: empty entry in {spec!r}")
    return tokens


def _file_item(kind: str, path: Path) -> dict:
    return {kind: str(path.resolve()), "sha256": file_sha256(path)[:16]}


def _parse_entry(token: str, what: str) -> list[dict]:
    if _INT.match(token):
        value = int(token)
        if value >= SEED_INT_LIMIT:
            raise ValueError(f"{what}: seed integers must be in [0, 2^63), got {token}")
        return [{"int": value}]
    path = Path(token).expanduser()
    if path.is_dir():  # a folder of images, whatever its name
        return [_file_item("image", p) for p in image_files(path)]
    if path.suffix.lower() == ".safetensors":
        if not path.is_file():
            raise ValueError(f"{what}: seed file {token} does not exist")
        return [_file_item("file", path)]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.is_file():
            raise ValueError(f"{what}: image {token} does not exist")
        return [_file_item("image", path)]
    if path.exists():
        raise ValueError(f"{what}: {token} is neither a .safetensors seed file nor an image ({', '.join(IMAGE_SUFFIXES)})")
    if _NUMBER.match(token):
        raise ValueError(f"{what}: {token!r} is not a non-negative seed integer")
    if path.suffix or "/" in token or "\\" in token:
        raise ValueError(f"{what}: {token} does not exist")
    raise ValueError(f"{what}: {token!r} is not a seed integer, a .safetensors seed file or an image")


def _parse_blend(token: str, what: str) -> dict:
    """``1111:0.2|2222:0.8`` -> the weighted NAO blend (:func:`seedspace.blend`) of its entries."""
    parts, weights = [], []
    for part in token.split("|"):
        m = _WEIGHTED.match(part.strip())
        if not m:
            raise ValueError(f"{what}: blend entry {part.strip()!r} must be SEED:WEIGHT (e.g. 1111:0.2|2222:0.8)")
        sub = parse_seed_spec(m.group(1), what, blends=False)
        if len(sub) != 1 or Path(m.group(1)).expanduser().is_dir():
            raise ValueError(f"{what}: a blend entry is one seed, not a folder ({m.group(1)})")
        parts.append(sub[0])
        weights.append(float(m.group(2)))
    if not all(math.isfinite(w) for w in weights) or not math.isfinite(sum(weights)):
        raise ValueError(f"{what}: blend weights must be finite numbers with a finite sum, got {weights}")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{what}: blend weights must be non-negative and not all zero, got {weights}")
    return {"blend": parts, "weights": weights}


def random_seed_ints(n: int, base: int) -> list[int]:
    """``n`` seed integers in [0, 2^31 - 1) drawn from a CPU generator seeded with ``base`` (``--random-seeds``)."""
    if n < 1:
        raise ValueError(f"the number of random seeds must be >= 1, got {n}")
    gen = torch.Generator().manual_seed(int(base))
    return [int(v) for v in torch.randint(0, 2 ** 31 - 1, (n,), generator=gen)]


def describe_seed(item: dict) -> str:
    """A short label of a provenance item: ``42``, ``boot.png``, ``seeds.safetensors[3]``, ``1:0.2|2:0.8``."""
    if "blend" in item:
        return "|".join(f"{describe_seed(p)}:{w:g}" for p, w in zip(item["blend"], item["weights"]))
    if "int" in item:
        return str(item["int"])
    name = Path(item.get("file") or item.get("image")).name
    return f"{name}[{item['index']}]" if "index" in item else name


def image_paths(items) -> list[str]:
    """The image paths of seed items, blends included, in order."""
    paths = []
    for item in items:
        if isinstance(item, dict) and "blend" in item:
            paths.extend(image_paths(item["blend"]))
        elif isinstance(item, dict) and "image" in item:
            paths.append(item["image"])
    return paths


def load_seeds(spec: SeedSpec | Sequence[dict], model, condition=None, steps: int | None = None) -> LoadedSeeds:
    """Seeds (N, *model.seed_shape) float32 on the CPU from a seed spec (or items of :func:`parse_seed_spec`).

    Integers draw x ~ N(0, I) with a CPU generator; seed files give one seed or a batch (checked against the
    model's seed shape and for finite values); images are read at the model's size and DDIM-inverted together
    with ``condition`` (a list gives one condition per entry); blends take the weighted NAO blend
    argmin_c sum_i w_i d(c, x_i)^2 of their entries' seeds.
    """
    items = list(spec) if _is_items(spec) else parse_seed_spec(spec)
    shape = tuple(model.seed_shape)
    parts: list = [None] * len(items)
    provenance: list = [None] * len(items)
    for i, item in enumerate(items):
        if "blend" in item:
            cond = condition[i] if isinstance(condition, list) else condition
            seeds = load_seeds(item["blend"], model, cond, steps).seeds
            if seeds.shape[0] != len(item["weights"]):
                raise ValueError(f"blend {describe_seed(item)}: each entry must be a single seed")
            parts[i] = blend(seeds.double(), item["weights"]).float()[None]
            provenance[i] = [dict(item)]
        elif "int" in item:
            parts[i] = seeds_from_ints([item["int"]], shape)
            provenance[i] = [dict(item)]
        elif "file" in item:
            parts[i] = _seed_file(item["file"], shape)
            n = parts[i].shape[0]
            provenance[i] = [{**item, "index": k} for k in range(n)] if n > 1 else [dict(item)]
    image_slots = [i for i, it in enumerate(items) if "image" in it]
    if image_slots:
        images = model.load_images([items[i]["image"] for i in image_slots])
        cond = [condition[i] for i in image_slots] if isinstance(condition, list) else condition
        inverted = model.invert(images, cond, steps).float().cpu()
        for k, i in enumerate(image_slots):
            parts[i] = inverted[k:k + 1]
            provenance[i] = [dict(items[i])]
    return LoadedSeeds(torch.cat(parts), [p for group in provenance for p in group])


def _is_items(spec) -> bool:
    return isinstance(spec, (list, tuple)) and bool(spec) and all(isinstance(s, dict) for s in spec)


def _seed_file(path: str, shape: tuple[int, ...]) -> torch.Tensor:
    t = load_seed_file(path)
    if tuple(t.shape) == shape:
        t = t[None]
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != shape or t.shape[0] == 0:
        raise ValueError(f"seed file {Path(path).name} holds shape {tuple(t.shape)}; this model's seeds have shape "
                         f"{shape} (or a batch (N, {', '.join(map(str, shape))}))")
    check_seed_values(t, f"seed file {Path(path).name}")  # before float32 would turn huge values into inf
    return t.float()
