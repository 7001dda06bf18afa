"""scripts/rare_report.py on tiny fake results: the gain over oversampling per arm and exposure, the picture, the
page's table (replaced on a rerun) and its refusals."""

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

spec = importlib.util.spec_from_file_location("rare_report", Path(__file__).parents[2] / "scripts" / "rare_report.py")
rare_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rare_report)


def fake_run(folder: Path, few: dict, shots: int | None = None) -> Path:
    """A results.json with per-replicate lt_few of each arm (fill, ce) and a round-trip table."""
    items = {"real / none / ce": [{"key": [0], "lt_few": 0.1}]}
    for arm, values in few.items():
        items[f"{arm} / fill / ce"] = [{"key": [r], "lt_few": v} for r, v in enumerate(values)]
        items[f"{arm} / tail / ce"] = [{"key": [r], "lt_few": 9.0} for r, _ in enumerate(values)]  # ignored
    table = {"name": "longtail-roundtrip", "rows": [{"label": {"condition": "class"},
                                                     "metrics": {"psnr": {"mean": 31.25}}}]}
    folder.mkdir(parents=True)
    config = {} if shots is None else {"longtail": {"shots": shots}}
    (folder / "results.json").write_text(json.dumps({"model": {"folder": str(folder / "none")}, "config": config,
                                                     "experiments": {"longtail": {"items": items, "tables": [table], "timing": {
                                                         "synthesis_s": 10.5, "classifiers_s": 20.0, "plateau_s": 1.0}}}}))
    return folder


def test_gains_picture_and_page(tmp_path, capsys):
    e0 = fake_run(tmp_path / "bench-digits-tail-e0-k5", {"oversample": [0.5, 0.6, 0.7], "random (class)": [0.5, 0.6, 0.7],
                                                         "seedselect:nao (unconditional)": [0.6, 0.8, 0.8]})
    e20 = fake_run(tmp_path / "bench-digits-tail-e20-k5", {"oversample": [0.5, 0.5, 0.5],
                                                           "random (class)": [0.7, 0.8, 0.9]})
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("# Results\n")
    out = tmp_path / "reports" / "digits.png"
    assert rare_report.main(["--runs", str(e20), str(e0), "--out", str(out), "--page", str(page)]) == 0
    assert Image.open(out).format == "PNG"
    text = page.read_text()
    assert text.startswith("# Results\n") and "](../reports/digits.png)" in text
    lines = [l for l in text.splitlines() if l.startswith("| ")]
    assert lines[0] == "| arm | exposure 0 | exposure 20 |"  # sorted by exposure, from the folder names
    assert lines[1].startswith("| random (class) | +0.000 [+0.000, +0.000] (n 3) | +0.300 [")
    low, high = (float(v) for v in lines[1].split("| +0.300 [")[1].split("]")[0].split(", "))
    assert low < 0.3 < high  # a t interval over the 3 replicates' differences (0.2, 0.3, 0.4)
    assert lines[2].startswith("| seedselect:nao (unconditional) | +0.133 [") and lines[2].endswith("| not run |")
    assert lines[3] == "| references' round trip | class 31.2 dB | class 31.2 dB |"
    assert lines[4].endswith("| 32 s | 32 s |")  # the stored times of its replicates, whatever the attempts
    rare_report.main(["--runs", str(e0), str(e20), "--out", str(out), "--page", str(page)])  # a rerun replaces
    assert page.read_text() == text and capsys.readouterr().out.count("| arm |") == 2


@pytest.mark.parametrize("requested, label", [("full", "full (66/70)"), ("1=full,4=full", "full (66/70)"),
                                               ("20", "20"), ("1=20,4=full", "20/66")])
def test_the_exposure_label_comes_from_the_generators_testbed_json(tmp_path, requested, label):
    model = tmp_path / "generator"
    model.mkdir()
    seen = {"1": 66, "4": 70} if label.startswith("full") else {"1": 20, "4": 20 if requested == "20" else 66}
    (model / "testbed.json").write_text(json.dumps({"exposure": {"requested": requested, "seen": seen}}))
    key, text = rare_report.run_exposure(tmp_path / "bench-e5", {"model": {"folder": str(model)}})
    assert text == label and key == min(seen.values())


def test_shots_axis_orders_runs_by_their_recorded_k(tmp_path, capsys):
    arms = {"oversample": [0.5, 0.5], "random (class)": [0.6, 0.8], "seedselect:nao": [0.5, 0.6]}
    more = {**arms, "centroid:nao": [0.5, 0.5]}
    more = {k: more[k] for k in ("oversample", "random (class)", "centroid:nao", "seedselect:nao")}
    runs = [str(fake_run(tmp_path / "bench-e0-k10", more, shots=10)),
            str(fake_run(tmp_path / "bench-e0-k2", arms, shots=2))]
    out = tmp_path / "shots.png"
    assert rare_report.main(["--axis", "shots", "--runs", *runs, "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0] == "| arm | k = 2 | k = 10 |"  # numerically, not as text
    # the arm k = 2 lacks keeps its place from the other run, its cell "not run"
    assert [line.split(" | ")[0] for line in lines[1:4]] == ["| random (class)", "| centroid:nao", "| seedselect:nao"]
    assert lines[2].split(" | ")[1] == "not run"
    same = str(fake_run(tmp_path / "bench-e5-k2", arms, shots=2))
    with pytest.raises(SystemExit):
        rare_report.main(["--axis", "shots", "--runs", runs[1], same, "--out", str(out)])
    assert "two runs have the same shots" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a run without recorded k is refused, not guessed
        rare_report.main(["--axis", "shots", "--runs", str(fake_run(tmp_path / "old", arms)), "--out", str(out)])
    assert "record no shots" in capsys.readouterr().err


def test_refusals_are_one_line_exit_2(tmp_path, capsys):
    run = fake_run(tmp_path / "b-e5", {"random (class)": [0.5]})
    for argv, message in ((["--runs", str(run), "--out", str(tmp_path / "x.png")], "needs the oversample arm"),
                          (["--runs", str(tmp_path), "--out", str(tmp_path / "x.png")], "is not the results.json"),
                          (["--runs", str(run), "--out", str(tmp_path / "x.svg")], "--out must name a .png")):
        with pytest.raises(SystemExit) as exit_:
            rare_report.main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x.png").exists()
