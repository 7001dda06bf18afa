"""Issue 35's benchmark arms: SeedSelect from NAO centroids and from random seeds in the one arm grammar, the
count-matched generator-train arm, the fixed-point inversion and its round-trip table, and their refusals (one
line, exit 2, nothing written), on the tiny test models."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seedspace.backends.testbed import TestbedModel
from seedspace.cli.main import main
from seedspace.evaluation import longtail
from seedspace.evaluation.longtail_settings import LongtailSettings, augment_options, canonical_arm, parse_arm


@pytest.mark.parametrize("arm,canonical,options", [
    ("seedselect", "seedselect:nao@model", {"strategy": "seedselect", "method": "nao", "seedselect_start": "centroid"}),
    ("seedselect:nao@chi/unconditional", "seedselect:nao@chi/unconditional",
     {"strategy": "seedselect", "method": "nao", "seedselect_start": "centroid"}),
    ("seedselect:random", "seedselect:random", {"strategy": "seedselect", "method": "nao", "seedselect_start": "random"}),
    ("paths:slerp", "paths:slerp@model", {"strategy": "paths", "method": "slerp"}),
])
def test_seedselect_arms_in_the_one_grammar(arm, canonical, options):
    assert canonical_arm(arm) == canonical and augment_options(arm) == options
    assert parse_arm("generator-train") == ("generator-train", None, "model")


@pytest.mark.parametrize("arm,message", [("seedselect:random@chi", "takes no prior"),
                                         ("seedselect:normalized", "is a centroid only"),
                                         ("generator-train:nao", "takes no geometry")])
def test_bad_seedselect_arms_are_refused(arm, message):
    with pytest.raises(ValueError, match=message):
        LongtailSettings.quick(arms=("oversample", arm))


def test_seedselect_random_and_nao_are_different_arms():
    assert len(LongtailSettings.quick(arms=("seedselect:nao", "seedselect:random")).run_arms()) == 2
    with pytest.raises(ValueError, match="twice"):
        LongtailSettings.quick(arms=("seedselect:nao@model", "seedselect"))


def test_generator_train_takes_the_generators_images_outside_the_training_set():
    cfg = LongtailSettings.quick()  # head 12
    runner = SimpleNamespace(cfg=SimpleNamespace(seed=0), rng=lambda *names: np.random.default_rng(names[-1]))
    unseen, seen = torch.ones(2, 1, 2, 2), torch.arange(30.).reshape(30, 1, 1, 1).expand(30, 1, 2, 2)
    rep = longtail.draw_replicate(runner, cfg, 0, {0: (unseen, seen)}, [6], [0])
    in_training = {float(v) for v in rep.train_x[2:, 0, 0, 0]}  # 2 unseen, then 4 seen images
    pool = [float(v) for v in rep.generator_train[0][:, 0, 0, 0]]
    assert len(in_training) == 4 and len(pool) == 12 and not in_training & set(pool)
    added = longtail.added_images(runner, cfg, rep, "generator-train", None, {0: 20}, None)
    assert len(added[0]) == 20 and added[0][12].equal(added[0][0])  # count-matched: repeated past 12


def test_generator_train_is_skipped_at_exposure_0_with_a_note():
    arms = [("oversample", None), ("generator-train", None)]
    pools = {0: (torch.zeros(3, 1), torch.zeros(9, 1)), 1: (torch.zeros(3, 1), torch.zeros(0, 1))}
    kept, notes = longtail.generator_train_arms(arms, pools, {1: 5})
    assert kept == arms[:1] and "saw no image of class(es) 1 (exposure 0)" in notes[0]
    kept, notes = longtail.generator_train_arms(arms, {**pools, 1: (torch.zeros(3, 1), torch.zeros(2, 1))}, {1: 5})
    assert kept == arms and "(1: 2 for 5)" in notes[0]


def evaluate(model, out, *args):
    return main(["evaluate", "--quick", "--experiments", "longtail", "--model", str(model), "--out", str(out),
                 "--quiet", "--lt-replicates", "1", "--lt-doses", "fill", "--lt-treatments", "ce", *args])


def test_seedselect_arms_on_a_model_without_features_are_one_line_exit_2(tiny_testbed_dir, tmp_path, capsys,
                                                                         monkeypatch):
    original = TestbedModel.__init__  # a testbed with a judge has features: one that says it has none

    def without_features(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.has_features = False

    monkeypatch.setattr(TestbedModel, "__init__", without_features)
    out = tmp_path / "ev"
    assert evaluate(tiny_testbed_dir, out, "--lt-arms", "oversample,seedselect:random") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no feature extractor" in err and "seedselect:random (class)" in err
    assert not out.exists()


def test_a_contrast_naming_generator_train_at_exposure_0_is_one_line_exit_2(tiny_testbed_dir, tmp_path, capsys,
                                                                             monkeypatch):
    original = TestbedModel.data_split  # the generator's training split without class 2: exposure 0

    def no_class_2(self, split):
        x, y = original(self, split)
        return (x[y != 2], y[y != 2]) if split == "train-longtail" else (x, y)

    monkeypatch.setattr(TestbedModel, "data_split", no_class_2)
    out = tmp_path / "ev"
    assert evaluate(tiny_testbed_dir, out, "--lt-arms", "oversample,generator-train",
                    "--lt-contrasts", "generator-train - oversample @ few, ce") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "names generator-train, which is not run" in err and not out.exists()


def test_the_new_arms_run_end_to_end_with_the_round_trip_reported(tiny_testbed_dir, tmp_path):
    out = tmp_path / "ev"
    assert evaluate(tiny_testbed_dir, out, "--lt-arms", "oversample,generator-train,seedselect:nao,seedselect:random",
                    "--lt-seedselect-steps", "1") == 0
    sec = json.loads((out / "results.json").read_text())["experiments"]["longtail"]
    assert {"generator-train / fill / ce", "seedselect:nao (class) / fill / ce",
            "seedselect:random (class) / fill / ce"} <= set(sec["items"])
    table = next(t for t in sec["tables"] if t["name"] == "longtail-roundtrip")
    assert [r["label"]["condition"] for r in table["rows"]] == ["class"]
    assert table["rows"][0]["label"]["inversion"] == "fixed-point" and table["rows"][0]["n_items"] == 2 * 2  # classes filled x k, not again per arm
    manifests = list((out / "datasets" / "longtail").rglob("run.json"))
    settings = [json.loads(p.read_text())["parameters"]["settings"] for p in manifests]
    assert {s["seedselect_start"] for s in settings} == {"centroid", "random"}
    assert {(s["inversion"], s["inversion_steps"], s["steps"], s["seedselect_steps"]) for s in settings} == \
        {("fixed-point", 2, 2, 1)}
    assert "References' round trip" in (out / "report.md").read_text()
