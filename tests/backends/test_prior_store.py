"""Where a model's own norm prior lives: prior.json in a testbed folder, a per-model cache for diffusers models."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from seedspace.backends.loading import load_model
from seedspace.backends.prior_store import CACHE_ENV, cached_prior_path, folder_revision
from seedspace.cli.main import main


def test_calibrate_out_model_writes_the_prior_the_model_then_carries(tiny_testbed_dir, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_testbed_dir, folder)
    assert load_model(folder).prior is None
    args = ["calibrate", "--model", str(folder), "--norms", "0.9,1.0,1.1", "--per-norm", "2", "--steps", "2",
            "--quiet", "--threads", "1", "--out", "model"]
    assert main(args) == 0, capsys.readouterr().err
    written = json.loads((folder / "prior.json").read_text())
    assert load_model(folder).prior.scale == written["scale"]
    assert main(args) == 2 and "already exists" in capsys.readouterr().err  # never replaced silently


def test_diffusers_models_keep_their_prior_in_a_cache_keyed_by_name_and_revision(tiny_sd_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    model = load_model(tiny_sd_dir)
    assert model.prior_path == cached_prior_path(str(tiny_sd_dir), tiny_sd_dir)
    assert model.prior_path.is_relative_to(tmp_path / "cache" / "priors") and model.prior is None
    model.prior_path.parent.mkdir(parents=True)
    d = math.prod(model.seed_shape)
    model.prior_path.write_text(json.dumps({"family": "scaled-chi", "d": d, "scale": 0.9}))
    assert model.prior.scale == 0.9 and model.prior.d == d
    model.prior_path.write_text(json.dumps({"family": "scaled-chi", "d": d + 1, "scale": 0.9}))
    with pytest.raises(ValueError, match=str(model.prior_path.name)):
        model.prior  # a prior made for another dimension is an error naming the file, never chi in silence


def test_the_revision_follows_the_weights_and_configs_not_the_place(tiny_sd_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_sd_dir, copy)
    assert folder_revision(copy) == folder_revision(tiny_sd_dir)
    weights = next(copy.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # a fine-tune: same configs, other weights
    weights.write_bytes(bytes(data))
    assert folder_revision(copy) != folder_revision(tiny_sd_dir)
    snapshot = tmp_path / "models--org--x" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    assert folder_revision(snapshot) == "ab" * 20
    assert cached_prior_path("org/x", snapshot).parent.name == "org--x"


@pytest.mark.parametrize("case, message", [
    ("a folder", "is not a regular file"),
    ("a broken link", "is not a regular file"),
    ("a pipe", "is not a regular file"),
    ("10 MB", "over 262144"),
    ("nested deeply", "nested too deeply"),
    ("info of the wrong type", "info must be an object"),
    ("d of the wrong type", "d must be a positive integer"),
])
def test_a_model_prior_that_is_not_a_prior_record_is_refused_never_taken_for_chi(tiny_testbed_dir, tmp_path, case,
                                                                                 message):
    import os

    folder = tmp_path / "model"
    shutil.copytree(tiny_testbed_dir, folder)
    prior = folder / "prior.json"
    prior.unlink(missing_ok=True)
    d = math.prod(load_model(folder).seed_shape)
    if case == "a folder":
        prior.mkdir()
    elif case == "a broken link":
        prior.symlink_to(tmp_path / "gone.json")
    elif case == "a pipe":
        os.mkfifo(prior)
    elif case == "10 MB":
        prior.write_text(json.dumps({"family": "chi", "d": d, "info": {"notes": "x" * 10_000_000}}))
    elif case == "nested deeply":
        prior.write_text("[" * 100_000 + "]" * 100_000)
    else:
        field = {"info of the wrong type": {"info": 5}, "d of the wrong type": {"d": "many"}}[case]
        prior.write_text(json.dumps({"family": "scaled-chi", "d": d, "scale": 0.9, **field}))
    model = load_model(folder)
    with pytest.raises(ValueError, match=message):
        model.prior
