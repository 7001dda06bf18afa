"""A complete, self-describing testbed folder from labelled images: ``seedspace testbed train``.

    folder = train_testbed("runs/digits", "digits.npz", TestbedRecipe(imbalance=10, fewshot=20, test_references=40))
    model = seedspace.load_model(folder)   # class names, null class and guidance, judge, encoder, few-shot images

The folder has the embedded testbed's format: ``unet/`` and ``scheduler/`` (diffusers), ``judge.safetensors`` and
``encoder.safetensors`` (unless skipped), ``fewshot.safetensors``, the split files ``train-longtail`` and
``test-references`` (see :mod:`seedspace.testbed.data`), ``testbed.json``, ``loss_history.json``, ``MODEL_CARD.md``
and ``training.json`` (the record a resumed training is checked against). ``testbed.json`` is written last: a
folder without it is an unfinished training, which ``resume=True`` continues to the same bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ..checks import check_int
from ..hardware import torch_threads
from ..settings import check_unchanged
from ..outputs import atomic_path, follow_umask, read_json_object, write_json, write_text
from .data import (LabelledImages, fewshot_indices, load_dataset, long_tail_count, long_tail_indices, to_model_space,
                   write_split, SPLIT_FILES)
from .recipe import FULL, TestbedRecipe, exposure_text
from .train import make_scheduler, train_classifier, train_diffusion, training_bytes

log = logging.getLogger(__name__)

RECORD = "training.json"
LARGE_TRAINING_BYTES = 8 * 2 ** 30  # larger trainings need allow_large
CHECKPOINT = "checkpoint.safetensors"
EXPOSURE_STREAM = 35  # the random stream of the exposure's choice of images (with the recipe's seed)


def recorded_recipe(out: str | Path) -> tuple[TestbedRecipe, str | None]:
    """The recipe and the data path (absolute; None: Fashion-MNIST) of the training in ``out``; ValueError when
    ``out`` holds no testbed training."""
    record = _read_record(Path(out))
    return TestbedRecipe.from_record(record["recipe"]), record["data"].get("path", record["data"]["given"])


def train_testbed(out: str | Path, data: str | Path | None = None, recipe: TestbedRecipe = TestbedRecipe(),
                  resume: bool = False, checkpoint_every: int = 250,
                  allow_large: bool = False) -> Path:
    """Train a testbed on ``data`` (see :func:`~seedspace.testbed.data.load_dataset`) into the new folder ``out``,
    or continue the unfinished training in ``out`` (``resume``: same recipe and data, else ValueError).

    Every input is checked before anything is written; an error before the first diffusion checkpoint of a new
    folder removes it (nothing half-written stays); Ctrl-C leaves a folder that ``resume`` continues, and the
    result is the same bytes as an uninterrupted training on the CPU. Its notes are INFO lines of the
    ``seedspace.testbed.build`` logger.
    A recipe whose training would hold more than ``LARGE_TRAINING_BYTES`` (:func:`training_bytes`, estimated) is
    refused unless ``allow_large``.
    """
    out = Path(out)
    check_int(checkpoint_every, "checkpoint_every", 1)
    record = None
    if resume:
        record = _read_record(out)
        recorded = TestbedRecipe.from_record(record["recipe"])
        if recipe.threads is None:  # unset: the recorded count
            recipe = dataclasses.replace(recipe, threads=recorded.threads)
        check_unchanged(recorded.to_record(), recipe.to_record(), out)
    elif out.exists() or out.is_symlink():
        raise FileExistsError(f"output folder {out} already exists; pass --resume to continue its training, or "
                              "choose another --out")
    else:  # the thread count that ran is recorded, so a resumed training computes with it
        recipe = dataclasses.replace(recipe, threads=recipe.threads or torch.get_num_threads())
    dataset = load_dataset(data)
    rows = split_rows(dataset, recipe)
    needed = training_bytes(len(dataset.classes), recipe.image_size, recipe.channels, recipe.batch_size)
    if needed > LARGE_TRAINING_BYTES and not allow_large:
        raise ValueError(f"this recipe's training would hold about {needed / 2 ** 30:.0f} GiB (channels "
                         f"{','.join(map(str, recipe.channels))}, batch_size {recipe.batch_size}), over "
                         f"{LARGE_TRAINING_BYTES >> 30} GiB; lower them, or pass allow_large to go ahead")
    if record is not None and record["data"]["fingerprint"] != dataset.fingerprint():
        raise ValueError(f"cannot resume {out}: the data differ from the data it was trained on "
                         f"({record['data']['source']})")
    if record is not None and record["status"] == "complete":
        log.info(f"{out} is complete; nothing to resume")
        return out
    for note in dataset.notes:
        log.info(note)
    fresh = record is None
    if fresh:
        out.mkdir(parents=True)
        record = {"format": "seedspace-testbed-training", "status": "running", "recipe": recipe.to_record(),
                  "data": {"given": None if data is None else str(data),
                           "path": None if data is None else str(Path(data).expanduser().resolve()),
                           "source": dataset.source,
                           "fingerprint": dataset.fingerprint(), "notes": dataset.notes},
                  "stages": {}}
    try:
        with torch_threads(recipe.threads):
            _train(out, dataset, rows, recipe, record, checkpoint_every)
    except Exception:
        if fresh and not (out / CHECKPOINT).is_file():  # failed before any training state: leave nothing
            shutil.rmtree(out, ignore_errors=True)
        elif record["status"] != "complete":
            record["status"] = "interrupted"
            write_json(out / RECORD, record)
        raise
    except BaseException:  # Ctrl-C / SIGTERM: a folder that --resume continues
        if record["status"] != "complete":
            record["status"] = "interrupted"
            write_json(out / RECORD, record)
        raise
    return out


def split_rows(dataset: LabelledImages, recipe: TestbedRecipe) -> dict[str, np.ndarray]:
    """Row indices of the few-shot images, the test references (into the test split where the data set has one),
    the pool the judge and encoder train on, the long-tailed diffusion split (a subset of the pool) limited by the
    recipe's exposure, and the exposure-limited classes' pool images the diffusion model does not see
    (``exposure-held-out``); ValueError when a class has too few images for them, the imbalance leaves the last
    class none, or an exposure asks for more images than a class's long-tailed split has."""
    classes, labels = dataset.classes, dataset.labels
    if len(classes) < 2:
        raise ValueError(f"a testbed needs at least 2 classes, the data have {len(classes)}")
    counts = np.bincount(labels, minlength=len(classes))
    if dataset.test is not None:
        test_labels = dataset.test[1]
        test_counts = np.bincount(test_labels, minlength=len(classes))
        for c in range(len(classes)):
            if test_counts[c] < recipe.fewshot + 1 or counts[c] < 1:
                raise ValueError(f"class {classes[c]!r} has {counts[c]} training and {test_counts[c]} test images; "
                                 f"--fewshot {recipe.fewshot} needs {recipe.fewshot + 1} test images and training "
                                 "at least 1 image")
        fewshot = fewshot_indices(test_labels, recipe.fewshot, recipe.seed)
        references = np.setdiff1d(np.arange(len(test_labels)), fewshot)
        pool = np.arange(len(labels))
    else:
        held = recipe.fewshot + recipe.test_references
        for c in range(len(classes)):
            if counts[c] < held + 1:
                raise ValueError(f"class {classes[c]!r} has {counts[c]} images; --fewshot {recipe.fewshot} and "
                                 f"--test-references {recipe.test_references} hold out {held} per class and training "
                                 f"needs at least 1 more")
        rng = np.random.default_rng(recipe.seed)
        order = [rng.permutation(np.flatnonzero(labels == c)) for c in range(len(classes))]
        fewshot = np.sort(np.concatenate([o[:recipe.fewshot] for o in order]))
        references = np.sort(np.concatenate([o[recipe.fewshot:held] for o in order]))
        pool = np.sort(np.concatenate([o[held:] for o in order]))
    if recipe.imbalance == 1:
        longtail = pool
    else:
        pool_counts = np.bincount(labels[pool], minlength=len(classes))
        last = long_tail_count(int(pool_counts.min()), len(classes) - 1, len(classes), recipe.imbalance)
        if last < 1:
            raise ValueError(f"--imbalance {recipe.imbalance:g} leaves the last class {classes[-1]!r} no training "
                             f"image ({pool_counts.min()} / {recipe.imbalance:g} rounds to 0); lower it or add images")
        longtail = pool[long_tail_indices(labels[pool], recipe.imbalance, seed=recipe.seed)]
    limits = exposure_limits(classes, np.bincount(labels[longtail], minlength=len(classes)), recipe.exposure)
    longtail = np.sort(np.concatenate([longtail[~np.isin(labels[longtail], list(limits))]] + [
        exposure_order(longtail[labels[longtail] == c], recipe.seed, c)[:n] for c, n in limits.items()]))
    held = np.setdiff1d(pool[np.isin(labels[pool], list(limits))], longtail)
    return {"fewshot": fewshot, "test-references": references, "pool": pool, "train-longtail": longtail,
            "exposure-held-out": held, "limits": limits}


def exposure_order(rows: np.ndarray, seed: int, c: int) -> np.ndarray:
    """The order in which an exposure-limited class's long-tailed rows enter the diffusion training (the first n
    for exposure n): seeded by the recipe's seed and the class, so a smaller exposure's images are a subset of a
    larger one's (an exposure sweep is nested)."""
    return np.random.default_rng([seed, EXPOSURE_STREAM, c]).permutation(rows)


def exposure_limits(classes: list[str], counts: np.ndarray, exposure) -> dict[int, int]:
    """{class index: images the diffusion model sees} of the exposure-limited classes: for a count or 'full', the
    tail classes of the long-tailed split's ``counts`` (:func:`class_groups`); for (name, count) pairs, the named
    classes. ValueError naming --exposure for an unknown class or a count above the class's ``counts``."""
    if exposure is None:
        return {}
    if isinstance(exposure, tuple):
        index = {name: c for c, name in enumerate(classes)}
        unknown = [name for name, _ in exposure if name not in index]
        if unknown:
            raise ValueError(f"--exposure names no class {unknown[0]!r}; the classes are {', '.join(classes)}")
        wanted = {index[name]: count for name, count in exposure}
    else:
        wanted = dict.fromkeys(class_groups(counts.tolist())["tail_classes"], exposure)
    limits = {c: int(counts[c]) if n == FULL else n for c, n in sorted(wanted.items())}
    for c, n in limits.items():
        if n > counts[c]:
            raise ValueError(f"--exposure {n} for class {classes[c]!r}: its long-tailed training split has only "
                             f"{counts[c]} images")
    return limits


def _train(out: Path, dataset: LabelledImages, rows: dict, recipe: TestbedRecipe, record: dict,
           checkpoint_every: int) -> None:
    write_json(out / RECORD, record)
    test_images, test_labels = dataset.test if dataset.test is not None else (dataset.images, dataset.labels)
    write_references(out, dataset, rows)
    classes, labels = dataset.classes, dataset.labels
    pool = to_model_space(dataset.images[rows["pool"]]), torch.from_numpy(labels[rows["pool"]])
    refs = rows["test-references"]
    test = to_model_space(test_images[refs]), torch.from_numpy(test_labels[refs])
    for kind, seed in (("judge", recipe.seed), ("encoder", recipe.seed + 1)):
        if getattr(recipe, kind) and kind not in record["stages"]:
            net, summary = train_classifier(*pool, *test, len(classes), kind, recipe.classifier_epochs,
                                            seed=seed, mirror=dataset.mirror_symmetric)
            with atomic_path(out / f"{kind}.safetensors") as tmp:
                save_file(net.state_dict(), str(tmp), metadata={"num_classes": str(len(classes))})
            record["stages"][kind] = summary
            write_json(out / RECORD, record)
            log.info(f"{kind}: test accuracy {summary['test_accuracy']:.3f} on {len(refs)} held-out images")
    longtail = rows["train-longtail"]
    ema, summary = train_diffusion(to_model_space(dataset.images[longtail]), torch.from_numpy(labels[longtail]),
                                   len(classes), out / CHECKPOINT, recipe, checkpoint_every,
                                   mirror=dataset.mirror_symmetric)
    _save_unet(out, ema, recipe.objective)
    write_json(out / "loss_history.json", summary.pop("loss_history"))
    info = testbed_info(out, dataset, rows, recipe, record, summary)
    write_text(out / "MODEL_CARD.md", model_card(info, record))
    write_json(out / "testbed.json", info)  # last: the folder is a testbed from here on
    record["status"] = "complete"
    write_json(out / RECORD, record)
    (out / CHECKPOINT).unlink(missing_ok=True)


def write_references(out: Path, dataset: LabelledImages, rows: dict) -> None:
    """fewshot.safetensors (``test_indices`` into a test split, else ``source_indices`` into the data) and the
    split files of :func:`split_rows`' rows (for Fashion-MNIST: the files the embedded testbed ships; with an
    exposure, also the exposure-held-out split)."""
    test_images, test_labels = dataset.test if dataset.test is not None else (dataset.images, dataset.labels)
    few = rows["fewshot"]
    key = "test_indices" if dataset.test is not None else "source_indices"
    with atomic_path(out / "fewshot.safetensors") as tmp:
        save_file({"images": torch.from_numpy(test_images[few].copy()), "labels": torch.from_numpy(test_labels[few]),
                   key: torch.from_numpy(few.astype(np.int64))}, str(tmp))
    refs, longtail = rows["test-references"], rows["train-longtail"]
    write_split(out / SPLIT_FILES["test-references"], test_images[refs], test_labels[refs], refs)
    write_split(out / SPLIT_FILES["train-longtail"], dataset.images[longtail], dataset.labels[longtail], longtail)
    if rows["limits"]:
        held = rows["exposure-held-out"]
        write_split(out / SPLIT_FILES["exposure-held-out"], dataset.images[held], dataset.labels[held], held)


def _save_unet(out: Path, ema, objective: str) -> None:
    """unet/ and scheduler/ (diffusers folders), each saved under a temporary name and renamed into place."""
    for name, component in (("unet", ema), ("scheduler", make_scheduler(objective))):
        tmp = out / f".{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        component.save_pretrained(tmp, **({"safe_serialization": True} if name == "unet" else {}))
        follow_umask(tmp)
        shutil.rmtree(out / name, ignore_errors=True)
        os.replace(tmp, out / name)


def class_groups(counts: list[int], tail: list[int] | None = None) -> dict[str, list[int]]:
    """Head, medium and tail classes by training count: the k = max(1, floor(0.3 C)) largest and smallest classes
    (ties by index) are head and tail, the rest medium (3 / 4 / 3 for 10 classes). ``tail``: these classes are
    the tail (the exposure-limited ones, whatever their counts), the k largest of the others the head."""
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
    k = max(1, len(counts) * 3 // 10)
    if tail:
        rest = [c for c in order if c not in tail]
        return {"head_classes": sorted(rest[:k]), "medium_classes": sorted(rest[k:]), "tail_classes": sorted(tail)}
    return {"head_classes": sorted(order[:k]), "medium_classes": sorted(order[k:-k]), "tail_classes": sorted(order[-k:])}


def testbed_info(out: Path, dataset: LabelledImages, rows: dict, recipe: TestbedRecipe, record: dict,
                 diffusion: dict) -> dict:
    """The testbed.json of a trained folder: what the loader reads and what a reader of the folder needs."""
    classes = dataset.classes
    test_labels = dataset.test[1] if dataset.test is not None else dataset.labels

    def counts(labels):
        return np.bincount(labels, minlength=len(classes)).tolist()

    train_counts = counts(dataset.labels[rows["train-longtail"]])
    limits = rows["limits"]
    exposure = None if not limits else {
        "requested": exposure_text(recipe.exposure), "classes": list(limits),
        "seen": {classes[c]: n for c, n in limits.items()},
        "unseen_real": {classes[c]: n for c, n in enumerate(counts(dataset.labels[rows["exposure-held-out"]]))
                        if c in limits}}
    return {
        "name": recipe.name or out.name, "classes": classes, "train_counts": train_counts,
        **class_groups(train_counts, list(limits)), "mirror_symmetric": dataset.mirror_symmetric, "exposure": exposure,
        "null_class": len(classes), "prediction_type": recipe.objective, "default_steps": recipe.default_steps,
        "default_guidance": float(recipe.default_guidance), "image_size": recipe.image_size,
        "parts": {"judge": recipe.judge, "encoder": recipe.encoder},
        "data": {"source": dataset.source, "fingerprint": record["data"]["fingerprint"], "notes": dataset.notes,
                 "imbalance": recipe.imbalance, "seed": recipe.seed, "pool_counts": counts(dataset.labels[rows["pool"]]),
                 "fewshot_counts": counts(test_labels[rows["fewshot"]]),
                 "test_reference_counts": counts(test_labels[rows["test-references"]]),
                 "held_out_from": "the data set's test split" if dataset.test is not None else "the data set"},
        "diffusion_training": diffusion,
        **{f"{kind}_training": record["stages"][kind] for kind in ("judge", "encoder") if kind in record["stages"]},
    }


def model_card(info: dict, record: dict) -> str:
    """MODEL_CARD.md of a trained testbed: data, classes, files, how it was trained and how to use it."""
    data, classes = info["data"], info["classes"]
    group = {c: g for g in ("head", "medium", "tail") for c in info[f"{g}_classes"]}
    rows = "\n".join(f"| {c} | {name} | {group[c]} | {info['train_counts'][c]} | {data['pool_counts'][c]} | "
                     f"{data['fewshot_counts'][c]} | {data['test_reference_counts'][c]} |" for c, name in enumerate(classes))
    parts = [f"`{k}.safetensors`" for k in ("judge", "encoder") if info["parts"][k]]
    skipped = [f"--skip-{k}" for k in ("judge", "encoder") if not info["parts"][k]]
    command = " ".join(["seedspace testbed train"] + (["--data", str(record["data"]["given"])] if record["data"]["given"]
                                                      else []) + TestbedRecipe.from_record(record["recipe"]).command_options())
    d = info["diffusion_training"]
    results = [f"diffusion: {d['steps']} steps, final loss {d['final_loss']:.4f}, {d['seconds']:.0f} s"
               if d["final_loss"] is not None else f"diffusion: {d['steps']} steps"]
    results += [f"{k}: test accuracy {info[f'{k}_training']['test_accuracy']:.3f} on the test references"
                for k in ("judge", "encoder") if f"{k}_training" in info]
    flow = info.get("prediction_type") == "flow"
    kind = ("rectified-flow velocity prediction, flow-matching Euler schedule" if flow
            else "epsilon prediction, linear DDPM schedule")
    sampler = "flow-matching Euler" if flow else "DDIM"
    return f"""# {info['name']}: a seedspace testbed

A class-conditional pixel {'flow-matching' if flow else 'diffusion'} model (diffusers `UNet2DModel`,
{info['image_size']}x{info['image_size']} grey, {kind}, null class {info['null_class']} for classifier-free guidance)
trained by `seedspace testbed train` on {data['source']}, in the format of the embedded testbed: `--model FOLDER` and
`seedspace.load_model(FOLDER)` use it like the embedded model (default {info['default_steps']} {sampler} steps, guidance
{info['default_guidance']:g}).{' Skipped parts: ' + ', '.join(skipped) + ' (the commands that need them say so).' if skipped else ''}

## Data
Held out of all training ({data['held_out_from']}, seed {data['seed']}): the few-shot images and the test
references. The diffusion model sees a long-tailed split of the rest (imbalance {data['imbalance']:g}); the judge
and the encoder see all of the rest.{' Conversion: ' + '; '.join(data['notes']) + '.' if data['notes'] else ''}{exposure_note(info)}
Training flips images horizontally: {'yes' if info['mirror_symmetric'] else 'no (the classes are not mirror-symmetric)'}.

| class | name | group | diffusion training | judge/encoder training | few-shot | test references |
|---|---|---|---|---|---|---|
{rows}

## Files
`unet/`, `scheduler/` (diffusers); {', '.join(parts) or 'no judge or encoder'}; `fewshot.safetensors` (uint8 images,
labels, indices); `train-longtail.safetensors.gz` and `test-references.safetensors.gz` (gzip'd safetensors: uint8
images, labels, source indices); `testbed.json`; `loss_history.json`; `training.json` (the training record).

## Training
`{command}`

{chr(10).join('- ' + r for r in results)}

## Use
`seedspace evaluate --quick --model FOLDER`, `seedspace augment --model FOLDER --testbed-split K ...`,
`seedspace interpolate --model FOLDER --seeds 1,2 --class 0`.
"""


def exposure_note(info: dict) -> str:
    """The model card's sentence on the generator's exposure (empty without one)."""
    exposure = info.get("exposure")
    if not exposure:
        return ""
    seen = ", ".join(f"{name} {n}" for name, n in exposure["seen"].items())
    return (f" Exposure-limited classes (`--exposure {exposure['requested']}`): the diffusion model saw {seen} "
            "images of them (0: the class only through the null condition); their other images are in "
            "`exposure-held-out.safetensors.gz`, real images it never saw.")


def _read_record(out: Path) -> dict:
    if not (out / RECORD).is_file():
        raise ValueError(f"cannot resume {out}: it holds no {RECORD} of a testbed training")
    record = read_json_object(out / RECORD)
    if record.get("format") != "seedspace-testbed-training":
        raise ValueError(f"cannot resume {out}: its {RECORD} is not a testbed training record")
    if not isinstance(record.get("recipe"), dict) or not isinstance(record.get("data"), dict) or \
            "given" not in record["data"]:
        raise ValueError(f"cannot resume {out}: its {RECORD} is malformed ('recipe' and 'data' must be objects)")
    try:
        TestbedRecipe.from_record(record["recipe"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot resume {out}: its {RECORD} holds no valid recipe ({exc})") from None
    return record
