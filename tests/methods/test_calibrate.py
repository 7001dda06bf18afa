"""seedspace calibrate: the quality-curve -> prior fit on planted curves, the measurement on the tiny testbed, the prior
file that every --prior reads, and bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import seedspace as ss
from seedspace.methods import calibrate as cal
from seedspace.cli.main import main

torch.set_num_threads(1)
D = 1024  # the testbed's seed dimension
GRID = np.round(np.arange(0.80, 1.1001, 0.05), 2)  # the default norms / sqrt(d)


def planted(peak: float, width: float = 0.04, floor: float = 0.1) -> np.ndarray:
    """A quality curve on GRID peaked at ``peak`` sqrt(d), on a floor."""
    return floor + (1 - floor) * np.exp(-(GRID - peak) ** 2 / (2 * width ** 2))


# -- the curve -> prior fit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("peak", [0.90, 0.93, 0.97])
def test_planted_peak_gives_the_prior_mode_within_half_a_percent(peak):
    prior = ss.prior_from_quality(GRID * math.sqrt(D), planted(peak), D)
    assert prior.family == "scaled-chi" and prior.d == D
    assert abs(prior.mode / math.sqrt(D) - peak) < 0.005  # stated tolerance: 0.005 sqrt(d)
    assert abs(prior.info["mode_ratio"] - prior.mode / math.sqrt(D)) < 1e-12
    assert prior.info["peak_at_edge"] is False and prior.info["norm_ratios"] == pytest.approx(GRID.tolist())
    # the closed form: s^2 = int rho r^2 / (d int rho) for rho = q - min q, linear between the grid points
    r = np.linspace(GRID[0], GRID[-1], 200001) * math.sqrt(D)
    rho = np.interp(r, GRID * math.sqrt(D), planted(peak) - planted(peak).min())
    assert prior.scale == pytest.approx(math.sqrt(np.trapezoid(rho * r * r, r) / (D * np.trapezoid(rho, r))), rel=1e-6)


def test_the_scale_follows_the_peak_and_the_generalized_width_follows_the_curve():
    r = GRID * math.sqrt(D)
    scales = [ss.prior_from_quality(r, planted(p), D).scale for p in (0.86, 0.90, 0.94, 0.98, 1.02)]
    assert all(a < b for a, b in zip(scales, scales[1:]))
    narrow = ss.prior_from_quality(r, planted(0.93, 0.03), D, family="generalized-chi")
    wide = ss.prior_from_quality(r, planted(0.93, 0.07), D, family="generalized-chi")
    assert narrow.family == wide.family == "generalized-chi"
    assert abs(narrow.mode / math.sqrt(D) - 0.93) < 0.01 and abs(wide.mode / math.sqrt(D) - 0.93) < 0.01
    assert narrow.std < wide.std and narrow.std > ss.ChiPrior(D).std  # wider than chi's shell, as the curve is
    # a constant offset or a positive factor on the scores changes nothing; the order of the points neither
    base = ss.prior_from_quality(r, planted(0.93), D)
    assert ss.prior_from_quality(r, 3 * planted(0.93) + 7, D).scale == pytest.approx(base.scale, rel=1e-12)
    assert ss.prior_from_quality(r[::-1], planted(0.93)[::-1], D).scale == pytest.approx(base.scale, rel=1e-12)
    assert ss.prior_from_quality(r, GRID, D).info["peak_at_edge"] is True  # rising to the end: measure wider


@pytest.mark.parametrize("norms,quality,message", [
    ([], [], "at least 2 norms"),
    ([30.0], [1.0], "at least 2 norms"),
    ([30.0, 31.0], [1.0], "2 norms but 1 quality"),
    ([30.0, float("nan")], [1.0, 0.5], "finite and > 0"),
    ([-1.0, 31.0], [1.0, 0.5], "finite and > 0"),
    ([30.0, 31.0], [1.0, float("inf")], "quality values must be finite"),
    ([30.0, 30.0], [1.0, 0.5], "distinct"),
    ([30.0, 31.0], [0.5, 0.5], "does not change with the norm"),
])
def test_bad_curves_are_value_errors(norms, quality, message):
    with pytest.raises(ValueError, match=message):
        ss.prior_from_quality(norms, quality, D)
    with pytest.raises(ValueError, match="unknown prior family"):
        ss.prior_from_quality([30.0, 31.0], [1.0, 0.5], D, family="gamma")


def test_parse_norms():
    assert cal.parse_norms("0.80:1.10:0.05") == tuple(GRID.tolist())
    assert cal.parse_norms("1.0, 0.9") == (0.9, 1.0)
    for bad, message in [("", "no norms"), ("0.9", "at least 2"), ("0.9,nan", "finite"), ("0.9,0.9", "distinct"),
                         ("0,1", r"\(0, 4\]"), ("a,b", "bad norms"), ("1:0.9:0.1", "bad norms"), ([], "no norms")]:
        with pytest.raises(ValueError, match=message):
            cal.parse_norms(bad)


# -- the measurement on the tiny testbed ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tiny_testbed_dir):
    return ss.load_model(str(tiny_testbed_dir))


def test_calibrate_measures_both_direction_kinds_deterministically(model):
    kwargs = dict(norms=(0.9, 1.0, 1.1), per_norm=3, steps=2, seed=4)
    result = ss.calibrate(model, **kwargs)
    info = result.prior.info["calibration"]
    assert info["directions_used"] == ["random", "inverted"] and info["per_norm"] == {"random": 3, "inverted": 3}
    assert info["score"] == "conf" and info["classes"] == [0, 1, 2] and info["steps"] == 2
    for kind in ("random", "inverted"):
        conf = info["curves"][kind]["conf"]
        assert len(conf["mean"]) == 3 and conf["n"] == 3 and all(0 <= m <= 1 for m in conf["mean"])
    # the fitted curve is the mean of the two kinds' curves
    expected = np.mean([info["curves"][k]["conf"]["mean"] for k in ("random", "inverted")], axis=0)
    assert result.quality == pytest.approx(expected.tolist()) and result.prior.info["quality"] == result.quality
    again = ss.calibrate(model, **kwargs)
    assert again.prior.to_record() == result.prior.to_record()
    other = ss.calibrate(model, **{**kwargs, "seed": 5, "directions": "random"})
    assert other.prior.info["calibration"]["curves"]["random"] != info["curves"]["random"]


def test_calibrate_bad_input(model, tiny_testbed_dir, tmp_path):
    for kwargs, message in [({"directions": "sideways"}, "unknown directions"), ({"norms": []}, "no norms"),
                            ({"norms": (0.9, float("nan"))}, "finite"), ({"per_norm": 0}, "per_norm"),
                            ({"score": "fid"}, "unknown score"), ({"classes": ["unconditional"]}, "null"),
                            ({"classes": ["sweater"]}, "unknown class"), ({"family": "gamma"}, "unknown family .gamma.")]:
        with pytest.raises(ValueError, match=message):
            ss.calibrate(model, **{"norms": (0.9, 1.0), "per_norm": 1, "steps": 1, **kwargs})
    bare = tmp_path / "bare"  # no judge, no encoder, no few-shot images
    shutil.copytree(tiny_testbed_dir, bare)
    for name in ("judge.safetensors", "encoder.safetensors", "fewshot.safetensors"):
        (bare / name).unlink()
    with pytest.raises(ValueError, match="neither a judge nor an image feature extractor"):
        ss.calibrate(ss.load_model(str(bare)), norms=(0.9, 1.0), per_norm=1, steps=1)


def test_features_score_without_a_judge_and_no_fewshot_falls_back_to_random(tiny_testbed_dir, tmp_path):
    folder = tmp_path / "encoder-only"
    shutil.copytree(tiny_testbed_dir, folder)
    (folder / "judge.safetensors").unlink()
    encoder_only = ss.load_model(str(folder))
    result = ss.calibrate(encoder_only, norms=(0.9, 1.1), per_norm=2, steps=1, directions="random")
    assert result.score == "features" and set(result.curves["random"]) == {"features"}
    assert all(-1 <= m <= 1 for m in result.curves["random"]["features"]["mean"])
    with pytest.raises(ValueError, match="no judge"):
        ss.calibrate(encoder_only, norms=(0.9, 1.0), per_norm=1, steps=1, score="conf")
    (folder / "fewshot.safetensors").unlink()
    no_real = ss.load_model(str(folder))
    with pytest.raises(ValueError, match="few-shot images"):  # features compare with the class's real images
        ss.calibrate(no_real, norms=(0.9, 1.0), per_norm=1, steps=1, directions="random")


# -- the command line -----------------------------------------------------------------------------------------
def test_cli_calibrate_writes_a_prior_file_that_interpolate_reads(tiny_testbed_dir, tmp_path, capsys):
    out = tmp_path / "tiny.prior.json"
    args = ["calibrate", "--model", str(tiny_testbed_dir), "--norms", "0.9,1.0,1.1", "--per-norm", "2", "--steps", "2",
            "--class", "0", "2", "--quiet", "--threads", "1", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out and not list(tmp_path.glob(".*partial*"))
    record = json.loads(out.read_text())
    assert record["family"] == "scaled-chi" and record["d"] == 64
    calibration = record["info"]["calibration"]
    assert calibration["model"]["id"] == str(tiny_testbed_dir) and calibration["classes"] == [0, 2]
    assert calibration["command"].startswith("seedspace calibrate --model") and "--per-norm 2" in calibration["command"]
    assert record["info"]["norm_ratios"] == [0.9, 1.0, 1.1] and len(record["info"]["quality"]) == 3
    assert ss.load_prior(str(out), 64).scale == record["scale"]

    assert main(args) == 2 and "already exists" in capsys.readouterr().err  # never overwritten silently
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    assert main([*args[:-1], str(folder), "--overwrite"]) == 2
    assert "is not a regular file" in capsys.readouterr().err and folder.is_dir()

    run = tmp_path / "run"
    assert main(["interpolate", "--model", str(tiny_testbed_dir), "--seeds", "1,2", "--frames", "3", "--steps", "2",
                 "--class", "0", "--prior", str(out), "--out", str(run), "--quiet"]) == 0, capsys.readouterr().err
    recorded = json.loads((run / "run.json").read_text())["parameters"]["prior"]
    assert recorded["scale"] == record["scale"] and recorded["info"]["calibration"]["command"] == calibration["command"]
    seeds = load_file(str(run / "seeds.safetensors"))["seeds"]
    assert seeds.shape[0] == 3


@pytest.mark.parametrize("extra,message", [
    (["--per-norm", "0"], "--per-norm"),
    (["--norms", ""], "no norms"),
    (["--norms", "0.9,inf"], "finite"),
    (["--norms", "0.9"], "at least 2"),
    (["--directions", "sideways"], "invalid choice"),
    (["--class", "sweater"], "unknown class"),
    (["--steps", "0"], "--steps"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_testbed_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "p.json"
    code = main(["calibrate", "--model", str(tiny_testbed_dir), "--per-norm", "1", "--steps", "1", "--norms",
                 "0.9,1.0", "--quiet", "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_cli_refuses_a_model_it_cannot_score(tiny_testbed_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_testbed_dir, bare)
    for name in ("judge.safetensors", "encoder.safetensors"):
        (bare / name).unlink()
    code = main(["calibrate", "--model", str(bare), "--quick", "--quiet", "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "neither a judge nor an image feature extractor" in err and len(err.splitlines()) == 1


def test_default_prior_path_is_outside_the_package():
    assert cal.default_prior_path("testbed").as_posix() == "outputs/calibrate/testbed.prior.json"
    assert cal.default_prior_path("org/model-x").name == "org--model-x.prior.json"
    assert cal.default_prior_path("/some/where/my run").name == "my-run.prior.json"


def test_recorded_priors_are_checked_when_a_run_is_read_back():
    from seedspace.runs.records import RecordError, check_run_parameters

    params = {"model": {"id": "testbed", "seed_shape": [1, 8, 8]}, "condition": {"class": 0}, "steps": 2,
              "guidance": 2.0, "seeds": [{"int": 1}, {"int": 2}], "methods": ["nao"], "frames": 3}
    check_run_parameters("interpolate", {**params, "prior": {"family": "scaled-chi", "d": 64, "scale": 0.9}}, "r")
    for prior, message in [({"family": "gamma", "d": 64}, "unknown prior family"),
                           ({"family": "scaled-chi", "d": 64}, "lacks scale"),
                           ({"family": "scaled-chi", "d": 32, "scale": 0.9}, "d=32")]:
        with pytest.raises(RecordError, match=f"r: malformed record: .*{message}"):
            check_run_parameters("interpolate", {**params, "prior": prior}, "r")
