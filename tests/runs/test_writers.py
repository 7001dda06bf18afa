"""runs.writers.run_frames: the library call of the frame commands writes the command line's run folder."""

from pathlib import Path

import seedspace as ss
from seedspace.cli.main import main
from seedspace.conditions import resolve_condition
from seedspace.runs.run_settings import CentroidSettings
from seedspace.runs.writers import run_frames, run_parameters


def files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "run.log"}  # run.log: the clock's times


def test_run_frames_writes_the_folder_the_command_line_writes(tiny_testbed_dir, tmp_path):
    model = ss.load_model(str(tiny_testbed_dir), dtype="float32", batch_size=4)
    _, condition = resolve_condition(model, "1")
    sampling = run_parameters(model, str(tiny_testbed_dir), condition, 3, None, "float32", 4)
    params = CentroidSettings.from_record({**sampling, "seeds": [{"int": 1}, {"int": 2}, {"int": 3}], "frames": 3})
    progress = []
    run = run_frames("centroid", params.to_record(), model, prior="scaled-chi:0.9", out=tmp_path / "library",
                     on_frames=lambda done, total: progress.append((done, total)))
    assert main(["centroid", "--model", str(tiny_testbed_dir), "--seeds", "1,2,3", "--frames", "3", "--class", "1",
                 "--steps", "3", "--batch-size", "4", "--dtype", "float32", "--prior", "scaled-chi:0.9",
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    library, cli = files(run.folder), files(tmp_path / "cli")
    assert library.keys() == cli.keys() and any(name.endswith(".safetensors") for name in library)
    assert library == cli
    total = run.plan.seeds.shape[0]
    assert progress[0] == (0, total) and progress[-1] == (total, total) and run.note is None
    assert run.record["prior"] == {"family": "scaled-chi", "d": 64, "scale": 0.9}
