"""The run-folder home (seedspace.runs): opening, locking, finishing, resuming and reading back a run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from seedspace.cli.main import main
from seedspace.runs import RunRecord, open_run, read_run
from seedspace.runs.records import RecordError

PARAMS = {"model": {"id": "m"}, "steps": 2}


def status(folder) -> str:
    return json.loads((folder / "run.json").read_text())["status"]


def test_a_new_run_holds_its_folder_until_it_finishes(tmp_path):
    folder, record = open_run("demo", PARAMS, base=tmp_path)
    assert folder == tmp_path / "demo-00001" and status(folder) == "running"
    with pytest.raises(ValueError, match="in use by another seedspace process"):
        RunRecord.resume(folder)
    record.finish("completed")
    assert status(folder) == "completed"
    data = json.loads((folder / "run.json").read_text())
    assert data["parameters"] == PARAMS and data["model"] == {"id": "m"}
    assert "started" in (folder / "run.log").read_text()  # wall-clock times go to run.log, never run.json
    assert open_run("demo", PARAMS, base=tmp_path)[0] == tmp_path / "demo-00002"


@pytest.mark.parametrize("error, expected", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_guard_marks_how_a_run_ended(tmp_path, error, expected):
    folder, record = open_run("demo", PARAMS, tmp_path / "run")
    with pytest.raises(error), record.guard():
        record.add_frames([{"index": 0, "file": "a.png"}])
        raise error("stop")
    assert status(folder) == expected
    assert ("error" in json.loads((folder / "run.json").read_text())) == (expected == "failed")


def test_resume_drops_partial_files_and_keeps_finished_frames(tmp_path):
    folder, record = open_run("demo", PARAMS, tmp_path / "run")
    (folder / "a.png").write_bytes(b"png")
    record.add_frames([{"index": 0, "file": "a.png"}, {"index": 1, "file": "b.png"}])  # b.png never written
    record.finish("interrupted")
    (folder / "c.partial.png").write_bytes(b"half")
    resumed = RunRecord.resume(folder)
    assert status(folder) == "running" and resumed.finished_frames() == {0}
    assert not (folder / "c.partial.png").exists()
    resumed.finish("completed")


def test_resume_refuses_changed_seeds(tmp_path):
    folder, record = open_run("demo", PARAMS, tmp_path / "run")
    save_file({"seeds": torch.zeros(2, 3)}, str(folder / "seeds.safetensors"))
    record.finish("interrupted")
    with pytest.raises(ValueError, match="its inputs changed"):
        open_run("demo", PARAMS, resume=folder, seed_files={"seeds.safetensors": {"seeds": torch.ones(2, 3)}})
    again, record = open_run("demo", PARAMS, resume=folder, seed_files={"seeds.safetensors": {"seeds": torch.zeros(2, 3)}})
    assert again == folder and status(folder) == "running"
    record.finish("completed")


def test_read_run_checks_the_command_and_the_record(tmp_path, tiny_testbed_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["interpolate", "--seeds", "1,2", "--frames", "3", "--steps", "2", "--class", "0", "--model",
                 str(tiny_testbed_dir), "--out", "run", "--quiet"]) == 0
    run = tmp_path / "run"
    assert read_run(run, "interpolate") == json.loads((run / "run.json").read_text())["parameters"]
    with pytest.raises(ValueError, match="is a `interpolate` run, not a `travel` run"):
        read_run(run, "travel")
    with pytest.raises(ValueError, match="no run.json"):
        read_run(tmp_path, "interpolate")
    data = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**data, "frames": [{"index": "0"}]}))
    with pytest.raises(RecordError, match="'frames' must list"):
        read_run(run, "interpolate")
    (run / "run.json").write_text(json.dumps({**data, "parameters": {**data["parameters"], "steps": -1}}))
    with pytest.raises(RecordError, match=r"malformed record: steps must be an integer in \[1, 1000\]"):
        read_run(run, "interpolate")
