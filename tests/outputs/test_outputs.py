"""Unit tests of the CLI output helpers: run folders, atomic writes, PNG parameters, seed files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from seedspace import outputs

torch.set_num_threads(1)


def test_run_folders_are_numbered_and_out_must_not_exist(tmp_path):
    base = tmp_path / "outputs"
    first = outputs.allocate_run_dir("interpolate", base=base)
    second = outputs.allocate_run_dir("interpolate", base=base)
    other = outputs.allocate_run_dir("travel", base=base)
    assert [first.name, second.name, other.name] == ["interpolate-00001", "interpolate-00002", "travel-00001"]
    with pytest.raises(FileExistsError):
        outputs.allocate_run_dir("interpolate", out=first)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "file.json"
    with pytest.raises(RuntimeError):
        with outputs.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    outputs.write_json(target, {"a": 1})
    assert list(tmp_path.iterdir()) == [target]


def test_png_parameters_round_trip_and_determinism(tmp_path):
    image = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    record = {"command": "interpolate", "frame": {"index": 3, "t": 0.5}, "params": {"steps": 4}}
    text = outputs.format_parameters(record, {"_condition": "class: shirt", "Steps": 4, "Seed": 11})
    assert text.splitlines()[:2] == ["class: shirt", "Steps: 4, Seed: 11"]
    a = outputs.save_png(tmp_path / "a.png", image, text)
    b = outputs.save_png(tmp_path / "b.png", image, text)
    assert a.read_bytes() == b.read_bytes()
    assert Image.open(a).text["parameters"] == text
    assert outputs.parse_parameters(outputs.read_png_parameters(a)) == record
    with pytest.raises(ValueError):
        outputs.parse_parameters("Steps: 4, Seed: 11")


def test_seed_files_are_safetensors_with_metadata(tmp_path):
    seeds = torch.randn(3, 1, 4, 4)
    path = outputs.save_seeds(tmp_path / "s.safetensors", {"seeds": seeds}, {"method": "nao", "frames": 3})
    assert torch.equal(outputs.load_seed_file(path), seeds)
    assert outputs.seed_file_metadata(path) == {"frames": 3, "method": "nao"}
    assert path.read_bytes() == outputs.save_seeds(tmp_path / "t.safetensors", {"seeds": seeds},
                                                   {"frames": 3, "method": "nao"}).read_bytes()
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError):
        outputs.load_seed_file(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError):
        outputs.load_seed_file(tmp_path / "missing.safetensors")


def test_grid_and_video_writers(tmp_path):
    cells = [[np.full((8, 8, 1), v, np.uint8) for v in (0, 128, 255)] for _ in range(2)]
    grid = outputs.make_grid(cells, ["lerp", "nao"], ["t=0", "t=0.5", "t=1"])
    assert grid.mode == "RGB" and grid.size[0] > 3 * 64 and grid.size[1] > 2 * 64
    frames = outputs.upscale(np.stack([c for c in cells[0]]), 4)
    assert frames.shape == (3, 32, 32, 1)
    mp4 = outputs.save_mp4(tmp_path / "v.mp4", frames, fps=4)
    gif = outputs.save_gif(tmp_path / "v.gif", frames, fps=4)
    assert mp4.read_bytes()[4:8] == b"ftyp"
    with Image.open(gif) as im:
        assert im.n_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.gif", "v.mp4"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_files_follow_the_umask(tmp_path, umask):
    """mkstemp's 0600 must not leak into finished files: they get 0666 & ~umask, like run.log."""
    from seedspace.outputs.files import atomic_path

    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("{}")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_degenerate_names_images_without_a_picture():
    picture = torch.rand(1, 8, 8)
    assert outputs.degenerate(picture) is None
    assert outputs.degenerate(torch.zeros(3, 8, 8)) == "constant (all black)"
    assert outputs.degenerate(torch.full((1, 8, 8), 1.7)) == "constant (all white)"  # clipped to white
    assert outputs.degenerate(torch.full((1, 8, 8), 0.5)) == "constant (128)"
    assert outputs.degenerate(torch.full((1, 8, 8), 0.5) + torch.rand(1, 8, 8) * 1e-4) == "constant (128)"
    with_nan = picture.clone()
    with_nan[0, 3, 3] = float("nan")
    assert outputs.degenerate(with_nan).startswith("not finite")
    assert outputs.degenerate(picture.numpy()) is None
    batch = torch.stack([picture, picture, torch.zeros(1, 8, 8), with_nan])
    assert outputs.first_degenerate(batch) == (2, "constant (all black)")
    assert outputs.first_degenerate(batch[:2]) is None


def test_ctrl_c_as_the_temporary_file_is_made_leaves_no_file(tmp_path, monkeypatch):
    """A signal that lands the moment the temporary file comes into existence (before the call that made it has
    returned) still finds the file removed by the interrupted write: no stray .partial file."""
    import signal

    from seedspace.outputs import files

    real_open = os.open

    def open_then_ctrl_c(*args, **kwargs):
        fd = real_open(*args, **kwargs)
        os.close(fd)
        os.kill(os.getpid(), signal.SIGINT)  # Python raises it at its next instruction, before the caller sees the file
        return real_open(*args[:1], os.O_WRONLY)

    monkeypatch.setattr(files.os, "open", open_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        files.write_text(tmp_path / "run.json", "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
