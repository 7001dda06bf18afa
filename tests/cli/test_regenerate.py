"""``seedspace regenerate`` from the run folder alone: a frame inside its run folder takes the seeds of its image
and seed-file endpoints from the folder's seed files, so moving or deleting the images the run inverted does not
stop it from being made again byte for byte; a frame outside its folder still needs them and says so in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from seedspace.backends.ddim_model import DDIMModel
from seedspace.cli.main import main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys, tiny_testbed_dir):
    def run(*args, model=True):
        argv = [str(a) for a in args]
        if model:
            argv += ["--model", str(tiny_testbed_dir), "--quiet"]
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def grey_images(folder: Path, n: int, size: int = 8) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), mode="L").save(paths[-1])
    return paths


def regenerates(cli, frame: Path, target: Path) -> None:
    rc, _, err = cli("regenerate", frame, "--out", target, "--check", "--quiet", model=False)
    assert rc == 0, err
    assert target.read_bytes() == frame.read_bytes()


def never_inverts(monkeypatch):
    """Fail the test if any model inverts an image (the stored seeds must stand in for the images)."""
    def refuse(*a, **k):
        raise AssertionError("inverted an image although the run folder holds its seed")
    monkeypatch.setattr(DDIMModel, "invert", refuse)  # every pixel and latent backend inverts through it


def test_the_readme_boot_regenerates_after_its_image_is_deleted(tmp_path):
    """The embedded testbed and a real photo, as a user runs it: the photo is gone, the run folder suffices."""
    boot = tmp_path / "boot.png"
    shutil.copy(ROOT / "examples" / "ankle_boot_1.png", boot)
    out = tmp_path / "run"
    assert main(["interpolate", "--seeds", f"{boot},42", "--frames", "3", "--steps", "5", "--class", "Ankle boot",
                 "--out", str(out), "--quiet"]) == 0
    boot.unlink()
    assert main(["regenerate", str(out / "frames" / "frame000001.png"), "--out", str(tmp_path / "r.png"),
                 "--check", "--quiet"]) == 0
    assert (tmp_path / "r.png").read_bytes() == (out / "frames" / "frame000001.png").read_bytes()


def test_interpolate_image_and_blend_endpoints_without_their_sources(cli, tmp_path, monkeypatch):
    a, b = grey_images(tmp_path / "src", 2)
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", f"{a},{b}:0.3|7:0.7", "--frames", "3", "--class", "1", "--out", out)
    assert rc == 0, err
    shutil.rmtree(tmp_path / "src")
    never_inverts(monkeypatch)
    for j in range(3):
        regenerates(cli, out / "frames" / f"frame{j:06d}.png", tmp_path / f"r{j}.png")


def test_centroid_and_travel_without_their_images(cli, tmp_path, monkeypatch):
    grey_images(tmp_path / "src", 3)
    rc, _, err = cli("centroid", "--images", tmp_path / "src", "--frames", "2", "--class", "0", "--out", tmp_path / "c")
    assert rc == 0, err
    paths = grey_images(tmp_path / "src2", 2)
    rc, _, err = cli("travel", "--seeds", f"{paths[0]},5,{paths[1]}", "--frames", "3", "--class", "2",
                     "--out", tmp_path / "t")
    assert rc == 0, err
    shutil.rmtree(tmp_path / "src")
    shutil.rmtree(tmp_path / "src2")
    never_inverts(monkeypatch)
    regenerates(cli, tmp_path / "c" / "centroid.png", tmp_path / "c.png")
    regenerates(cli, tmp_path / "c" / "paths" / "path002" / "frame000001.png", tmp_path / "p.png")
    regenerates(cli, tmp_path / "t" / "frames" / "frame000004.png", tmp_path / "t.png")


def test_a_moved_seed_file_holding_a_batch(cli, tmp_path):
    batch = tmp_path / "batch.safetensors"
    save_file({"seeds": torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))}, str(batch))
    out = tmp_path / "run"
    rc, _, err = cli("centroid", "--seeds", f"{batch},9", "--frames", "2", "--class", "0", "--out", out)
    assert rc == 0, err
    batch.rename(tmp_path / "elsewhere.safetensors")
    regenerates(cli, out / "paths" / "path001" / "frame000000.png", tmp_path / "r.png")  # its record: index 1


def test_a_moved_run_folder_still_regenerates(cli, tmp_path):
    (img,) = grey_images(tmp_path / "src", 1)
    rc, _, err = cli("interpolate", "--seeds", f"{img},3", "--frames", "3", "--class", "1", "--out", tmp_path / "run")
    assert rc == 0, err
    img.unlink()
    (tmp_path / "run").rename(tmp_path / "archive")
    regenerates(cli, tmp_path / "archive" / "frames" / "frame000001.png", tmp_path / "r.png")


def test_a_frame_outside_its_folder_needs_the_images_and_says_so(cli, tmp_path):
    (img,) = grey_images(tmp_path / "src", 1)
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", f"{img},3", "--frames", "3", "--class", "1", "--out", out)
    assert rc == 0, err
    lone = tmp_path / "lone.png"
    shutil.copy(out / "frames" / "frame000001.png", lone)
    regenerates(cli, lone, tmp_path / "with-image.png")  # the image is still where the run read it
    img.unlink()
    rc, _, err = cli("regenerate", lone, "--out", tmp_path / "r.png", "--quiet", model=False)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err
    assert str(img) in lines[0] and "run folder" in lines[0]
    assert not (tmp_path / "r.png").exists()


def test_folders_without_stored_endpoints_read_the_sources_as_before(cli, tmp_path):
    """A seeds.safetensors without the endpoints tensor, or a run.json of other parameters: the recorded
    images are inverted again, as regenerate always did."""
    (img,) = grey_images(tmp_path / "src", 1)
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", f"{img},3", "--frames", "3", "--class", "1", "--out", out)
    assert rc == 0, err
    tensors = load_file(str(out / "seeds.safetensors"))
    save_file({"seeds": tensors["seeds"]}, str(out / "seeds.safetensors"))
    regenerates(cli, out / "frames" / "frame000002.png", tmp_path / "old.png")
    img.unlink()
    rc, _, err = cli("regenerate", out / "frames" / "frame000002.png", "--out", tmp_path / "r.png", "--quiet",
                     model=False)
    assert rc == 2 and str(img) in err and len(err.strip().splitlines()) == 1


def test_stored_seeds_that_contradict_the_record_are_refused(cli, tmp_path):
    (img,) = grey_images(tmp_path / "src", 1)
    out = tmp_path / "run"
    rc, _, err = cli("interpolate", "--seeds", f"{img},3", "--frames", "3", "--class", "1", "--out", out)
    assert rc == 0, err
    tensors = load_file(str(out / "seeds.safetensors"))
    save_file({**tensors, "endpoints": torch.zeros_like(tensors["endpoints"])}, str(out / "seeds.safetensors"))
    rc, _, err = cli("regenerate", out / "frames" / "frame000001.png", "--out", tmp_path / "r.png", "--quiet",
                     model=False)
    assert rc == 2 and "seed integer 3" in err and len(err.strip().splitlines()) == 1
    # another run's run.json beside the frame: the folder is not this frame's, the sources are read
    run = json.loads((out / "run.json").read_text())
    run["parameters"]["frames"] = 4
    (out / "run.json").write_text(json.dumps(run))
    regenerates(cli, out / "frames" / "frame000001.png", tmp_path / "r2.png")
