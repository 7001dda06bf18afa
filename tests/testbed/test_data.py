"""The testbed's data: the Fashion-MNIST splits shipped in the package, and the training noise schedule."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seedspace.testbed.build import TestbedRecipe, split_rows, write_references
from seedspace.testbed.data import (FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, SHIPPED_DIR, SHIPPED_SPLITS,
                                    LabelledImages, fewshot_indices, load_dataset, load_fashion_mnist,
                                    long_tail_indices, read_split, shipped_source_indices, shipped_split)
from seedspace.testbed.train import SCHEDULER_CONFIG, make_scheduler

HAVE_PACKAGE = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()


def test_shipped_splits_are_the_long_tail_training_set_and_the_test_references():
    info = json.loads((SHIPPED_DIR / "testbed.json").read_text())
    fewshot = load_file(str(SHIPPED_DIR / "fewshot.safetensors"))
    images, labels = shipped_split("train-longtail")
    assert images.dtype == torch.uint8 and images.shape == (sum(info["train_counts"]), 28, 28)
    assert labels.dtype == torch.int64 and np.bincount(labels.numpy()).tolist() == info["train_counts"]
    source = shipped_source_indices("train-longtail").numpy()
    assert (np.diff(source) > 0).all() and source.max() < 60_000
    images, labels = shipped_split("test-references")
    source = shipped_source_indices("test-references").numpy()
    assert images.shape == (9000, 28, 28) and np.bincount(labels.numpy()).tolist() == [900] * 10
    # the test set minus the few-shot images, which are the same test images as in fewshot.safetensors
    assert np.intersect1d(source, fewshot["test_indices"].numpy()).size == 0
    assert np.union1d(source, fewshot["test_indices"].numpy()).tolist() == list(range(10_000))
    assert not torch.equal(images[:1], fewshot["images"][:1])
    with pytest.raises(ValueError, match="unknown split"):
        shipped_split("train")


@pytest.mark.skipif(not HAVE_PACKAGE, reason="needs the Debian package dataset-fashion-mnist")
def test_shipped_splits_are_byte_identical_to_the_package(tmp_path):
    train_images, train_labels = load_fashion_mnist("train")
    keep = long_tail_indices(train_labels, 100.0, seed=0)
    images, labels = shipped_split("train-longtail")
    assert np.array_equal(images.numpy(), train_images[keep]) and np.array_equal(labels.numpy(), train_labels[keep])
    test_images, test_labels = load_fashion_mnist("test")
    rest = np.setdiff1d(np.arange(len(test_labels)), fewshot_indices(test_labels, 100, seed=0))
    images, labels = shipped_split("test-references")
    assert np.array_equal(images.numpy(), test_images[rest]) and np.array_equal(labels.numpy(), test_labels[rest])
    dataset = load_dataset(None)  # rebuilding with the default recipe gives the shipped files, byte for byte
    write_references(tmp_path, dataset, split_rows(dataset, TestbedRecipe()))
    for file in [f for f, _ in SHIPPED_SPLITS.values()] + ["fewshot.safetensors"]:
        assert (tmp_path / file).read_bytes() == (SHIPPED_DIR / file).read_bytes()


def test_default_recipe_rebuilds_the_shipped_references_from_the_test_set(tmp_path):
    """The Fashion-MNIST test set is the shipped few-shot set plus the shipped test references: splitting it again
    with the default recipe writes both files byte for byte (no system package needed)."""
    refs, few = read_split(SHIPPED_DIR, "test-references"), load_file(str(SHIPPED_DIR / "fewshot.safetensors"))
    images, labels = np.zeros((10_000, 28, 28), np.uint8), np.zeros(10_000, np.int64)
    for data, key in ((refs, "source_indices"), (few, "test_indices")):
        images[data[key].numpy()], labels[data[key].numpy()] = data["images"].numpy(), data["labels"].numpy()
    train = read_split(SHIPPED_DIR, "train-longtail")
    dataset = LabelledImages(train["images"].numpy(), train["labels"].numpy(), list(FASHION_MNIST_CLASSES),
                             "fashion-mnist", test=(images, labels))
    rows = split_rows(dataset, TestbedRecipe())
    assert np.array_equal(rows["fewshot"], fewshot_indices(labels, 100, seed=0))
    write_references(tmp_path, dataset, rows)
    for file in ("fewshot.safetensors", SHIPPED_SPLITS["test-references"][0]):
        assert (tmp_path / file).read_bytes() == (SHIPPED_DIR / file).read_bytes()


def test_training_schedule_is_diffusers_ddpm_schedule():
    scheduler = make_scheduler()
    c = SCHEDULER_CONFIG
    # the schedule training used before it came from diffusers: linear betas in float64, cumulative product
    betas = torch.linspace(c["beta_start"], c["beta_end"], c["num_train_timesteps"], dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    assert scheduler.betas.shape == betas.shape and scheduler.alphas_cumprod.dtype == torch.float32
    torch.testing.assert_close(scheduler.betas.double(), betas, rtol=0, atol=1e-8)
    # float32 round-off only (diffusers accumulates in float32): at most 2 units in the last place of 1
    torch.testing.assert_close(scheduler.alphas_cumprod.double(), alphas_cumprod, rtol=0, atol=2.5e-7)
    shipped = json.loads((SHIPPED_DIR / "scheduler" / "scheduler_config.json").read_text())
    assert {k: shipped[k] for k in c} == c
