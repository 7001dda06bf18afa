"""`seedspace testbed train` on the user's own data: a complete testbed folder that every command takes, resumable
to the same bytes, and one-line errors for bad input (tiny data set, tiny UNet, a few steps)."""

import json
import os
import shutil
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import seedspace as ss
from seedspace.scoring.judge import load_references
from seedspace.cli.main import main
from seedspace.hardware import torch_threads
from seedspace.testbed import build
from seedspace.testbed.data import load_dataset, read_split

CLASSES = ("ring", "bar", "cross")
PER_CLASS = 40
TINY = ["--image-size", "8", "--channels", "8,16", "--batch-size", "8", "--classifier-epochs", "1", "--fewshot", "3",
        "--test-references", "4", "--imbalance", "4", "--default-steps", "2", "--threads", "1", "--quiet"]


def _images(seed=0):
    """PER_CLASS noisy 16x16 pictures of each of three shapes, uint8, with their labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    shapes = [(np.hypot(yy - 7.5, xx - 7.5) - 5).__abs__() < 1.5, abs(xx - 7.5) < 2, (abs(xx - 7.5) < 2) | (abs(yy - 7.5) < 2)]
    images = np.stack([np.clip(shape * 200 + rng.integers(0, 50, (16, 16)), 0, 255).astype(np.uint8)
                       for shape in shapes for _ in range(PER_CLASS)])
    return images, np.repeat(np.arange(3), PER_CLASS)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The data set as class folders; the ring pictures are saved as RGB (colour files are accepted)."""
    root = tmp_path_factory.mktemp("data") / "shapes"
    images, labels = _images()
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image)
        (picture.convert("RGB") if label == 0 else picture).save(root / CLASSES[label] / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "shapes-testbed"
    assert main(["testbed", "train", "--data", str(data_dir), "--out", str(out), "--steps", "4", *TINY]) == 0
    return out


def test_the_folder_is_a_complete_testbed(trained):
    files = {p.name for p in trained.iterdir()}
    assert {"unet", "scheduler", "judge.safetensors", "encoder.safetensors", "fewshot.safetensors", "testbed.json",
            "train-longtail.safetensors.gz", "test-references.safetensors.gz", "MODEL_CARD.md", "loss_history.json",
            "training.json", "prior.json"} <= files
    prior = ss.load_model(trained).prior  # calibrated at the end of training: what --prior model uses
    assert prior.family == "scaled-chi" and prior.info["calibration"]["command"].endswith("--out model")
    assert build.CHECKPOINT not in files and not any(name.startswith(".") for name in files)
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {f.relative_to(trained): f.stat().st_mode & 0o777 for f in trained.rglob("*") if f.is_file()}
    assert set(modes.values()) == {0o666 & ~umask}, modes  # every file, the UNet's weights included
    info = json.loads((trained / "testbed.json").read_text())
    # class folders in sorted order; the long tail: 40 - 7 held out = 33 in the head, 33 / 4 in the tail
    assert info["classes"] == ["bar", "cross", "ring"] and info["train_counts"] == [33, 16, 8]
    assert (info["head_classes"], info["medium_classes"], info["tail_classes"]) == ([0], [1], [2])
    assert info["data"]["fewshot_counts"] == [3, 3, 3] and info["data"]["test_reference_counts"] == [4, 4, 4]
    assert any("40 colour images converted to grey" in n for n in info["data"]["notes"])
    assert any("16x16 resized to 32x32" in n for n in info["data"]["notes"])
    assert "bar" in (trained / "MODEL_CARD.md").read_text()

    model = ss.load_model(trained)
    assert model.class_names == ["bar", "cross", "ring"] and model.num_classes == 3 and model.null_class == 3
    assert model.default_guidance == 2.0 and model.default_steps == 2 and model.tail_classes == [2]
    assert model.has_judge and model.has_features
    images = model.generate(ss.seeds_from_ints([1, 2], model.seed_shape), "ring")  # guidance 2: uses the null class
    assert images.shape == (2, 1, 8, 8) and model.classify(images).shape == (2, 3)
    fewshot, labels = model.fewshot(2)
    assert fewshot.shape == (3, 1, 32, 32) and labels.tolist() == [2, 2, 2]

    # the references are held out of all training: few-shot, test references and training rows are disjoint
    train, tests = read_split(trained, "train-longtail"), read_split(trained, "test-references")
    few = set(load_file(str(trained / "fewshot.safetensors"))["source_indices"].tolist())
    rows = [set(train["source_indices"].tolist()), set(tests["source_indices"].tolist()), few]
    assert sum(map(len, rows)) == len(set().union(*rows)) == 57 + 12 + 9
    images, labels = model.data_split("train-longtail")
    assert images.dtype == torch.uint8 and np.bincount(labels.numpy()).tolist() == info["train_counts"]


def test_evaluate_and_augment_run_on_the_folder(trained, tmp_path, capsys):
    assert main(["evaluate", "--quick", "--experiments", "norm", "--model", str(trained), "--out",
                 str(tmp_path / "eval"), "--quiet"]) == 0, capsys.readouterr().err
    assert (tmp_path / "eval" / "report.md").is_file()
    out = tmp_path / "aug"
    assert main(["augment", "--model", str(trained), "--testbed-split", "2", "--out", str(out), "--per-class", "2",
                 "--strategy", "random", "--device", "cpu", "--quiet"]) == 0, capsys.readouterr().err
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted({e["class"] for e in entries}) == ["bar", "cross", "ring"] and len(entries) == 6


def test_npz_with_a_test_split_and_a_skipped_judge(tmp_path, capsys):
    images, labels = _images(seed=1)
    test_images, test_labels = _images(seed=2)
    np.savez(tmp_path / "shapes.npz", images=images / 255.0, labels=labels, classes=np.array(CLASSES),
             test_images=test_images, test_labels=test_labels)
    out = tmp_path / "tb"
    assert main(["testbed", "train", "--data", str(tmp_path / "shapes.npz"), "--out", str(out), "--steps", "2",
                 "--skip-judge", "--skip-encoder", *TINY]) == 0
    info = json.loads((out / "testbed.json").read_text())
    # a data set with its own test split: few-shot images from it, the rest of it as test references
    assert info["classes"] == list(CLASSES) and info["data"]["test_reference_counts"] == [PER_CLASS - 3] * 3
    assert info["data"]["pool_counts"] == [PER_CLASS] * 3 and info["parts"] == {"judge": False, "encoder": False}
    model = ss.load_model(out)
    assert not model.has_judge and not model.has_features and model.fewshot()[0].shape == (9, 1, 32, 32)
    assert model.prior is None  # nothing to score a calibration with: no prior.json, NAO uses chi
    with pytest.raises(ValueError, match="--skip-judge"):
        model.classify(torch.rand(1, 1, 8, 8))
    capsys.readouterr()
    assert main(["evaluate", "--quick", "--model", str(out), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "judge" in err and not (tmp_path / "eval").exists()


def _weights(folder):
    names = ["unet/diffusion_pytorch_model.safetensors", "judge.safetensors", "fewshot.safetensors",
             "train-longtail.safetensors.gz", "test-references.safetensors.gz"]
    losses = [row["loss"] for row in json.loads((folder / "loss_history.json").read_text())]
    return {name: (folder / name).read_bytes() for name in names}, losses


def test_resume_after_ctrl_c_and_after_a_kill_gives_the_same_bytes(data_dir, tmp_path, monkeypatch, capsys):
    """Resumed from another folder, in a process computing with another thread count: the record decides the data
    (given as a relative path), the threads and the skipped calibration."""
    monkeypatch.chdir(data_dir.parent)
    args = ["testbed", "train", "--data", data_dir.name, "--steps", "6", "--checkpoint-every", "2", "--skip-encoder",
            "--skip-calibrate", *TINY]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert not (tmp_path / "whole" / "prior.json").exists()

    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def interrupting(*a, **k):  # called once per diffusion step
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in step 3's backward pass: step 3 is abandoned at once
        if len(calls) == 5:
            raise KeyboardInterrupt  # the same inside step 4 of the resumed run
        return real_clip(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupting)
    out = tmp_path / "stopped"
    assert main([*args, "--out", str(out)]) == 130
    record = json.loads((out / "training.json").read_text())
    assert record["status"] == "interrupted" and not (out / "testbed.json").exists()
    assert (out / build.CHECKPOINT).is_file() and "--resume" in capsys.readouterr().err
    with pytest.raises(ValueError):
        ss.load_model(out)  # an unfinished training is not a model
    record = json.loads((out / "training.json").read_text())
    assert record["data"]["given"] == data_dir.name and record["data"]["path"] == str(data_dir.resolve())
    assert record["recipe"]["threads"] == 1 and record["recipe"]["calibrate"] is False
    monkeypatch.chdir(tmp_path)
    resume = ["testbed", "train", "--out", str(out), "--resume", "--checkpoint-every", "2", "--quiet"]
    with torch_threads(2):
        assert main(resume) == 130  # stops again at call 5, checkpointed at step 3
        assert main(resume) == 0
    assert not (out / "prior.json").exists()
    assert len(calls) == 3 + 2 + 3  # steps 1-3 (3 abandoned), 3-4 (4 abandoned), 4-6: only abandoned steps twice
    assert _weights(out) == _weights(tmp_path / "whole")
    assert main(["testbed", "train", "--out", str(out), "--resume", "--quiet"]) == 0  # complete: nothing to do


def _bad_npz(tmp_path, case):
    images, labels = _images()
    path = tmp_path / "bad.npz"
    arrays = {"labels that do not match": dict(images=images, labels=labels[:-1]),
              "a class with too few images": dict(images=images[:PER_CLASS + 5], labels=labels[:PER_CLASS + 5]),
              "pixel values out of range": dict(images=images * 3.0, labels=labels),
              "one class": dict(images=images[:PER_CLASS], labels=labels[:PER_CLASS]),
              "a class name with a slash": dict(images=images, labels=labels,
                                                classes=np.array(["../up", *CLASSES[1:]])),
              "the same class name twice": dict(images=images, labels=labels,
                                                classes=np.array([CLASSES[0].upper(), CLASSES[0], *CLASSES[2:]])),
              "a class name too long for file names": dict(images=images, labels=labels,
                                                           classes=np.array(["é" * 60, *CLASSES[1:]])),
              "a label of 10^12": dict(images=images, labels=np.where(labels == 2, 10 ** 12, labels)),
              "not a zip archive": None}[case]
    if arrays is None:
        path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    else:
        np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case,extra,message", [
    ("labels that do not match", [], "must match one to one"),
    ("a class with too few images", [], "has 5 images"),
    ("pixel values out of range", [], "floats in [0, 1]"),
    ("one class", [], "at least 2 classes"),
    ("a class name with a slash", [], "cannot name a folder"),
    ("the same class name twice", [], "are the same name"),
    ("a label of 10^12", [], "labels go up to 1000000000000 for 120 images"),
    ("a class name too long for file names", [], "takes 120 bytes, over 100"),
    ("not a zip archive", [], "cannot read"),
    ("an empty model name", ["--name", " "], "name"),
    ("imbalance below 1", ["--imbalance", "0.5"], "imbalance must be"),
    ("imbalance leaving the tail empty", ["--imbalance", "100"], "no training image"),
    ("bad channels", ["--channels", "8,x"], "--channels"),
    ("channels too large to train", ["--channels", "100000,100000"], "GiB"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, extra, message):
    data = _bad_npz(tmp_path, case) if case in ("labels that do not match", "a class with too few images",
                                                "pixel values out of range", "one class", "a class name with a slash",
                                                "the same class name twice", "a label of 10^12",
                                                "a class name too long for file names",
                                                "not a zip archive") else None
    if data is None:
        images, labels = _images()
        np.savez(tmp_path / "ok.npz", images=images, labels=labels)
        data = tmp_path / "ok.npz"
    out = tmp_path / "out"
    assert main(["testbed", "train", "--data", str(data), "--out", str(out), "--steps", "1", *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("seedspace: error:") and message in err, err
    assert not out.exists()


def test_existing_folder_and_changed_settings_are_refused(trained, data_dir, tmp_path, capsys):
    before = {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    cases = [(["--data", str(data_dir), "--out", str(trained), "--steps", "4", *TINY], "--resume"),
             (["--out", str(trained), "--resume", "--steps", "5", "--quiet"], "steps was 4, now 5"),
             (["--out", str(trained), "--resume", "--threads", "2", "--quiet"], "threads was 1, now 2"),
             (["--out", str(trained), "--resume", "--data", str(tmp_path / "other"), "--quiet"], "data differ")]
    shutil.copytree(data_dir, tmp_path / "other")
    next((tmp_path / "other" / "bar").iterdir()).unlink()
    for args, message in cases:
        assert main(["testbed", "train", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()} == before
    assert main(["testbed", "train", "--out", str(tmp_path / "none"), "--resume"]) == 2


def test_an_image_claiming_a_huge_size_is_refused_before_decoding(data_dir, tmp_path, monkeypatch):
    from seedspace.outputs import images

    root = tmp_path / "data"
    shutil.copytree(data_dir, root)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 15 * 15)  # the 16x16 pictures now count as too large
    with pytest.raises(ValueError, match=r"is too large \(16x16 pixels"):
        load_dataset(root)


def test_class_folders_and_npz_give_the_same_data(data_dir, tmp_path):
    folder = load_dataset(data_dir)
    np.savez(tmp_path / "same.npz", images=folder.images, labels=folder.labels, classes=np.array(folder.classes))
    npz = load_dataset(tmp_path / "same.npz")
    assert np.array_equal(folder.images, npz.images) and folder.classes == npz.classes
    assert folder.fingerprint() == npz.fingerprint() and npz.notes == []  # already 32x32 grey: nothing converted


@pytest.fixture(scope="module")
def trained_flow(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "shapes-flow"
    assert main(["testbed", "train", "--objective", "flow", "--data", str(data_dir), "--out", str(out), "--steps", "4",
                 "--skip-judge", "--skip-encoder", *TINY]) == 0
    return out


def test_flow_objective_gives_a_velocity_model_sampled_by_the_rectified_flow_ode(trained_flow):
    info = json.loads((trained_flow / "testbed.json").read_text())
    config = json.loads((trained_flow / "scheduler" / "scheduler_config.json").read_text())
    assert info["prediction_type"] == "flow" and info["diffusion_training"]["objective"] == "flow"
    assert config["_class_name"] == "FlowMatchEulerDiscreteScheduler" and config["shift"] == 1.0
    assert "flow-matching" in (trained_flow / "MODEL_CARD.md").read_text()
    model = ss.load_model(trained_flow)
    assert model.prediction_type == "flow" and model.default_scheduler == "flow-euler"
    seeds = torch.randn(2, *model.seed_shape, generator=torch.Generator().manual_seed(3))
    images = model.generate(seeds, condition=1, steps=5, guidance=2.0)
    # by hand: Euler on dx/dsigma = v from sigma = 1 to 0 on diffusers' default grid linspace(1, 1/1000, steps)
    sigmas = list(np.linspace(1.0, 1 / 1000, 5)) + [0.0]
    x, labels = seeds.clone(), torch.tensor([1, 1])
    with torch.no_grad():
        for s, s_next in zip(sigmas[:-1], sigmas[1:]):
            t = torch.tensor(s * 1000, dtype=torch.float32)
            v_c = model.unet(x, t, class_labels=labels).sample
            v_u = model.unet(x, t, class_labels=torch.full_like(labels, 3)).sample
            x = x + (s_next - s) * (v_u + 2.0 * (v_c - v_u))
    torch.testing.assert_close(images, ((x + 1) / 2).clamp(0, 1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="does not fit"):
        model.generate(seeds, condition=1, steps=2, scheduler="ddim")
    assert model.invert(images, condition=1, steps=3).shape == seeds.shape  # reverse Euler, its own inversion


def test_a_folder_can_share_judge_and_data_files(trained, trained_flow, tmp_path):
    """A flow folder holding only its UNet, scheduler and testbed.json finds the judge, encoder, few-shot and
    split files in its shared_folder (as the embedded testbed-flow shares the testbed's)."""
    folder = tmp_path / "flow-sharing"
    for part in ("unet", "scheduler"):
        shutil.copytree(trained_flow / part, folder / part)
    info = json.loads((trained_flow / "testbed.json").read_text())
    (folder / "testbed.json").write_text(json.dumps({**info, "shared_folder": os.path.relpath(trained, folder)}))
    model = ss.load_model(folder)
    assert model.has_judge and model.has_features and model.prediction_type == "flow"
    assert model.classify(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    torch.testing.assert_close(model.fewshot()[0], ss.load_model(trained).fewshot()[0])
    assert model.data_split("train-longtail")[0].shape == read_split(trained, "train-longtail")["images"].shape
    assert "held-out" in load_references(model, per_class=2).source  # the evaluation finds the shared references


def test_the_embedded_flow_testbed_shares_the_testbed_files_and_renders_its_classes():
    flow, ddpm = ss.load_model("testbed-flow"), ss.load_model("testbed")
    assert flow.prediction_type == "flow" and flow.default_scheduler == "flow-euler" and flow.has_judge
    assert flow.class_names == ddpm.class_names and flow.seed_shape == ddpm.seed_shape
    torch.testing.assert_close(flow.fewshot(9)[0], ddpm.fewshot(9)[0])
    seeds = torch.randn(4, *flow.seed_shape, generator=torch.Generator().manual_seed(0))
    images = flow.generate(seeds, condition=[0, 1, 7, 9], steps=20)
    assert flow.classify(images).argmax(1).tolist() == [0, 1, 7, 9]


def test_an_error_before_the_first_checkpoint_leaves_nothing_and_after_it_a_resumable_folder(data_dir, tmp_path,
                                                                                            monkeypatch):
    recipe = build.TestbedRecipe(steps=2, batch_size=8, image_size=8, channels=(8, 16), classifier_epochs=1,
                                 fewshot=3, test_references=4, imbalance=4, default_steps=2, encoder=False)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    with monkeypatch.context() as m:
        m.setattr(build, "train_diffusion", out_of_memory)
        with pytest.raises(RuntimeError, match="not enough memory"):
            build.train_testbed(tmp_path / "early", data_dir, recipe)
    assert not (tmp_path / "early").exists()  # judge, references and record were written, then removed

    with monkeypatch.context() as m:
        m.setattr(build, "_save_unet", out_of_memory)  # fails after the checkpoint exists
        with pytest.raises(RuntimeError):
            build.train_testbed(tmp_path / "late", data_dir, recipe)
    assert json.loads((tmp_path / "late" / build.RECORD).read_text())["status"] == "interrupted"
    assert build.train_testbed(tmp_path / "late", data_dir, recipe, resume=True) == tmp_path / "late"
    assert (tmp_path / "late" / "testbed.json").is_file()


@pytest.mark.parametrize("damage, message", [
    (("checkpoint", b"not a checkpoint"), "not a readable training checkpoint"),
    (("checkpoint", "truncate"), "not a readable training checkpoint"),
    (("record", {"recipe": None}), "malformed"),
    (("record", {"recipe": {"steps": "many"}}), "no valid recipe"),
    (("record", {"data": None}), "malformed"),
])
def test_resuming_a_damaged_training_is_one_line(data_dir, tmp_path, capsys, damage, message):
    recipe = build.TestbedRecipe(steps=2, batch_size=8, image_size=8, channels=(8, 16), classifier_epochs=1,
                                 fewshot=3, test_references=4, imbalance=4, default_steps=2, encoder=False,
                                 judge=False, calibrate=False)
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(build, "_save_unet", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):  # stopped after the checkpoint, as Ctrl-C would
            build.train_testbed(out, data_dir, recipe)
    what, change = damage
    if what == "checkpoint":
        path = out / build.CHECKPOINT
        path.write_bytes(path.read_bytes()[:1000] if change == "truncate" else change)
    else:
        record = json.loads((out / build.RECORD).read_text())
        (out / build.RECORD).write_text(json.dumps({**record, **change}))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["testbed", "train", "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("seedspace: error:") and message in err, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
