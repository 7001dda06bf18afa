"""The settings of the runs that are resumed and regenerated: their record is run.json's parameters, unset
settings stay out of it (as in records made before they existed), and the record rebuilds the settings."""

from __future__ import annotations

import pytest

from seedspace.checks import RecordError
from seedspace.runs.records import check_frame_record, check_run_parameters
from seedspace.runs.run_settings import (RUN_SETTINGS, InterpolateSettings, SeedSelectRunSettings, TravelSettings,
                                         VideoSettings)

MODEL = {"id": "testbed", "seed_shape": [1, 4, 4]}
COMMON = {"model": MODEL, "condition": {"class": 0}, "steps": 4, "guidance": 2.0}


def test_unset_settings_stay_out_of_the_record_and_read_back_unset():
    settings = InterpolateSettings(**COMMON, seeds=[{"int": 1}, {"int": 2}], methods=["slerp", "nao"], frames=3)
    record = settings.to_record()
    assert not {"scheduler", "height", "width", "fit", "image_conversions", "compile", "prior"} & set(record)
    assert record["methods"] == ["slerp", "nao"] and record["dtype"] == "float32" and record["batch_size"] == 1
    assert InterpolateSettings.from_record(record) == settings
    compiled = settings.replace(compile=True, prior={"family": "scaled-chi", "d": 16, "scale": 0.9})
    assert compiled.to_record()["compile"] is True and compiled.to_record()["prior"]["scale"] == 0.9


def test_a_record_made_before_dtype_and_batch_size_were_recorded_reads_with_their_defaults():
    old = {**COMMON, "seeds": [{"int": 1}, {"int": 2}], "methods": ["nao"], "frames": 3}
    assert check_run_parameters("interpolate", old, "run.json") == {**old, "dtype": "float32", "batch_size": 1}


def test_settings_that_contradict_each_other_are_refused():
    with pytest.raises(ValueError, match=r"prior is for d=64, not for the model's seed shape \[1, 4, 4\]"):
        InterpolateSettings(**COMMON, seeds=[{"int": 1}, {"int": 2}],
                            prior={"family": "scaled-chi", "d": 64, "scale": 0.9})


def test_travel_keeps_its_frames_text_and_its_videos_as_a_nested_record():
    settings = TravelSettings(**COMMON, seeds=[{"int": 1}, {"int": 2}, {"int": 3}], frames=5,
                              video=VideoSettings(formats=["gif"], fps=8))
    record = settings.to_record()
    assert record["frames"] == "5" and record["video"] == {"formats": ["gif"], "fps": 8.0, "upscale": 0}
    assert TravelSettings.from_record(record).video == VideoSettings(formats=("gif",), fps=8.0)
    with pytest.raises(ValueError, match=r"video\.fps must be a finite number in \[0.1, 240\]"):
        TravelSettings.from_record({**record, "video": {**record["video"], "fps": 0}})
    with pytest.raises(ValueError, match="frames must be an integer in"):
        TravelSettings.from_record({**record, "frames": "3,1"})


@pytest.mark.parametrize("params, message", [
    ({**COMMON, "seeds": [{"int": 1}, {"int": 2}], "methods": ["nao"], "frames": 3, "fps": 2},
     "fps is not a setting of InterpolateSettings"),
    ({**COMMON, "methods": ["nao"], "frames": 3}, "missing key 'seeds'"),
    ({**COMMON, "seeds": [{"blend": [{"int": 1}], "weights": [0]}, {"int": 2}]}, "sum of blend weights"),
    ({**COMMON, "seeds": [{"int": 1}, {"int": 2}], "condition": {"class": True}}, "condition.class must be"),
])
def test_a_damaged_record_fails_with_one_line_naming_the_file_and_the_key(params, message):
    with pytest.raises(RecordError, match=f"run.json: malformed record: .*{message}"):
        check_run_parameters("interpolate", params, "run.json")


def test_seedselect_records_and_frame_records_of_other_commands():
    record = SeedSelectRunSettings(**COMMON, images=[{"image": "a.png"}, {"image": "b.png"}]).to_record()
    assert check_run_parameters("seedselect", record, "run.json")["opt_steps"] == 30
    with pytest.raises(RecordError, match="seedselect.*images must have at least 2 entries"):
        check_run_parameters("seedselect", {**record, "images": record["images"][:1]}, "seedselect/run.json")
    with pytest.raises(RecordError, match="cannot use a record of command 'augment'"):
        check_run_parameters("augment", record, "run.json")
    frame = {"command": "interpolate", "frame": {"index": 0},
             "params": {**COMMON, "seeds": [{"int": 1}, {"int": 2}], "frames": 3}}
    assert check_frame_record(frame, "f.png")["params"]["methods"] == ["nao"]
    assert set(RUN_SETTINGS) == {"interpolate", "centroid", "travel", "seedselect", "norms", "invert", "cluster"}
