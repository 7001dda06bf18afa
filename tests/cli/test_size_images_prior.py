"""The command line on real-model settings, end to end on the tiny offline pipelines: --height / --width, input
images of another size, aspect ratio and colour (--fit, one note and a record per conversion), and --prior model
in a run whose inversion settings are not the prior's calibration settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import seedspace as ss
from seedspace.backends.images import fit_image
from seedspace.backends.run_prior import prior_mismatch, run_prior_of
from seedspace.cli.main import main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
BOOTS = [ROOT / "examples" / "ankle_boot_1.png", ROOT / "examples" / "ankle_boot_2.png"]


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("seedspace")]
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def wide_image(tmp_path_factory) -> Path:
    """A 60x30 colour image: red left third, green middle, blue right third."""
    a = np.zeros((30, 60, 3), np.uint8)
    a[:, :20, 0] = a[:, 20:40, 1] = a[:, 40:, 2] = 255
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(a).save(path)
    return path


# -- --height / --width ----------------------------------------------------------------------------------
def test_interpolate_at_a_chosen_size_records_and_regenerates_it(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["interpolate", "--model", str(tiny_sd_dir), "--seeds", "1,2", "--frames", "3", "--steps", "2",
                 "--height", "24", "--width", "40", "--out", str(out), "--quiet"]) == 0
    frames = sorted((out / "frames").glob("*.png"))
    assert len(frames) == 3 and all(Image.open(f).size == (40, 24) for f in frames)
    params = json.loads((out / "run.json").read_text())["parameters"]
    assert (params["height"], params["width"]) == (24, 40)
    assert params["model"]["seed_shape"] == [4, 12, 20]  # the tiny VAE's scale factor is 2
    assert load_file(str(out / "seeds.safetensors"))["seeds"].shape == (3, 4, 12, 20)
    assert "Size: 40x24" in Image.open(frames[1]).text["parameters"]
    capsys.readouterr()
    assert main(["regenerate", str(frames[1]), "--out", str(tmp_path / "again.png"), "--check", "--quiet"]) == 0
    assert "identical to" in capsys.readouterr().out
    # the default size is the pipeline's own, recorded too
    assert main(["interpolate", "--model", str(tiny_sd_dir), "--seeds", "1,2", "--frames", "2", "--steps", "2",
                 "--out", str(tmp_path / "default"), "--quiet"]) == 0
    params = json.loads((tmp_path / "default" / "run.json").read_text())["parameters"]
    assert (params["height"], params["width"]) == (16, 16)


@pytest.mark.parametrize("argv, needle", [
    (["--height", "25"], "--height/--width must be positive multiples of 2"),
    (["--width", "0"], "--width must be an integer in [1, 8192], got 0"),
    (["--height", "100000"], "--height must be an integer in [1, 8192]"),
])
def test_a_size_the_pipeline_cannot_make_is_one_line(tiny_sd_dir, tmp_path, capsys, argv, needle):
    rc = main(["interpolate", "--model", str(tiny_sd_dir), "--seeds", "1,2", *argv, "--out", str(tmp_path / "o"),
               "--quiet"])
    assert rc == 2 and needle in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [["interpolate", "--seeds", "1,2", "--frames", "2"],
                                     ["centroid", "--seeds", "1,2", "--frames", "2"],
                                     ["travel", "--seeds", "1,2", "--frames", "2", "--formats", "none"],
                                     ["norms", "--seeds", "1,2"], ["cluster", "--seeds", "1,2,3", "--k", "2"]])
def test_testbeds_have_one_size(tmp_path, capsys, command):
    rc = main([*command, "--height", "64", "--out", str(tmp_path / "o"), "--quiet"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "makes 32x32 images only (its size is fixed)" in line
    assert not (tmp_path / "o").exists()
    assert main([*command, "--height", "32", "--width", "32", "--steps", "2", "--out", str(tmp_path / "ok"),
                 "--quiet"]) == 0  # its own size is accepted


def test_python_models_take_a_size(tiny_sd_dir):
    model = ss.load_model(str(tiny_sd_dir), height=24, width=32)
    assert model.seed_shape == (4, 12, 16) and model.image_shape == (3, 24, 32)
    images = model.generate(ss.seeds_from_ints([1], model.seed_shape), "a cat", steps=2)
    assert images.shape == (1, 3, 24, 32)
    with pytest.raises(ValueError, match="multiples of 2"):
        model.set_size(24, 33)


# -- input images ----------------------------------------------------------------------------------------
def test_fit_crop_keeps_the_centre_pad_keeps_everything():
    a = np.zeros((30, 60, 3), np.uint8)
    a[:, :20, 0] = a[:, 20:40, 1] = a[:, 40:, 2] = 255
    image = Image.fromarray(a)
    notes: list = []
    crop = fit_image(image, 3, 16, 16, "crop", notes)
    assert crop.shape == (3, 16, 16) and notes == ["centre-cropped 60x30 to 30x30 (the model's aspect ratio) and "
                                                  "resized to 16x16"]
    assert crop[1, 8, 8] > 0.9 and crop[0, 8, 8] < 0.1  # the green middle, colour kept
    assert crop[0, :, 0].mean() > 0.5 and crop[2, :, -1].mean() > 0.5  # the red and blue thirds half kept
    notes = []
    pad = fit_image(image, 3, 16, 16, "pad", notes)
    assert notes == ["resized 60x30 to 16x8 and padded with black to 16x16"]
    assert pad[:, :4].max() == 0 and pad[:, -4:].max() == 0  # black bands above and below
    assert pad[0, 8, 0] > 0.9 and pad[2, 8, -1] > 0.9  # the whole width: red at the left edge, blue at the right
    notes = []
    grey = fit_image(image, 1, 8, 16, "crop", notes)
    assert grey.shape == (1, 8, 16) and notes[0] == "colour to grey (the model is grey)"
    assert notes[1:] == ["resized 60x30 to 16x8"]  # the same aspect ratio: only resized
    with pytest.raises(ValueError, match="fit must be one of crop, pad"):
        fit_image(image, 3, 16, 16, "stretch")


def test_pipeline_keeps_colour_and_each_conversion_is_one_note_and_recorded(tiny_sd_dir, wide_image, tmp_path,
                                                                             capsys):
    model = ss.load_model(str(tiny_sd_dir))
    images = model.load_images([wide_image])
    assert images.shape == (1, 3, 16, 16)
    assert not torch.allclose(images[0, 0], images[0, 1])  # colour kept, not grey
    runs = {}
    for fit in ("crop", "pad"):
        out = tmp_path / fit
        assert main(["interpolate", "--model", str(tiny_sd_dir), "--seeds", f"1,{wide_image}", "--frames", "2",
                     "--steps", "2", "--fit", fit, "--out", str(out)]) == 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "wide.png" in line]
        assert len(lines) == 1 and lines[0].startswith("seedspace: image wide.png: 60x30 RGB -> 16x16 RGB: ")
        params = json.loads((out / "run.json").read_text())["parameters"]
        assert params["fit"] == fit
        (record,) = params["image_conversions"]
        assert record["from"] == [60, 30, "RGB"] and record["to"] == [16, 16, "RGB"] and record["fit"] == fit
        assert lines[0].endswith(record["steps"][0])
        runs[fit] = load_file(str(out / "seeds.safetensors"))["endpoints"][1]
    assert not torch.equal(runs["crop"], runs["pad"])  # the fit changes what is inverted
    assert main(["interpolate", "--model", str(tiny_sd_dir), "--seeds", f"1,{wide_image}", "--fit", "stretch",
                 "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--fit" in one_error_line(capsys.readouterr().err) and not (tmp_path / "bad").exists()


def test_grey_model_says_it_drops_colour(tmp_path, wide_image, capsys):
    out = tmp_path / "inv"
    assert main(["invert", str(wide_image), "--class", "9", "--steps", "2", "--fit", "pad", "--dtype", "float32",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert ("seedspace: image wide.png: 60x30 RGB -> 32x32 L: colour to grey (the model is grey); resized 60x30 to "
            "32x16 and padded with black to 32x32") in err
    params = json.loads((out / "run.json").read_text())["parameters"]
    assert params["fit"] == "pad" and len(params["image_conversions"]) == 1
    # an image of the model's size and colour is not converted: no note, no record entry
    same = tmp_path / "same.png"
    Image.fromarray(np.full((32, 32), 90, np.uint8), mode="L").save(same)
    assert main(["invert", str(same), "--class", "9", "--steps", "2", "--out", str(tmp_path / "inv2")]) == 0
    assert "same.png" not in capsys.readouterr().err
    assert json.loads((tmp_path / "inv2" / "run.json").read_text())["parameters"]["image_conversions"] == []


# -- --prior model and the run's inversion settings -------------------------------------------------------
def test_prior_model_at_other_inversion_steps_fits_the_run_and_keeps_nao_between_its_endpoints(tmp_path, capsys):
    """The testbed's prior was calibrated at 50 DDIM steps (mode 0.933 sqrt(d)); inverted at 10 steps the boots sit
    near 0.87 sqrt(d). --prior model then uses a scaled chi fitted to the endpoints (one note, recorded), and the
    NAO path's norms stay between the endpoints' norms instead of rising to 0.933."""
    out = tmp_path / "ten"
    assert main(["interpolate", "--seeds", ",".join(map(str, BOOTS)), "--class", "9", "--steps", "10", "--frames",
                 "7", "--dtype", "float32", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "prior" in line]
    assert len(notes) == 1, err
    assert notes[0].startswith("seedspace: the model's prior was calibrated at 50 ddim steps, this run uses 10 ddim "
                               "steps: NAO uses a scaled chi fitted to the 2 seeds' own norms")
    tensors = load_file(str(out / "seeds.safetensors"))
    ends = tensors["endpoints"].flatten(1).norm(dim=1)
    path = tensors["seeds"].flatten(1).norm(dim=1)
    assert float(ends.max()) < 0.933 * 32  # the model's prior would pull the path above both endpoints
    assert bool((path >= ends.min() - 1e-3).all() and (path <= ends.max() + 1e-3).all()), (ends, path)
    prior = json.loads((out / "run.json").read_text())["parameters"]["prior"]
    assert prior["family"] == "scaled-chi" and "fitted_to" in prior["info"]
    assert abs(prior["scale"] - float(ends.square().mean().sqrt()) / 32) < 1e-3
    capsys.readouterr()
    assert main(["regenerate", str(out / "frames" / "frame000003.png"), "--out", str(tmp_path / "r.png"), "--check",
                 "--quiet"]) == 0


def test_cluster_fits_the_prior_to_its_inputs_as_the_frame_commands_do(tmp_path, capsys):
    """cluster under --prior model with images inverted at 10 steps: the scaled chi fitted to the inputs, one note."""
    out = tmp_path / "clusters"
    assert main(["cluster", "--seeds", ",".join(map(str, BOOTS)), "--k", "1", "--class", "9", "--steps", "10",
                 "--dtype", "float32", "--out", str(out)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "prior" in line]
    assert len(notes) == 1 and "NAO uses a scaled chi fitted to the 2 seeds' own norms" in notes[0]
    prior = json.loads((out / "run.json").read_text())["parameters"]["prior"]
    assert prior["family"] == "scaled-chi" and "fitted_to" in prior["info"]


def test_prior_settings_are_compared_only_where_they_matter():
    model = ss.load_model("testbed")
    record = model.prior.to_record()
    assert record["info"]["calibration"]["steps"] == 50
    assert prior_mismatch(record, model, 50, "ddim") is None
    assert prior_mismatch(record, model, 50, None) is None  # None: the model's default sampler
    assert "this run uses 10 ddim steps" in prior_mismatch(record, model, 10, "ddim")
    assert "this run uses 50 euler steps" in prior_mismatch(record, model, 50, "euler")
    assert prior_mismatch(record, model, 10, "ddim", inverts=False) is None  # integer seeds: no inversion
    assert "dimension 2048, this run's have 1024" in prior_mismatch({**record, "d": 2048}, model, 50, "ddim")
    with pytest.raises(ValueError, match="give --prior chi, scaled-chi:S or a prior file"):
        run_prior_of("model", model, 10, "ddim")  # nothing to fit to: refused, never the misfit prior
    seeds = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8
    fitted, note = run_prior_of("model", model, 10, "ddim", seeds=seeds)
    assert abs(fitted["scale"] - 0.8) < 0.02 and "scaled chi fitted to the 4 seeds' own norms" in note


def test_seedselect_refuses_a_misfit_model_prior_in_one_line(tmp_path, capsys):
    rc = main(["seedselect", "--images", ",".join(map(str, BOOTS)), "--class", "9", "--steps", "10", "--opt-steps",
               "0", "--out", str(tmp_path / "o"), "--quiet"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "the model's prior was calibrated at 50 ddim steps, this run uses 10 ddim steps" in line
    assert not (tmp_path / "o").exists()
    # a random start does not use the prior: it runs, recording none, while a bad --prior is refused all the same
    argv = ["seedselect", "--images", ",".join(map(str, BOOTS)), "--class", "9", "--steps", "10", "--opt-steps", "0",
            "--num-seeds", "1", "--init", "random", "--quiet"]
    assert main([*argv, "--prior", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]) == 2
    assert "none.json" in one_error_line(capsys.readouterr().err) and not (tmp_path / "o").exists()
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert "prior" not in json.loads((tmp_path / "r" / "run.json").read_text())["parameters"]


@pytest.mark.parametrize("command", [["interpolate", "--seeds", "1,2", "--frames", "2"],
                                     ["cluster", "--seeds", "1,2,3", "--k", "2"]])
def test_every_command_records_a_prior_one_way(tmp_path, tiny_testbed_dir, command):
    """chi(d) is left out of run.json (records made before priors existed stay valid); another prior is its record."""
    def recorded(prior):
        out = tmp_path / prior.replace(":", "-")
        argv = [command[0], "--model", str(tiny_testbed_dir), "--steps", "2", "--prior", prior,
                *command[1:], "--out", str(out), "--quiet"]
        assert main(argv) == 0
        return json.loads((out / "run.json").read_text())["parameters"]

    assert "prior" not in recorded("chi")
    assert recorded("scaled-chi:0.9")["prior"] == {"family": "scaled-chi", "d": 64, "scale": 0.9}
