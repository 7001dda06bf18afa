"""Testbed data handling and the training recipes (tiny runs)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seedspace.cli.main import main as cli_main
from seedspace.testbed.data import load_dataset, long_tail_indices, to_model_space


def test_long_tail_profile():
    labels = np.repeat(np.arange(10), 6000)
    counts = np.bincount(labels[long_tail_indices(labels, 100.0)], minlength=10)
    assert counts[0] == 6000 and counts[-1] == 60
    assert all(counts[i] > counts[i + 1] for i in range(9))
    ratios = counts[:-1] / counts[1:]
    assert np.allclose(ratios, 100 ** (1 / 9), rtol=0.02)  # exponential profile
    assert np.array_equal(long_tail_indices(labels, 100.0, seed=1), long_tail_indices(labels, 100.0, seed=1))


def test_to_model_space_pads_with_background():
    x = to_model_space(np.full((2, 28, 28), 255, np.uint8))
    assert x.shape == (2, 1, 32, 32)
    assert x[0, 0, 2:30, 2:30].eq(1).all() and x[0, 0, 0].eq(-1).all() and x[0, 0, :, -1].eq(-1).all()


def _write_folder_dataset(root, per_class=6):
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_load_dataset_folder_and_npz(tmp_path):
    _write_folder_dataset(tmp_path / "data")
    data = load_dataset(tmp_path / "data")
    images, labels, classes = data.images, data.labels, data.classes
    # sizes other than 28x28 are resized to the full 32x32 frame (28x28 ones keep their size and are padded)
    assert images.shape == (12, 32, 32) and classes == ["cats", "dogs"] and np.bincount(labels).tolist() == [6, 6]
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    again = load_dataset(tmp_path / "d.npz")
    assert np.array_equal(images, again.images) and np.array_equal(labels, again.labels)
    with pytest.raises(ValueError):
        load_dataset(tmp_path / "d.txt")


def test_train_command_on_a_folder(tmp_path):
    _write_folder_dataset(tmp_path / "data", per_class=10)
    out = tmp_path / "run"
    tiny = ["--imbalance", "1", "--threads", "1", "--fewshot", "2", "--test-references", "2", "--classifier-epochs", "1",
            "--image-size", "8", "--channels", "8,16", "--quiet"]
    assert cli_main(["testbed", "train", "--data", str(tmp_path / "data"), "--out", str(out), "--steps", "2",
                     "--batch-size", "4", *tiny]) == 0
    card = json.loads((out / "testbed.json").read_text())
    assert card["classes"] == ["cats", "dogs"] and np.isfinite(card["diffusion_training"]["final_loss"])
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").exists() and (out / "judge.safetensors").exists()
    assert card["judge_training"]["seed"] == 0 and card["encoder_training"]["seed"] == 1  # two networks, trained apart
    from seedspace.backends.testbed import TestbedModel  # the run folder is a testbed folder as it is
    model = TestbedModel.from_folder(out)
    assert model.generate(torch.randn(1, 1, 8, 8), "dogs", steps=2).shape == (1, 1, 8, 8)
    images = torch.rand(2, 1, 32, 32)
    assert not torch.allclose(model.features(images), model.judge_features(images))

    only = tmp_path / "encoder_only"
    assert cli_main(["testbed", "train", "--data", str(tmp_path / "data"), "--out", str(only), "--steps", "1",
                     "--batch-size", "2", "--skip-judge", *tiny]) == 0
    assert (only / "encoder.safetensors").exists() and not (only / "judge.safetensors").exists()
