"""End-to-end tests of the command line on a tiny testbed-format model (in-process, a few seconds each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import seedspace as ss
from seedspace import outputs
from seedspace.cli.main import as_flags, build_parser, main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    from tiny_models import write_tiny_testbed

    return write_tiny_testbed(tmp_path_factory.mktemp("tiny-testbed"))


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Path:
    """Three 8x8 grey images (the tiny model's size)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def cli(capsys, tiny):
    def run(*args, model=True):
        argv = [str(a) for a in args]
        if model:
            argv += ["--model", str(tiny), "--quiet"]
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def frame_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("frames/**/*.png"))


def assert_user_error(rc, err, out_dir: Path | None = None, contains: str | None = None):
    assert rc == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("seedspace"), err
    assert "error" in lines[0] and "Traceback" not in err
    if contains:
        assert contains in lines[0], lines[0]
    if out_dir is not None:
        assert not out_dir.exists()


# -- help ------------------------------------------------------------------------------------------------
def test_help_lists_commands_and_defaults(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("interpolate", "travel", "centroid", "invert", "norms"):
        assert command in text
    for command in ("interpolate", "travel", "centroid", "invert", "norms"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--model" in text and "--device" in text and "--out" in text and "--quiet" in text
        assert "--num-inference-steps" in text and "--batch-size" in text
        # every option line carries its default
        assert "(default: cpu)" in text and "(default: auto)" in text and "(default: testbed)" in text
    main(["interpolate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 9)" in text and "(default: nao)" in text
    # every option of every command states its default
    from seedspace.cli.main import HelpFormatter, build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    for name, sub in subparsers.items():
        formatter = HelpFormatter(prog=name)
        for action in sub._actions:
            if action.option_strings and action.dest != "help" and action.default is not False:
                assert "default" in formatter._get_help_string(action), (name, action.dest)


def test_python_dash_m_and_testbed_forwarding():
    proc = subprocess.run([sys.executable, "-m", "seedspace", "testbed", "train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "seedspace testbed train" in proc.stdout and "--steps" in proc.stdout


# -- interpolate -----------------------------------------------------------------------------------------
def test_interpolate_compare_writes_everything_and_round_trips(cli, tmp_path):
    out = tmp_path / "run"
    rc, stdout, err = cli("interpolate", "--seeds", "11,42", "--compare", "--frames", "5", "--class", "1", "--out", out)
    assert rc == 0, err
    assert (out / "grid.png").is_file() and (out / "run.json").is_file()
    files = frame_files(out)
    methods = ["lerp", "slerp", "cog", "nao", "nao@chi"]
    assert len(files) == 25 and {p.parent.name for p in files} == set(methods)
    seeds = load_file(str(out / "seeds.safetensors"))
    assert seeds["seeds"].shape == (25, 1, 8, 8) and seeds["endpoints"].shape == (2, 1, 8, 8)
    assert torch.equal(seeds["seeds"][15], seeds["endpoints"][0]) and torch.equal(seeds["seeds"][19], seeds["endpoints"][1])
    # the tiny model carries no prior: --prior model is chi there, so both NAO rows agree
    assert torch.equal(seeds["seeds"][15:20], seeds["seeds"][20:25])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["methods"] == methods and "prior" not in run["parameters"]
    assert run["parameters"]["model"]["revision"] and run["parameters"]["steps"] == 4
    assert [f["t"] for f in run["frames"][15:20]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert run["frames"][17]["endpoints"] == [{"int": 11}, {"int": 42}] and run["frames"][17]["method"] == "nao"
    # PNG metadata: web-UI style parameters plus the seedspace record
    frame = out / "frames" / "nao" / "frame000002.png"
    text = Image.open(frame).text["parameters"]
    assert "Seed: 11" in text and "Variation seed: 42" in text and "Seed method: nao" in text
    record = outputs.parse_parameters(text)
    assert record["frame"]["t"] == 0.5 and record["params"]["methods"] == methods
    # regenerate from the PNG alone: identical bytes
    rc, stdout, err = cli("regenerate", frame, "--out", tmp_path / "again.png", "--check", "--quiet", model=False)
    assert rc == 0, err
    assert (tmp_path / "again.png").read_bytes() == frame.read_bytes()


def test_interpolate_same_inputs_same_bytes(cli, tmp_path):
    for name in ("a", "b"):
        rc, _, err = cli("interpolate", "--seeds", "3,4", "--frames", "3", "--class", "class2", "--out", tmp_path / name)
        assert rc == 0, err
    a, b = frame_files(tmp_path / "a"), frame_files(tmp_path / "b")
    assert [p.name for p in a] == ["frame000000.png", "frame000001.png", "frame000002.png"]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
    assert (tmp_path / "a" / "seeds.safetensors").read_bytes() == (tmp_path / "b" / "seeds.safetensors").read_bytes()


def test_unconditional_class_records_and_regenerates(cli, tmp_path):
    out = tmp_path / "u"
    rc, _, err = cli("interpolate", "--seeds", "3,4", "--frames", "3", "--class", "unconditional", "--out", out)
    assert rc == 0, err
    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["condition"] == {"class": "unconditional", "class_name": "unconditional"}
    rc, _, err = cli("regenerate", out / "frames" / "frame000001.png", "--out", tmp_path / "r.png", "--check",
                     "--quiet", model=False)
    assert rc == 0, err


def test_interpolate_image_and_seed_file_endpoints(cli, tmp_path, images):
    seed_file = tmp_path / "one.safetensors"
    save_file({"seeds": torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(5))}, str(seed_file))
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", f"{images / 'img0.png'},{seed_file}", "--frames", "3", "--method",
                     "slerp", "--class", "0", "--out", out)
    assert rc == 0, err
    run = json.loads((out / "run.json").read_text())
    assert "image" in run["endpoints"][0] and run["endpoints"][1]["file"] == str(seed_file.resolve())
    seeds = load_file(str(out / "seeds.safetensors"))["seeds"]
    assert torch.equal(seeds[-1], load_file(str(seed_file))["seeds"])  # a file holding one seed
    frame = out / "frames" / "frame000001.png"
    rc, _, err = cli("regenerate", frame, "--out", tmp_path / "r.png", "--check", "--quiet", model=False)
    assert rc == 0, err


def test_weighted_blend_endpoints(cli, tmp_path):
    import seedspace as ss
    from seedspace.backends.base import seeds_from_ints

    out = tmp_path / "blend"
    rc, _, err = cli("interpolate", "--seeds", "11:0.25|42:0.75,7", "--frames", "3", "--method", "slerp", "--out", out)
    assert rc == 0, err
    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["seeds"][0] == {"blend": [{"int": 11}, {"int": 42}], "weights": [0.25, 0.75]}
    expected = ss.blend(seeds_from_ints([11, 42], (1, 8, 8)).double(), [0.25, 0.75]).float()
    torch.testing.assert_close(load_file(str(out / "seeds.safetensors"))["seeds"][0], expected)
    rc, _, err = cli("regenerate", out / "frames" / "frame000000.png", "--out", tmp_path / "r.png", "--check",
                     "--quiet", model=False)
    assert rc == 0, err
    for bad, message in (("11:0.2|42", "SEED:WEIGHT"), ("11:-1|42:1", "non-negative"), ("11:0|42:0", "not all zero")):
        rc, _, err = cli("interpolate", "--seeds", f"{bad},7", "--frames", "3", "--out", tmp_path / "bad")
        assert_user_error(rc, err, tmp_path / "bad", message)


def test_random_seeds_are_deterministic(cli, tmp_path):
    for name in ("a", "b"):
        rc, _, err = cli("norms", "--random-seeds", "4", "--seed-base", "7", "--out", tmp_path / name)
        assert rc == 0, err
    a = json.loads((tmp_path / "a" / "norms.json").read_text())["seeds"]
    b = json.loads((tmp_path / "b" / "norms.json").read_text())["seeds"]
    assert [r["seed"] for r in a] == [r["seed"] for r in b] and len(a) == 4


# -- travel ----------------------------------------------------------------------------------------------
def test_travel_loop_video_gif_no_duplicate_keyframes(cli, tmp_path):
    out = tmp_path / "run"
    rc, _, err = cli("travel", "--seeds", "1,2,3", "--loop", "--frames", "3,4,2", "--easing", "ease-in-out",
                     "--class", "0,1,2", "--fps", "8", "--out", out)
    assert rc == 0, err
    files = frame_files(out)
    assert len(files) == (3 - 1) + (4 - 1) + (2 - 1)  # loop: every segment drops its last frame
    assert [p.name for p in files][:2] == ["frame000000.png", "frame000001.png"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["frames_per_segment"] == [3, 4, 2]
    assert [f["segment"] for f in run["frames"]] == [0, 0, 1, 1, 1, 2]
    assert [f["keyframe"] for f in run["frames"] if f["position"] == 0] == [0, 1, 2]
    ts = [round(f["t"], 6) for f in run["frames"] if f["segment"] == 1]
    assert ts == [0.0, 0.25, 0.75]  # cosine easing of 0, 1/3, 2/3
    seeds = load_file(str(out / "seeds.safetensors"))
    assert seeds["seeds"].shape == (6, 1, 8, 8) and seeds["keyframes"].shape == (3, 1, 8, 8)
    assert torch.equal(seeds["seeds"][2], seeds["keyframes"][1])
    mp4 = (out / "travel.mp4").read_bytes()
    assert mp4[4:8] == b"ftyp" and len(mp4) > 100
    with Image.open(out / "travel.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (256, 256)
    assert run["video"]["size"] == [256, 256]
    # an eased frame with a per-keyframe class round-trips from its metadata
    rc, _, err = cli("regenerate", out / "frames" / "frame000004.png", "--out", tmp_path / "r.png", "--check",
                     "--quiet", model=False)
    assert rc == 0, err


def test_travel_open_chain_keeps_final_keyframe(cli, tmp_path):
    out = tmp_path / "run"
    rc, _, err = cli("travel", "--seeds", "1,2,3", "--frames", "3", "--formats", "gif", "--out", out, "--class", "1")
    assert rc == 0, err
    assert len(frame_files(out)) == 2 + 2 + 1 and not (out / "travel.mp4").exists()
    seeds = load_file(str(out / "seeds.safetensors"))
    assert torch.equal(seeds["seeds"][-1], seeds["keyframes"][-1])


def test_interrupted_travel_resumes_to_the_same_bytes(cli, tmp_path, monkeypatch):
    from seedspace.backends.ddim_model import DDIMModel

    args = ("travel", "--seeds", "1,2,3", "--frames", "3", "--formats", "gif", "--class", "1", "--batch-size", "2")
    rc, _, err = cli(*args, "--out", tmp_path / "full")
    assert rc == 0, err
    generate, calls = DDIMModel.generate, []

    def interrupted_at_second_batch(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return generate(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(DDIMModel, "generate", interrupted_at_second_batch)
        rc, _, err = cli(*args, "--out", tmp_path / "cut")
    assert rc == 130
    cut = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert cut["status"] == "interrupted" and [f["index"] for f in cut["frames"]] == [0, 1]
    rc, _, err = cli("travel", "--resume", tmp_path / "full", "--out", tmp_path / "x", "--quiet", model=False)
    assert rc == 2 and "--out" in err
    rc, _, err = cli("interpolate", "--resume", tmp_path / "cut", "--quiet", model=False)
    assert rc == 2 and "not a `interpolate` run" in err
    calls.clear()
    with monkeypatch.context() as m:  # only the two unfinished batches are rendered
        m.setattr(DDIMModel, "generate", lambda self, *a, **k: calls.append(1) or generate(self, *a, **k))
        rc, _, err = cli("travel", "--resume", tmp_path / "cut", "--quiet", model=False)
    assert rc == 0, err
    assert len(calls) == 2
    resumed = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert resumed["status"] == "completed" and "resumed" in (tmp_path / "cut" / "run.log").read_text()
    assert [f["index"] for f in resumed["frames"]] == list(range(5))
    names = [p.relative_to(tmp_path / "full") for p in frame_files(tmp_path / "full")] + ["grid.png", "travel.gif",
                                                                                          "run.json", "seeds.safetensors"]
    assert all((tmp_path / "full" / n).read_bytes() == (tmp_path / "cut" / n).read_bytes() for n in names)


def test_resume_refuses_changed_inputs(cli, tmp_path):
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", "3,4", "--frames", "3", "--class", "0", "--out", out)
    assert rc == 0, err
    save_file({"seeds": torch.zeros(3, 1, 8, 8)}, str(out / "seeds.safetensors"))
    rc, _, err = cli("interpolate", "--resume", out, "--quiet", model=False)
    assert rc == 2 and "inputs changed" in err


# -- centroid, invert, norms -----------------------------------------------------------------------------
def test_centroid_from_image_folder(cli, tmp_path, images):
    out = tmp_path / "run"
    rc, _, err = cli("centroid", "--images", images, "--frames", "3", "--class", "1", "--out", out)
    assert rc == 0, err
    assert (out / "centroid.png").is_file() and (out / "grid.png").is_file()
    assert len(sorted(out.glob("paths/path*/frame*.png"))) == 9
    c = load_file(str(out / "centroid.safetensors"))["seeds"]
    paths = load_file(str(out / "paths.safetensors"))["seeds"]
    inputs = load_file(str(out / "inputs.safetensors"))["seeds"]
    assert c.shape == (1, 1, 8, 8) and paths.shape == (9, 1, 8, 8) and inputs.shape == (3, 1, 8, 8)
    assert torch.equal(paths[0], c[0]) and torch.equal(paths[2], inputs[0])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and [Path(e["image"]).name for e in run["inputs"]] == ["img0.png", "img1.png", "img2.png"]


def test_centroid_from_seed_file(cli, tmp_path):
    seed_file = tmp_path / "batch.safetensors"
    save_file({"seeds": torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))}, str(seed_file))
    out = tmp_path / "run"
    rc, _, err = cli("centroid", "--seeds", seed_file, "--method", "cog", "--frames", "2", "--class", "0", "--out", out)
    assert rc == 0, err
    assert load_file(str(out / "paths.safetensors"))["seeds"].shape == (8, 1, 8, 8)
    rc, _, err = cli("regenerate", out / "centroid.png", "--out", tmp_path / "c.png", "--check", "--quiet", model=False)
    assert rc == 0, err


def test_invert_writes_seeds_and_psnr(cli, tmp_path, images):
    out = tmp_path / "run"
    rc, stdout, err = cli("invert", images / "img0.png", images / "img1.png", "--class", "2", "--out", out)
    assert rc == 0, err
    assert "PSNR" in stdout and "img1.png" in stdout
    seeds = load_file(str(out / "seeds.safetensors"))["seeds"]
    assert seeds.shape == (2, 1, 8, 8) and torch.isfinite(seeds).all()
    run = json.loads((out / "run.json").read_text())
    assert len(run["images"]) == 2 and all(r["psnr_db"] > 0 for r in run["images"])
    assert (out / "reconstructions.png").is_file() and len(list(out.glob("reconstructions/*.png"))) == 2
    # the seeds feed back into other commands
    rc, _, err = cli("norms", "--seeds", f"{out / 'seeds.safetensors'},5", "--out", tmp_path / "n")
    assert rc == 0, err


def test_norms_report_histogram_and_flags(cli, tmp_path):
    bad = tmp_path / "bad.safetensors"
    save_file({"seeds": 0.3 * torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))}, str(bad))
    out = tmp_path / "run"
    rc, stdout, err = cli("norms", "--seeds", f"1,2,{bad}", "--out", out)
    assert rc == 0, err
    report = json.loads((out / "norms.json").read_text())
    assert report["d"] == 64 and len(report["seeds"]) == 3
    assert report["flagged"] == ["bad.safetensors"]
    row = report["seeds"][0]
    for key in ("norm_ratio", "zscore", "percentile", "ks_statistic", "ks_pvalue", "atypical"):
        assert key in row
    assert (out / "norms.png").stat().st_size > 1000 and "atypical norm" in stdout


def test_prompt_model_interpolate(cli, tmp_path_factory, tmp_path):
    from tiny_models import write_tiny_stable_diffusion

    sd = write_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))
    out = tmp_path / "run"
    rc = main(["interpolate", "--model", str(sd), "--seeds", "1,2", "--frames", "2", "--steps", "2", "--prompt",
               "a cat", "--negative-prompt", "blurry", "--out", str(out), "--quiet"])
    assert rc == 0
    text = Image.open(out / "frames" / "frame000001.png").text["parameters"]
    assert text.startswith("a cat\nNegative prompt: blurry\n")
    rc, _, err = cli("regenerate", out / "frames" / "frame000001.png", "--out", tmp_path / "r.png", "--check",
                     "--quiet", model=False)
    assert rc == 0, err


# -- bad input -------------------------------------------------------------------------------------------
def test_library_errors_read_as_flags_on_the_command_line():
    augment = build_parser().commands["augment"]
    assert as_flags("per_class must be an integer in [1, 100000], got 0", augment) == \
        "--per-class must be an integer in [1, 100000], got 0"
    assert as_flags("steps must be an integer in [1, 1000], got 1001", augment).startswith("--steps must")
    assert as_flags("shard_size must be a multiple of batch_size, got 5 and 2", augment) == \
        "--shard-size must be a multiple of --batch-size, got 5 and 2"
    for untouched in ("run.json: 'batch_size' must be an integer", "the steps of a run must match",
                      "cannot resume out: per_class_x was 2"):
        assert as_flags(untouched, augment) == untouched


def test_unknown_method(cli, tmp_path):
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--method", "bogus", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "unknown methods 'bogus'; choose one of nao, slerp")
    rc, _, err = cli("centroid", "--seeds", "1,2", "--method", "bogus", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "unknown method")


def test_missing_model_path(capsys, tmp_path):
    rc = main(["interpolate", "--seeds", "1,2", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert_user_error(rc, capsys.readouterr().err, tmp_path / "o", "does not exist")


def test_empty_and_missing_image_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    rc, _, err = cli("centroid", "--images", tmp_path / "empty", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "holds no images")
    rc, _, err = cli("centroid", "--images", tmp_path / "missing", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "does not exist")
    rc, _, err = cli("invert", tmp_path / "empty", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "holds no images")


def test_corrupt_image(cli, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    rc, _, err = cli("invert", bad, "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "cannot read image")
    rc, _, err = cli("interpolate", "--seeds", f"1,{bad}", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "bad.png")


def test_wrong_size_image_is_resized_with_a_note(capsys, tiny, tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.full((12, 12), 128, np.uint8), mode="L").save(big)
    rc = main(["invert", str(big), "--class", "0", "--model", str(tiny), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "seedspace: image big.png: 12x12 L -> 8x8 L: resized 12x12 to 8x8" in err and "Traceback" not in err
    params = json.loads((tmp_path / "o" / "run.json").read_text())["parameters"]
    assert params["fit"] == "crop" and params["image_conversions"][0]["steps"] == ["resized 12x12 to 8x8"]


def test_seeds_of_the_wrong_shape(cli, tmp_path):
    wrong = tmp_path / "wrong.safetensors"
    save_file({"seeds": torch.randn(2, 3, 4, 4)}, str(wrong))
    rc, _, err = cli("interpolate", "--seeds", wrong, "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "shape")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage")
    rc, _, err = cli("norms", "--seeds", corrupt, "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "cannot read seed file")


@pytest.mark.parametrize("spec", ["1,abc", "1,-3", "1,2.5", "1,,2", ""])
def test_non_numeric_seed_list(cli, tmp_path, spec):
    rc, _, err = cli("interpolate", "--seeds", spec, "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o")


def test_output_folder_exists(cli, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--out", tmp_path / "o")
    assert_user_error(rc, err, None, "already exists")
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["keep.txt"]


def test_bad_option_values_are_one_line(cli, tmp_path):
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--frames", "zero", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o")
    rc, _, err = cli("travel", "--seeds", "1,2,3", "--frames", "3,3,3", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "segments")
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--class", "99", "--out", tmp_path / "o")
    assert_user_error(rc, err, tmp_path / "o", "class")


def test_ctrl_c_keeps_finished_frames_and_marks_run_interrupted(cli, tmp_path, monkeypatch):
    from seedspace.backends.ddim_model import DDIMModel

    original, calls = DDIMModel.generate, []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DDIMModel, "generate", flaky)
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--frames", "5", "--batch-size", "2", "--class", "0", "--out", out)
    assert rc == 130
    assert "Traceback" not in err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and len(run["frames"]) == 2
    assert [p.name for p in frame_files(out)] == ["frame000000.png", "frame000001.png"]
    assert not list(out.rglob(".*partial*"))


def test_interpolate_compare_runs_with_defaults_only(cli, tmp_path):
    out = tmp_path / "run"
    rc, stdout, err = cli("interpolate", "--compare", "--frames", "2", "--out", out)
    assert rc == 0, err
    run = json.loads((out / "run.json").read_text())
    assert run["endpoints"] == [{"int": 11}, {"int": 42}] and run["parameters"]["condition"]["class"] == 0
    assert (out / "grid.png").is_file() and "wrote" in stdout


def test_prior_option_changes_nao_paths_and_is_recorded(cli, tmp_path):
    """--prior scaled-chi:S: the NAO path follows |x| ~ S sqrt(d), run.json and every PNG record it, and a frame
    regenerates from its PNG alone."""
    args = ("interpolate", "--seeds", "1,2", "--frames", "5", "--steps", "2", "--class", "0")
    rc, _, err = cli(*args, "--out", tmp_path / "chi")
    assert rc == 0, err
    rc, _, err = cli(*args, "--prior", "scaled-chi:0.8", "--out", tmp_path / "scaled")
    assert rc == 0, err
    chi = load_file(str(tmp_path / "chi" / "seeds.safetensors"))["seeds"]
    scaled = load_file(str(tmp_path / "scaled" / "seeds.safetensors"))["seeds"]
    mid_chi, mid_scaled = chi[2].norm().item(), scaled[2].norm().item()
    assert mid_scaled < 0.9 * mid_chi  # the midpoint sits near the scaled prior's shell, not chi's
    run = json.loads((tmp_path / "scaled" / "run.json").read_text())
    assert run["parameters"]["prior"]["family"] == "scaled-chi" and "prior" not in json.loads(
        (tmp_path / "chi" / "run.json").read_text())["parameters"]
    rc, _, err = cli("regenerate", tmp_path / "scaled" / "frames" / "frame000002.png", "--out", tmp_path / "r.png",
                     "--check", "--quiet", model=False)
    assert rc == 0, err
    rc, _, err = cli(*args, "--prior", "gaussian", "--out", tmp_path / "bad")
    assert rc == 2 and not (tmp_path / "bad").exists()


def test_prior_model_is_the_default_and_the_papers_row_stands_beside_it(tmp_path, capsys, tiny):
    """--prior model (the default): the embedded testbed's calibrated prior, recorded; 'nao@chi' is NAO under chi
    beside it; a model without a prior says so in one line and runs chi, recording no prior (as before priors)."""
    out = tmp_path / "tb"
    assert main(["interpolate", "--seeds", "1,2", "--compare", "nao,nao@chi", "--frames", "3", "--steps", "2",
                 "--dtype", "float32", "--out", str(out), "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    shipped = ss.load_model("testbed").prior.to_record()
    assert run["parameters"]["prior"] == shipped
    seeds = load_file(str(out / "seeds.safetensors"))["seeds"]
    nao, paper = seeds[1].flatten().norm() / 32, seeds[4].flatten().norm() / 32
    assert abs(float(nao) - shipped["scale"]) < 0.02 and abs(float(paper) - 1.0) < 0.02  # NAO sits at its prior's mode
    capsys.readouterr()
    assert main(["interpolate", "--seeds", "1,2", "--frames", "3", "--model", str(tiny), "--out", str(tmp_path / "t")]) == 0
    err = capsys.readouterr().err
    assert "carries no norm prior; NAO uses chi(d)" in err
    assert "prior" not in json.loads((tmp_path / "t" / "run.json").read_text())["parameters"]
