"""What the long-tail and few-shot benchmarks share: the model's own real data (its long-tailed training split, the
test images, a held-out pool of extra real images) and synthetic images made by
:func:`seedspace.methods.augment.augment` for an arm (a strategy and a geometry)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..methods.augment import augment
from ..methods.augment.writing import MANIFEST
from ..outputs import read_png_pixels
from ..scoring.judge import resize_images
from ..testbed.data import IMAGE_SIZE, to_model_space
from .longtail_settings import augment_options
from .runner import Runner, stable_seed

@dataclass
class BenchmarkData:
    """Real images (N, C, H, W) in [0, 1] at the model's size, with labels: the long-tailed training split (what
    the generator saw), the balanced test set, and a pool of extra real images per class that the generator never
    saw (the test references held out of the test set, and a folder's exposure-held-out split: the 'as many real
    images as synthetic ones' upper bound). ``groups``: many / medium / few classes."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    extra_x: torch.Tensor
    extra_y: torch.Tensor
    groups: dict

    @property
    def num_classes(self) -> int:
        return len(self.groups["many"]) + len(self.groups["medium"]) + len(self.groups["few"])

    def counts(self) -> list[int]:
        return torch.bincount(self.train_y, minlength=self.num_classes).tolist()


def _to_model_space(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, H, W) -> (N, 1, *size) in [0, 1]: 28x28 images padded to 32x32 as the testbed was trained on
    them (not stretched), other sizes resized."""
    if tuple(images.shape[-2:]) == (28, 28) and size == (IMAGE_SIZE, IMAGE_SIZE):
        return (to_model_space(images) + 1) / 2
    return resize_images(images[:, None].float() / 255.0, size).clamp(0, 1)


def held_out_split(model) -> tuple[torch.Tensor, torch.Tensor]:
    """The exposure-limited classes' real images the generator never saw (a folder trained with ``--exposure``),
    uint8 (N, H, W) and labels; empty for other models."""
    if (getattr(model, "info", None) or {}).get("exposure"):
        return model.data_split("exposure-held-out")
    return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)


def mirror_symmetric(model) -> bool:
    """Whether the model's data are mirror-symmetric (a flipped image is still of its class: the classifiers
    train with horizontal flips only then); testbed.json's ``mirror_symmetric``, true where it is not recorded
    (the embedded Fashion-MNIST testbed)."""
    return bool((getattr(model, "info", None) or {}).get("mirror_symmetric", True))


def benchmark_data(runner: Runner, test_per_class: int) -> BenchmarkData:
    """The model's own splits (``model.data_split``); the test images of each class are split by a seeded
    permutation into ``test_per_class`` test images and the extra-real pool, which the exposure-held-out images
    join."""
    x, y = runner.model.data_split("train-longtail")
    tx, ty = runner.model.data_split("test-references")
    test_idx, extra_idx = [], []
    for c in range(int(ty.max()) + 1):
        members = torch.nonzero(ty == c).flatten().numpy()
        if len(members) < test_per_class:  # a report must test what its settings say
            raise ValueError(f"test_per_class is {test_per_class}, but {runner.model.name} holds {len(members)} "
                             f"test images of class {c}")
        order = runner.rng("benchmark-test-split", c).permutation(members)
        test_idx += order[:test_per_class].tolist()
        extra_idx += order[test_per_class:].tolist()
    head, tail = runner.groups()["head"], runner.groups()["tail"]
    classes = list(range(int(y.max()) + 1))
    groups = {"many": head, "medium": [c for c in classes if c not in head + tail], "few": tail}
    test_idx, extra_idx = torch.tensor(sorted(test_idx)), torch.tensor(sorted(extra_idx), dtype=torch.long)
    size = tuple(runner.model.image_shape[-2:])
    hx, hy = held_out_split(runner.model)
    extra_x = torch.cat([_to_model_space(tx[extra_idx], size)] + ([_to_model_space(hx, size)] if len(hx) else []))
    return BenchmarkData(_to_model_space(x, size), y.long(), _to_model_space(tx[test_idx], size), ty[test_idx].long(),
                         extra_x, torch.cat([ty[extra_idx].long(), hy.long()]), groups)


def synthesize(runner: Runner, arm: str, condition: str, references: dict[int, torch.Tensor], per_class, out: Path,
               steps: int | None, seed: int | None = None, prior=None, model=None) -> dict[int, torch.Tensor]:
    """Synthetic images per class (data sets written by ``augment`` into ``out``), read back as {class: (n, C, H,
    W) in [0, 1]}. ``per_class``: one count for every class of ``references`` (one augment run), or {class:
    count} (one augment run per class, in ``out/<class>``, seeded by ``seed`` and the class). ``seed``: the
    augment seed (default: the run's); ``prior``: the NAO prior (default: chi); ``model``: default the runner's
    synthesis model. The arm's augment options: :func:`.longtail_settings.augment_options`; the inversion and
    SeedSelect steps: the long-tail settings'. The references' round-trip PSNR (augment's ``references_psnr``, at
    the synthesis's steps and guidance) is appended to ``runner.reference_psnr[condition]``."""
    model = model or runner.synthesis_model()
    seed = runner.cfg.seed if seed is None else seed
    if isinstance(per_class, dict):
        images = {}
        for c, n in per_class.items():
            if n > 0:
                images.update(synthesize(runner, arm, condition, {c: references[c]}, n, out / str(c),
                                         steps, stable_seed(seed, "class", c), prior, model))
        return images
    lt = runner.cfg.longtail  # the arm's prior comes in as ``prior``; the inversion and SeedSelect steps: lt's
    options = augment_options(arm)
    if options["strategy"] == "seedselect":
        options["seedselect_steps"] = lt.seedselect_steps
    names = runner.model.class_names
    # resume: a replicate cut short left its finished arms' data sets, which augment checks against these
    # settings and continues (their bytes are the uninterrupted run's)
    result = augment(model, {names[c]: refs for c, refs in references.items()}, out, resume=True,
                     per_class=per_class, condition=condition, seed=seed, steps=steps, inversion=lt.inversion,
                     inversion_steps=None if lt.inversion == "fixed-point" else runner.inversion_steps, prior=prior,
                     shard_size=64 * -(-max(per_class, 1) // 64), batch_size=64,  # one shard per class
                     keep_blank=True, **options)  # a strategy's failures are part of what it gives a classifier
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    psnr = (record.get("result") or {}).get("references_psnr")
    for c in record["parameters"]["classes"] if psnr else ():  # the references' round trip at the synthesis's
        # settings (augment's check), once per set of references and condition however many arms start from them
        seen = (condition, c["sha256"])
        if seen not in runner.round_trips_seen:
            runner.round_trips_seen.add(seen)
            runner.reference_psnr.setdefault(condition, []).extend(psnr[c["folder"]])
    runner.counters["images"] += result.generated  # the section's summary counts the synthesis as generation
    runner.counters["generate_s"] += result.seconds
    return read_dataset(out, {names[c]: c for c in references})


def read_dataset(out: Path, classes: dict[str, int]) -> dict[int, torch.Tensor]:
    """{class: (n, C, H, W) in [0, 1]} of the data set an ``augment`` run wrote into ``out`` (its manifest's
    images, in plan order); ``classes``: class name -> index, the classes read."""
    images: dict[int, list] = {c: [] for c in classes.values()}
    for line in (out / MANIFEST).read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        pixels = read_png_pixels(out / entry["file"])
        images[classes[entry["class"]]].append(torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0)
    return {c: torch.stack(v) for c, v in images.items()}
