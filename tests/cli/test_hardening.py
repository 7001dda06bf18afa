"""Hardening: every class of bad input, of environment failure and of interrupted run, through the command line
(in-process, on the tiny testbed) and the API where it applies. Each case checks the exit code, the one-line
message and what is left on disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import seedspace as ss
from seedspace import outputs
from seedspace.cli.main import main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
CHEAP = ("--frames", "3", "--class", "0", "--steps", "2")  # a run of a few tiny UNet calls


@pytest.fixture(scope="module")
def model(tiny_testbed_dir):
    return ss.load_model(tiny_testbed_dir)


@pytest.fixture
def cli(capsys, tiny_testbed_dir, monkeypatch, tmp_path):
    """Run the command line in-process (working directory tmp_path) -> (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)

    def run(*args, model=True):
        argv = [str(a) for a in args] + (["--model", str(tiny_testbed_dir), "--quiet"] if model else [])
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def one_line(rc, err, contains=(), code=2) -> str:
    """The single stderr line of a failed command, after checking its exit code and what it says."""
    assert rc == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("seedspace") and "Traceback" not in err, err
    assert "internal error" not in lines[0], lines[0]
    for text in (contains,) if isinstance(contains, str) else contains:
        assert text in lines[0], lines[0]
    return lines[0]


def nothing_written(tmp_path: Path, *keep: str) -> None:
    """No run folder (or anything else) appeared in the working directory."""
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in keep) == []


def seed_file(path: Path, tensor) -> Path:
    save_file({"seeds": tensor}, str(path))
    return path


def tree_bytes(folder: Path) -> dict:
    """Every file of a run folder but its wall-clock log and lock -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("run.log", ".lock", "timings.json")}


# -- 1. inputs that used to give exit 0 with wrong output ------------------------------------------------
@pytest.mark.parametrize("tensor, message", [
    (torch.full((1, 1, 8, 8), 1e25, dtype=torch.float64), "too large"),           # norm overflows float32
    (torch.full((1, 1, 8, 8), 3e38), "too large"),                                 # finite entries, norm overflows
    (torch.ones(2, 1, 8, 8, dtype=torch.int64), "floating point"),
    (torch.ones(2, 1, 8, 8, dtype=torch.bool), "floating point"),
    (torch.cat([torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), float("nan"))]), "NaN or infinite values in seed 1"),
])
def test_bad_seed_files_are_refused(cli, tmp_path, model, tensor, message):
    path = seed_file(tmp_path / "bad.safetensors", tensor)
    rc, _, err = cli("norms", "--seeds", f"1,{path}", "--out", tmp_path / "o")
    one_line(rc, err, ("bad.safetensors", message))
    nothing_written(tmp_path, "bad.safetensors")
    with pytest.raises(ValueError, match=message.split(" in ")[0]):
        ss.load_seeds(str(path), model)


def test_empty_seed_file_and_model_level_seed_checks(cli, tmp_path, model):
    (tmp_path / "empty.safetensors").write_bytes(b"")
    rc, _, err = cli("interpolate", "--seeds", f"1,{tmp_path / 'empty.safetensors'}", "--out", tmp_path / "o")
    one_line(rc, err, "cannot read seed file")
    nothing_written(tmp_path, "empty.safetensors")
    # the model itself refuses what would overflow its arithmetic, whatever the caller
    for seeds, message in ((torch.zeros(1, 1, 8, 8, dtype=torch.int32), "floating point"),
                           (torch.full((1, 1, 8, 8), 1e30), "too large"),
                           (torch.full((1, 1, 8, 8), float("inf")), "NaN or infinite")):
        with pytest.raises(ValueError, match=message):
            model.generate(seeds, 0, 2)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "-1", "101"])
def test_guidance_must_be_finite_and_in_range(cli, tmp_path, value):
    rc, _, err = cli("interpolate", "--seeds", "1,2", f"--guidance-scale={value}", *CHEAP, "--out", tmp_path / "o")
    one_line(rc, err, ("--guidance-scale", "[0, 100]"))
    nothing_written(tmp_path)


def test_sixteen_bit_and_float_images_match_their_eight_bit_copy(cli, tmp_path, model):
    rng = np.random.default_rng(0)
    grey16 = rng.integers(0, 65536, (8, 8)).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    Image.fromarray(np.rint(grey16 / 257).astype(np.uint8)).save(tmp_path / "grey8.png")
    Image.fromarray((grey16 / 65535).astype(np.float32)).save(tmp_path / "float.tif")
    images = model.load_images([tmp_path / "grey16.png", tmp_path / "grey8.png", tmp_path / "float.tif"])
    assert 0.2 < float(images[1].mean()) < 0.8  # not squashed to white or black
    torch.testing.assert_close(images[0], images[1], rtol=0, atol=1 / 255)
    torch.testing.assert_close(images[2], images[1], rtol=0, atol=1 / 255)
    seeds = model.invert(images, 0, 2)
    assert float((seeds[0] - seeds[1]).norm()) < 0.05 * float(seeds[1].norm())
    # float images outside [0, 1] and NaN pixels are refused, naming the file
    Image.fromarray(np.full((8, 8), 7.5, np.float32)).save(tmp_path / "hdr.tif")
    Image.fromarray(np.full((8, 8), np.nan, np.float32)).save(tmp_path / "nan.tif")
    for name, message in (("hdr.tif", "outside [0, 1]"), ("nan.tif", "NaN")):
        rc, _, err = cli("invert", tmp_path / name, "--out", tmp_path / "o")
        one_line(rc, err, (name, message))
    rc, _, err = cli("invert", tmp_path / "grey16.png", "--class", "0", "--steps", "2", "--out", tmp_path / "inv")
    assert rc == 0, err


# -- 2. inputs that used to end as "internal error" ------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_names_the_available_ones(cli, tmp_path):
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--device", "cuda", "--out", tmp_path / "o")
    one_line(rc, err, ("'cuda' is not available", "this machine has cpu"))
    nothing_written(tmp_path)
    with pytest.raises(ValueError, match="not available"):
        ss.load_model(device="cuda:3")


def test_oversized_images_are_one_line(cli, tmp_path, monkeypatch):
    from seedspace.outputs import images

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 63)  # seedspace's own limit
    rc, _, err = cli("invert", tmp_path / "big.png", "--out", tmp_path / "o")
    one_line(rc, err, ("big.png is too large", "8x8 pixels"))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10 ** 9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # Pillow's decompression-bomb guard (warning and error)
    for size in (20, 40):
        Image.fromarray(np.zeros((size, size // 4), np.uint8)).save(tmp_path / "bomb.png")
        rc, _, err = cli("invert", tmp_path / "bomb.png", "--out", tmp_path / "o")
        one_line(rc, err, "bomb.png is too large")
    nothing_written(tmp_path, "big.png", "bomb.png")


@pytest.mark.parametrize("spec, message", [
    ("1:1e308|2:1e308", "finite sum"), ("1:1e400|2:1", "finite"), ("1:0.5|{folder}:0.5", "not a folder"),
])
def test_bad_blends(cli, tmp_path, spec, message):
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    rc, _, err = cli("interpolate", "--seeds", spec.format(folder=folder) + ",3", "--out", tmp_path / "o")
    one_line(rc, err, message)
    nothing_written(tmp_path, "folder")
    with pytest.raises(ValueError, match=message):
        ss.parse_seed_spec(spec.format(folder=folder))


@pytest.mark.parametrize("file, content, message", [
    ("unet/config.json", [], "must hold a JSON object"),
    ("unet/config.json", "{not json", "cannot read"),
    ("unet/config.json", {"block_out_channels": "8,16"}, "'block_out_channels' must be a list"),
    ("scheduler/scheduler_config.json", {"num_train_timesteps": "1000"}, "must be an integer"),
    ("testbed.json", {"name": "x"}, "no 'classes'"),
    ("testbed.json", {"classes": "abc"}, "'classes' must be a list"),
])
def test_model_configs_of_the_wrong_shape(cli, tmp_path, tiny_testbed_dir, file, content, message):
    folder = shutil.copytree(tiny_testbed_dir, tmp_path / "model")
    if isinstance(content, dict):
        config = json.loads((folder / file).read_text())
        content = {**config, **content} if file != "testbed.json" else content
    (folder / file).write_text(content if isinstance(content, str) else json.dumps(content))
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--model", folder, "--out", tmp_path / "o", model=False)
    one_line(rc, err, (file, message))
    nothing_written(tmp_path, "model")
    with pytest.raises(ValueError, match=message):
        ss.load_model(folder)


def test_model_weights_that_do_not_match_the_config(cli, tmp_path, tiny_testbed_dir):
    folder = shutil.copytree(tiny_testbed_dir, tmp_path / "model")
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "block_out_channels": [16, 32]}))
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--model", folder, "--out", tmp_path / "o", model=False)
    one_line(rc, err, "weights do not match")


def finished_run(cli, tmp_path, name="run", *extra) -> Path:
    out = tmp_path / name
    rc, _, err = cli("interpolate", "--seeds", "1,2", *CHEAP, "--batch-size", "2", *extra, "--out", out)
    assert rc == 0, err
    return out


def _edit(record: dict, path: str, value) -> dict:
    """A copy of ``record`` with the key at dotted ``path`` set to ``value`` (deleted when value is ...)."""
    record = json.loads(json.dumps(record))
    *parents, last = path.split(".")
    node = record
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return record


@pytest.mark.parametrize("path, value, message", [
    ("parameters", ..., "malformed record"),
    ("parameters.steps", "4", "malformed record: steps must be an integer"),
    ("parameters.steps", 10 ** 6, "steps must be an integer in [1, 1000]"),
    ("parameters.guidance", float("nan"), "guidance must be a finite number"),
    ("parameters.batch_size", 0, "malformed record: batch_size must be"),
    ("parameters.frames", 10 ** 9, "malformed record: frames must be"),
    ("parameters.methods", "nao", "malformed record: methods must be a list"),
    ("parameters.seeds", [{"int": "1"}, {"int": 2}], "seed integer"),
    ("parameters.seeds", [{"blend": [{"int": 1}], "weights": ["x"]}, {"int": 2}], "blend weight"),
    ("parameters.model", "testbed", "malformed record: model must be an object"),
    ("parameters.condition", ..., "missing key 'condition'"),
    ("frames", [{"file": "frames/frame000000.png"}], "'frames'"),
])
def test_hand_edited_run_json_on_resume(cli, tmp_path, path, value, message):
    out = finished_run(cli, tmp_path)
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(_edit(record, path, value)))
    before = tree_bytes(out)
    rc, _, err = cli("interpolate", "--resume", out, "--quiet", model=False)
    one_line(rc, err, ("run.json", message))
    assert tree_bytes(out) == before  # nothing was touched


@pytest.mark.parametrize("content", ["[1, 2]", "", "\"text\"", "{\"command\": \"interpolate\"}"])
def test_run_json_that_is_not_a_record(cli, tmp_path, content):
    out = finished_run(cli, tmp_path)
    (out / "run.json").write_text(content)
    rc, _, err = cli("interpolate", "--resume", out, "--quiet", model=False)
    one_line(rc, err, "run.json")


@pytest.mark.parametrize("path, value, message", [
    ("frame.index", 999, "out of range"),
    ("frame.index", "1", "frame index must be an integer"),
    ("frame.index", -1, "frame index"),
    ("frame", ..., "no frame"),
    ("params.steps", ..., "missing key 'steps'"),
    ("params.guidance", "high", "malformed record: guidance must be a number"),
    ("params", [], "InterpolateSettings record must be an object"),
    ("command", "invert", "command 'invert'"),
])
def test_hand_edited_png_record_on_regenerate(cli, tmp_path, path, value, message):
    out = finished_run(cli, tmp_path)
    frame = out / "frames" / "frame000001.png"
    record = outputs.parse_parameters(outputs.read_png_parameters(frame))
    edited = tmp_path / "edited.png"
    outputs.save_png(edited, outputs.read_png_pixels(frame),
                     outputs.JSON_PREFIX + outputs.canonical_json(_edit(record, path, value)))
    rc, _, err = cli("regenerate", edited, "--quiet", model=False)
    line = one_line(rc, err, message)
    assert "edited.png" in line or path == "frame.index" and value == 999
    assert not (tmp_path / "outputs").exists()  # no empty regenerate-NNNNN folder


def test_full_disk_is_one_line_and_resume_finishes_the_run(cli, tmp_path, monkeypatch):
    full = finished_run(cli, tmp_path, "full")
    save_png, calls = outputs.save_png, []

    def disk_full_on_the_second_frame(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return save_png(path, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(outputs, "save_png", disk_full_on_the_second_frame)
        rc, _, err = cli("interpolate", "--seeds", "1,2", *CHEAP, "--batch-size", "2", "--out", tmp_path / "cut")
    one_line(rc, err, ("frame000001.png", "No space left on device"))
    cut = tmp_path / "cut"
    assert json.loads((cut / "run.json").read_text())["status"] == "failed"
    assert not list(cut.rglob("*.partial*"))
    rc, _, err = cli("interpolate", "--resume", cut, "--quiet", model=False)
    assert rc == 0, err
    assert tree_bytes(cut) == tree_bytes(full)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_output_parent(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc, _, err = cli("norms", "--seeds", "1,2", "--out", locked / "o")
    one_line(rc, err, "Permission denied")


# -- 3. numeric options: checked before any work ---------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (("interpolate", "--seeds", "1,2", "--batch-size", "0"), "--batch-size must be an integer in [1, 4096]"),
    (("interpolate", "--seeds", "1,2", "--batch-size", "-4"), "--batch-size"),
    (("interpolate", "--seeds", "1,2", "--batch-size", "1000000"), "--batch-size"),
    (("interpolate", "--seeds", "1,2", "--steps", "0"), "--steps"),
    (("interpolate", "--seeds", "1,2", "--steps", "5000"), "--steps must be an integer in [1, 1000]"),
    (("interpolate", "--seeds", "1,2", "--frames", "1"), "--frames"),
    (("interpolate", "--seeds", "1,2", "--frames", "100000000"), "--frames must be an integer in [2, 10000]"),
    (("centroid", "--seeds", "1,2", "--frames", "100000000"), "--frames"),
    (("travel", "--seeds", "1,2", "--frames", "3,100000000"), "--frames"),
    (("travel", "--seeds", "1,2", "--frames", "3,x"), "--frames"),
    (("travel", "--seeds", "1,2", "--fps", "0"), "--fps"),
    (("travel", "--seeds", "1,2", "--fps", "nan"), "--fps"),
    (("travel", "--seeds", "1,2", "--fps", "inf"), "--fps"),
    (("travel", "--seeds", "1,2", "--fps", "1e12"), "--fps must be a finite number in [0.1, 240]"),
    (("travel", "--seeds", "1,2", "--upscale", "1000"), "--upscale"),
    (("norms", "--random-seeds", "0"), "--random-seeds"),
    (("norms", "--random-seeds", "10000000000"), "--random-seeds"),
    (("norms", "--random-seeds", "2", "--seed-base", "-1"), "--seed-base"),
    (("norms", "--seeds", "1,2", "--typical", "nan"), "--typical"),
    (("seedselect", "--images", "x", "--lr", "nan"), "--lr"),
    (("seedselect", "--images", "x", "--lr", "inf"), "--lr"),
    (("seedselect", "--images", "x", "--opt-steps", "-1"), "--opt-steps"),
    (("seedselect", "--images", "x", "--seed", "-5"), "--seed"),
    (("invert", "x.png", "--batch-size", "0"), "--batch-size"),
])
def test_numeric_options_out_of_range(cli, tmp_path, monkeypatch, args, message):
    from seedspace.backends.ddim_model import DDIMModel

    monkeypatch.setattr(DDIMModel, "generate", lambda *a, **k: pytest.fail("rendered before checking options"))
    rc, _, err = cli(*args, "--out", tmp_path / "o")
    one_line(rc, err, message)
    nothing_written(tmp_path)


def test_large_jobs_need_allow_large(cli, tmp_path, monkeypatch):
    from seedspace import checks

    monkeypatch.setattr(checks, "LARGE_JOB_BYTES", 3000)
    for args in (("interpolate", "--seeds", "1,2", "--frames", "12"), ("norms", "--random-seeds", "40"),
                 ("travel", "--seeds", "1,2", "--frames", "3", "--formats", "gif")):
        rc, _, err = cli(*args, "--class", "0", "--out", tmp_path / "o")
        one_line(rc, err, ("MB", "--allow-large"))
        nothing_written(tmp_path)
    rc, _, err = cli("interpolate", "--seeds", "1,2", "--frames", "12", "--steps", "2", "--class", "0",
                     "--allow-large", "--out", tmp_path / "o")
    assert rc == 0, err


def test_api_range_checks():
    from seedspace.checks import check_guidance, check_int, check_number

    for bad in (float("nan"), float("inf"), 1e300, -0.5, True, "2"):
        with pytest.raises(ValueError, match="guidance"):
            check_guidance(bad)
    assert check_guidance(7) == 7.0
    with pytest.raises(ValueError, match="must be an integer"):
        check_int(2.0, "n")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_number(0.0, "x", 0.0, 1.0, low_open=True)


# -- 4. paths an attacker would try ----------------------------------------------------------------------
def test_symlinks_as_out(cli, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out in ("link", "dangling"):
        rc, _, err = cli("norms", "--seeds", "1,2", "--out", tmp_path / out)
        one_line(rc, err, "already exists")
    assert list(target.iterdir()) == [] and not (tmp_path / "nowhere").exists()


def test_folders_named_like_files_and_unicode_paths(cli, tmp_path, model):
    folder = tmp_path / "imágenes 雪.png"  # a folder that looks like an image
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(folder / f"bild {i}.png")
    rc, _, err = cli("centroid", "--seeds", folder, "--frames", "2", "--steps", "2", "--class", "0",
                     "--out", tmp_path / "sortie é")
    assert rc == 0, err
    run = json.loads((tmp_path / "sortie é" / "run.json").read_text(encoding="utf-8"))
    assert [Path(e["image"]).name for e in run["inputs"]] == ["bild 0.png", "bild 1.png"]
    (tmp_path / "empty.png").mkdir()
    rc, _, err = cli("invert", tmp_path / "empty.png", "--out", tmp_path / "o")
    one_line(rc, err, "holds no images")
    (tmp_path / "seeds.safetensors").mkdir()
    rc, _, err = cli("norms", "--seeds", tmp_path / "seeds.safetensors", "--out", tmp_path / "o")
    one_line(rc, err, "holds no images")
    with pytest.raises(ValueError, match="it is a folder"):
        model.load_images([tmp_path / "empty.png"])


# -- 5. runs left clean ----------------------------------------------------------------------------------
def test_resume_removes_partials_refuses_options_and_locks(cli, tmp_path):
    from filelock import FileLock

    out = finished_run(cli, tmp_path)
    before = tree_bytes(out)
    record = json.loads((out / "run.json").read_text())
    record["frames"], record["status"] = record["frames"][:2], "interrupted"
    (out / "run.json").write_text(json.dumps(record))
    (out / "frames" / "frame000002.png").unlink()
    leftover = out / "frames" / ".frame000002.abc123.partial.png"
    leftover.write_bytes(b"half a png")
    rc, _, err = cli("interpolate", "--resume", out, "--frames", "5", "--quiet", model=False)
    one_line(rc, err, ("--frames", "run.json"))
    with FileLock(str(out / ".lock")):  # another process works in the folder
        rc, _, err = cli("interpolate", "--resume", out, "--quiet", model=False)
        one_line(rc, err, "in use by another seedspace process")
    rc, _, err = cli("interpolate", "--resume", out, "--quiet", model=False)
    assert rc == 0, err
    assert not leftover.exists() and tree_bytes(out) == before


def test_failed_block_leaves_no_empty_run_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with outputs.new_run_dir("evaluate", base=tmp_path) as folder:
            raise RuntimeError("the command failed before writing")
    assert not folder.exists()
    with pytest.raises(KeyboardInterrupt):
        with outputs.new_run_dir("evaluate", base=tmp_path) as folder:
            (folder / "results.json").write_text("{}")
            raise KeyboardInterrupt
    assert (folder / "results.json").is_file()  # what was written stays


def test_seedselect_resumed_run_has_the_bytes_of_an_uninterrupted_one(cli, tmp_path, monkeypatch):
    from seedspace.methods.seedselect import loop

    refs = tmp_path / "refs"
    refs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(refs / f"r{i}.png")
    args = ("seedselect", "--images", refs, "--init", "random", "--opt-steps", "3", "--class", "1", "--steps", "2")
    rc, _, err = cli(*args, "--out", tmp_path / "full")
    assert rc == 0, err
    save_step = loop.save_step

    def interrupted_at_step_two(out_dir, step, *a, **k):
        if step == 2:
            raise KeyboardInterrupt
        return save_step(out_dir, step, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(loop, "save_step", interrupted_at_step_two)
        rc, _, err = cli(*args, "--out", tmp_path / "cut")
    one_line(rc, err, "interrupted", code=130)
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"
    rc, _, err = cli("seedselect", "--resume", tmp_path / "cut", "--quiet", model=False)
    assert rc == 0, err
    full, cut = tree_bytes(tmp_path / "full"), tree_bytes(tmp_path / "cut")
    assert sorted(full) == sorted(cut) and "steps/step_0003.safetensors" in full
    assert [name for name in full if full[name] != cut[name]] == []
    history = json.loads(full["steps/history.json"])
    keys = {k for h in history["history"] for k in h} | set(history)
    assert not {"seconds", "elapsed", "init_seconds"} & keys
    assert "seconds" not in full["run.json"].decode()
    timings = json.loads((tmp_path / "cut" / "steps" / "timings.json").read_text())
    assert [t["step"] for t in timings["steps"]] == [0, 1, 2, 3] and "seconds" in timings["steps"][-1]


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signals_during_start_up_are_one_line(capsys, monkeypatch, tmp_path, signum, code, word):
    from seedspace.cli import main as cli_main

    def signalled_while_importing(name):  # the commands' imports (torch, diffusers) are the slow start-up part
        os.kill(os.getpid(), signum)
        time.sleep(1)  # the handler runs before the sleep ends
        pytest.fail("the signal did not stop the start-up")

    monkeypatch.setattr(cli_main.importlib, "import_module", signalled_while_importing)
    monkeypatch.chdir(tmp_path)
    rc = main(["norms", "--seeds", "1,2"])
    one_line(rc, capsys.readouterr().err, word, code=code)
    assert signal.getsignal(signal.SIGTERM) is not cli_main._terminate  # the handler is put back
    nothing_written(tmp_path)


def ignoring_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_the_signal_tests_pass_when_the_suite_is_launched_with_sigint_ignored(tmp_path):
    """As ``nohup pytest &`` or a CI runner's background step launches the suite: the tests of Ctrl-C still get it."""
    test = f"{Path(__file__).relative_to(ROOT)}::test_signals_during_start_up_are_one_line"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, preexec_fn=ignoring_sigint,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_sigterm_mid_run_gives_the_bytes_of_an_uninterrupted_run(cli, tmp_path, tiny_testbed_dir):
    """Started as ``nohup`` or a background job of a script starts it (SIGINT ignored): Ctrl-C stays ignored,
    SIGTERM stops the run cleanly."""
    args = ["interpolate", "--seeds", "5,6", "--frames", "30", "--steps", "8", "--batch-size", "1", "--class", "1",
            "--model", str(tiny_testbed_dir), "--quiet"]
    cut = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "seedspace", *args, "--out", str(cut)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignoring_sigint)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if len(json.loads((cut / "run.json").read_text())["frames"]) >= 2:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None, "an ignored SIGINT stopped the run"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    one_line(proc.returncode, err, "terminated", code=143)
    run = json.loads((cut / "run.json").read_text())
    assert run["status"] == "interrupted" and 2 <= len(run["frames"]) < 30
    assert not list(cut.rglob("*.partial*"))
    rc, _, err = cli("interpolate", "--resume", cut, "--quiet", model=False)
    assert rc == 0, err
    rc, _, err = cli(*args[:-3], "--out", tmp_path / "full")
    assert rc == 0, err
    assert tree_bytes(cut) == tree_bytes(tmp_path / "full")


@pytest.mark.parametrize("args, message", [
    (("--guidance", "nan"), "--guidance"), (("--steps", "0"), "--steps"), (("--inversion-steps", "5000"), "--inversion"),
    (("--seed", "-1"), "--seed"), (("--threads", "0"), "--threads"), (("--update-results", "NO_MARKERS.md"), "markers"),
])
def test_evaluate_checks_its_options_before_any_work(cli, tmp_path, args, message):
    (tmp_path / "NO_MARKERS.md").write_text("# a readme without the results markers\n")
    rc, _, err = cli("evaluate", "--quick", "--out", tmp_path / "ev", *args)
    one_line(rc, err, message)
    nothing_written(tmp_path, "NO_MARKERS.md")


# -- the newer commands: augment's options, extreme priors, the API ---------------------------------------------------
@pytest.fixture
def aug_refs(tmp_path) -> Path:
    """Two classes of the tiny testbed with two references each, outside the working directory's listing."""
    root = tmp_path / "refs"
    rng = np.random.default_rng(0)
    for name in ("class0", "class1"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"r{i}.png")
    return root


@pytest.mark.parametrize("args, message", [
    (["--guidance-scale", "nan"], "guidance"), (["--guidance-scale", "inf"], "guidance"),
    (["--guidance-scale", "-5"], "guidance"), (["--guidance-scale", "1e9"], "guidance"),
    (["--steps", "1001"], "--steps"), (["--inversion-steps", "5000"], "--inversion-steps"),
    (["--strategy", "seedselect", "--seedselect-steps", "100000"], "--seedselect-steps"),
    (["--per-class", "100000000"], "--per-class"), (["--batch-size", "100000"], "--batch-size"),
    (["--shard-size", "5", "--batch-size", "2"], "--shard-size must be a multiple of --batch-size"),
    (["--threads", "0"], "--threads"),
    (["--prior", "scaled-chi:1e-300"], "scale"), (["--prior", "scaled-chi:1e300"], "scale"),
])
def test_augment_options_are_checked_before_any_folder(cli, tmp_path, aug_refs, args, message):
    defaults = {"--per-class": "2", "--steps": "2"}
    for flag, value in defaults.items():
        if flag not in args:
            args = args + [flag, value]
    rc, _, err = cli("augment", "--references", aug_refs, "--out", tmp_path / "aug", *args)
    one_line(rc, err, message)
    nothing_written(tmp_path, "refs")


@pytest.mark.parametrize("content", ["[1, 2]", "\"text\"", "{not json", "{\"command\": \"augment\", \"parameters\": null}",
                                     "{\"command\": \"augment\", \"parameters\": {\"settings\": 3}}"])
def test_augment_resume_of_a_run_json_that_is_not_a_record(cli, tmp_path, aug_refs, content):
    out = tmp_path / "aug"
    args = ("augment", "--references", aug_refs, "--out", out, "--per-class", "2", "--steps", "2")
    rc, _, err = cli(*args)
    assert rc == 0, err
    (out / "run.json").write_text(content)
    before = tree_bytes(out)
    rc, _, err = cli(*args, "--resume")
    one_line(rc, err, ("cannot", "run.json"))
    assert tree_bytes(out) == before


def test_augment_over_the_size_bound_needs_allow_large(cli, tmp_path, aug_refs, monkeypatch):
    from seedspace import checks

    monkeypatch.setattr(checks, "LARGE_JOB_BYTES", 1000)  # 2 classes x 10 images x 8 x 8 pixels = 1,280 bytes
    args = ("augment", "--references", aug_refs, "--per-class", "10", "--steps", "2", "--out", tmp_path / "aug")
    rc, _, err = cli(*args)
    one_line(rc, err, ("2 classes x 10 images", "--allow-large"))
    nothing_written(tmp_path, "refs")
    rc, _, err = cli(*args, "--allow-large")
    assert rc == 0, err


def test_surprises_in_reference_folders_are_refused_not_skipped(cli, tmp_path, aug_refs, tiny_testbed_dir):
    args = ("augment", "--references", aug_refs, "--per-class", "2", "--steps", "2")
    (aug_refs / "class0" / "r9.png").symlink_to(tmp_path / "gone.png")  # a dangling link is not silently left out
    rc, _, err = cli(*args, "--out", tmp_path / "a")
    one_line(rc, err, ("r9.png", "does not exist"))
    (aug_refs / "class0" / "r9.png").unlink()
    shutil.copytree(aug_refs / "class1", aug_refs / "1")  # "1" and "class1" are one class of the model
    rc, _, err = cli(*args, "--out", tmp_path / "a")
    one_line(rc, err, ("'1' and 'class1' both name class 1",))
    rc, _, err = cli(*args, "--out", tmp_path / "a", "--condition", "unconditional")  # no labels: nothing mixes
    assert rc == 0, err
    config = json.loads((tiny_testbed_dir / "testbed.json").read_text())
    twice = tmp_path / "twice"
    shutil.copytree(tiny_testbed_dir, twice)
    (twice / "testbed.json").write_text(json.dumps({**config, "classes": ["a", "A"] + config["classes"][2:]}))
    rc, _, err = cli("interpolate", "--seeds", "1,2", *CHEAP, "--model", twice, model=False)
    one_line(rc, err, "'A' appears twice")


@pytest.mark.parametrize("command", [["interpolate", "--seeds", "1,2", *CHEAP], ["cluster", "--seeds", "1,2,3", "--k", "2"]])
@pytest.mark.parametrize("scale", ["1e-300", "1e300"])
def test_extreme_prior_scales_are_one_line(cli, tmp_path, command, scale):
    rc, _, err = cli(*command, "--prior", f"scaled-chi:{scale}")
    one_line(rc, err, "scale must be in")
    nothing_written(tmp_path)


def test_cluster_refuses_fewer_distinct_seeds_than_clusters(cli, tmp_path):
    rc, _, err = cli("cluster", "--seeds", "5,5,5", "--k", "2")
    one_line(rc, err, "distinct")
    nothing_written(tmp_path)


@pytest.mark.parametrize("call, message", [
    (lambda x: ss.cluster(x, 2, max_iter=0), "max_iter"), (lambda x: ss.cluster(x, 2, seed=-1), "seed"),
    (lambda x: ss.centroid([x[0], x[0, :, :2]]), "one shape"), (lambda x: ss.centroid([[1.0, 2.0], [3.0]]), "one shape"),
    (lambda x: ss.cluster(torch.stack([x[0]] * 3), 2), "distinct"),
    (lambda x: ss.ChiPrior(16, scale=1e-300), "scale must be in"),
])
def test_api_errors_speak_of_parameters(call, message):
    x = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=message):
        call(x)


def test_a_ray_address_where_nothing_answers_is_one_line_at_once(cli, tmp_path, aug_refs):
    pytest.importorskip("ray")
    t0 = time.perf_counter()
    rc, _, err = cli("augment", "--references", aug_refs, "--out", tmp_path / "aug", "--per-class", "2", "--steps", "2",
                     "--executor", "ray", "--ray-address", "127.0.0.1:1")
    one_line(rc, err, "nothing answers at ray address 127.0.0.1:1")
    assert time.perf_counter() - t0 < 30
    nothing_written(tmp_path, "refs")


@pytest.mark.parametrize("args, message", [
    (["--lt-arms", "oversample,foo"], "unknown arm 'foo'"),
    (["--lt-arms", "paths:nao@gauss"], "unknown prior 'gauss'"),
    (["--lt-treatments", "ce,zz"], "unknown --lt-treatments 'zz'"),
    (["--lt-doses", "half"], "unknown --lt-doses 'half'"),
    (["--lt-shots", "50"], "fewer than the 50 references"),
    (["--lt-head", "100000"], "needs that many"),
])
def test_long_tail_benchmark_options_are_checked_before_any_folder(cli, tmp_path, args, message):
    rc, _, err = cli("evaluate", "--experiments", "longtail", "--quick", "--out", tmp_path / "ev", *args)
    one_line(rc, err, message)
    nothing_written(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--fs-shots", "1,two"], "--fs-shots must be comma-separated integers"),
    (["--fs-shots", "0,2"], "shots must be an integer in [1, 10000], got 0"),
    (["--fs-shots", "12"], "must be below the long-tail head count 12"),
    (["--fs-arms", "random,foo"], "unknown arm 'foo'"),
    (["--fs-replicates", "0"], "replicates must be an integer in [1, 1000], got 0"),
    (["--lt-head", "100000"], "needs that many"),  # the few-shot curve draws the long-tail profile too
])
def test_few_shot_curve_options_are_checked_before_any_folder(cli, tmp_path, args, message):
    rc, _, err = cli("evaluate", "--experiments", "fewshot", "--quick", "--out", tmp_path / "ev", *args)
    one_line(rc, err, message)
    nothing_written(tmp_path)
