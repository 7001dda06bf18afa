"""Generator exposure as an axis (`testbed train --exposure`) and the data's mirror symmetry: what the diffusion
model sees of each exposure-limited class, the real images it never saw, testbed.json's record, the recipe's
resume check, one-line refusals; then the long-tail benchmark end to end on such a folder (tiny data, tiny UNet)."""

import json

import numpy as np
import pytest

from seedspace.cli.main import main
from seedspace.testbed.data import read_split
from seedspace.testbed.recipe import TestbedRecipe, parse_exposure

from test_testbed_train import CLASSES, TINY, _images

FAST = [*TINY, "--steps", "2", "--skip-encoder", "--skip-calibrate"]


@pytest.fixture(scope="module")
def digits_like(tmp_path_factory):
    """The shapes data as an .npz marked not mirror-symmetric (as scripts/digits_npz.py marks the digits)."""
    path = tmp_path_factory.mktemp("npz") / "shapes.npz"
    images, labels = _images()
    np.savez(path, images=images, labels=labels, classes=np.array(CLASSES), mirror_symmetric=np.array(False))
    return path


@pytest.fixture(scope="module")
def exposed(digits_like, tmp_path_factory):
    out = tmp_path_factory.mktemp("exposure") / "tb"
    assert main(["testbed", "train", "--data", str(digits_like), "--out", str(out), "--exposure", "0", *FAST]) == 0
    return out


def test_exposure_zero_leaves_the_tail_class_out_and_keeps_its_images_as_unseen_real(exposed):
    info = json.loads((exposed / "testbed.json").read_text())
    # 3 classes, 40 images, 7 held out: a pool of 33 each; imbalance 4 -> 33 / 16 / 8; the tail class is 'cross'
    assert info["tail_classes"] == [2] and info["train_counts"] == [33, 16, 0]
    assert info["exposure"] == {"requested": "0", "classes": [2], "seen": {"cross": 0}, "unseen_real": {"cross": 33}}
    assert info["mirror_symmetric"] is False
    seen, unseen = read_split(exposed, "train-longtail"), read_split(exposed, "exposure-held-out")
    assert not (seen["labels"] == 2).any() and (unseen["labels"] == 2).all() and len(unseen["labels"]) == 33
    assert not set(seen["source_indices"].tolist()) & set(unseen["source_indices"].tolist())
    record = json.loads((exposed / "training.json").read_text())
    assert record["recipe"]["exposure"] == 0 and "--exposure 0" in (exposed / "MODEL_CARD.md").read_text()


def test_exposures_are_nested_and_full_is_the_unlimited_split(digits_like, tmp_path):
    from seedspace.testbed.build import split_rows
    from seedspace.testbed.data import load_dataset

    data = load_dataset(digits_like)
    rows = {e: split_rows(data, TestbedRecipe(imbalance=4, fewshot=3, test_references=4, exposure=e))
            for e in (None, 2, 5, "full")}
    few = {e: set(r["train-longtail"][data.labels[r["train-longtail"]] == 2]) for e, r in rows.items()}
    assert len(few[2]) == 2 and len(few[5]) == 5 and few[2] < few[5] < few["full"] == few[None]
    assert np.array_equal(rows["full"]["train-longtail"], rows[None]["train-longtail"])
    named = split_rows(data, TestbedRecipe(imbalance=4, fewshot=3, test_references=4, exposure=(("ring", 3),)))
    assert (data.labels[named["train-longtail"]] == 0).sum() == 3 and named["limits"] == {0: 3}


def test_the_exposure_is_part_of_the_recipe_checked_on_resume(exposed, digits_like, capsys):
    assert main(["testbed", "train", "--out", str(exposed), "--resume", "--exposure", "5", "--quiet"]) == 2
    assert "exposure was 0, now 5" in capsys.readouterr().err
    assert parse_exposure("cross=0,ring=full") == (("cross", 0), ("ring", "full"))
    assert TestbedRecipe(exposure=[["cross", 0]]).exposure == (("cross", 0),)  # as a JSON record gives it


@pytest.mark.parametrize("flags,message", [
    (["--exposure", "9"], "--exposure 9 for class 'cross': its long-tailed training split has only 8 images"),
    (["--exposure", "-1"], "--exposure must be an integer in [0, inf], got -1"),
    (["--exposure", "few"], "--exposure must be a count of images >= 0 or 'full', got 'few'"),
    (["--exposure", "circle=0"], "--exposure names no class 'circle'"),
    (["--exposure", "ring=1,ring=2"], "--exposure names class 'ring' twice"),
    (["--exposure-file", "MISSING"], "--exposure-file MISSING: cannot read it as JSON"),
    (["--exposure", "0", "--exposure-file", "x.json"], "not both"),
])
def test_bad_exposure_is_one_line_exit_2_and_writes_nothing(digits_like, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    assert main(["testbed", "train", "--data", str(digits_like), "--out", str(out), *FAST, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_an_exposure_file_names_classes_and_their_counts(digits_like, tmp_path):
    from seedspace.cli.cmd_testbed import exposure_option
    from types import SimpleNamespace

    (tmp_path / "e.json").write_text(json.dumps({"bar": 3, "cross": "full"}))
    assert exposure_option(SimpleNamespace(exposure=None, exposure_file=str(tmp_path / "e.json"))) == \
        (("bar", 3), ("cross", "full"))


def test_the_benchmark_on_an_exposure_limited_folder_end_to_end(exposed, tmp_path, capsys):
    """`evaluate --quick` on the folder: the few-shot class is the exposure-limited one, the classifiers do not
    flip (the data are not mirror-symmetric), the report names the exposure and the declared contrasts."""
    out = tmp_path / "ev"
    assert main(["evaluate", "--quick", "--experiments", "longtail", "--model", str(exposed), "--out", str(out),
                 "--lt-test-per-class", "2", "--lt-arms", "oversample,random,paths:nao", "--quiet",
                 "--lt-contrasts", "paths:nao - oversample @ few, ce; random - real+bs @ all, ce"]) == 0
    results = json.loads((out / "results.json").read_text())
    lt = results["experiments"]["longtail"]
    assert "few [2]" in lt["description"] and "cross 0" in lt["description"] and "flips off" in lt["description"]
    tables = {t["name"]: t for t in lt["tables"]}
    assert [r["declared"] for r in tables["longtail-contrasts"]["rows"]] == [
        "paths:nao - oversample @ few, ce", "random - real+bs @ all, ce"]
    capsys.readouterr()
    # the oracle needs real images the generator never saw: 2 per class are left here, the head count is 12
    assert main(["evaluate", "--quick", "--experiments", "longtail", "--model", str(exposed), "--out",
                 str(tmp_path / "ev2"), "--lt-test-per-class", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "never saw" in err and not (tmp_path / "ev2").exists()
