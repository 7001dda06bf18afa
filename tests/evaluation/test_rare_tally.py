"""scripts/rare_tally.py: declared contrasts of several runs counted by baseline and verdict, the page block, and
the refusal of runs without declared contrasts."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("rare_tally", Path(__file__).parents[2] / "scripts" / "rare_tally.py")
rare_tally = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rare_tally)


def fake_run(folder: Path, contrasts: list[tuple[str, str]]) -> Path:
    """A results.json with an oversample cell and the declared contrasts (text, verdict) of a long-tail run."""
    items = {"oversample / fill / ce": [{"key": [0], "lt_few": 0.5}, {"key": [1], "lt_few": 0.6}]}
    rows = [{"label": {"contrast": text, "p (sign-flip)": "0.01", "p (Holm)": "0.03"}, "verdict": verdict,
             "metrics": {"diff_t": {"mean": 0.1, "lo": 0.0, "hi": 0.2, "n": 2}}} for text, verdict in contrasts]
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"model": {}, "config": {}, "experiments": {"longtail": {
        "items": items, "tables": [{"name": "longtail-contrasts", "rows": rows}]}}}))
    return folder


def test_contrasts_are_counted_by_baseline_and_verdict(tmp_path, capsys):
    nao = "paths:nao (unconditional)"
    a = fake_run(tmp_path / "bench-e0", [(f"{nao} ce − oversample ce @ few, fill", "no clear difference"),
                                         (f"{nao} ce − random (class) ce @ few, fill", f"{nao} higher (Holm p 0.03)"),
                                         (f"{nao} ce − real la @ few, fill", "real la higher (Holm p 0.03)")])
    b = fake_run(tmp_path / "bench-e0-again", [(f"{nao} ce − oversample ce @ few, fill",
                                                "oversample higher (Holm p 0.03)")])
    page = tmp_path / "results.md"
    page.write_text("# Results\n")
    assert rare_tally.main(["--runs", str(a), str(b), "--page", str(page)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| oversample | 2 | 2 | 0 | 1 | 1 |", "| random (class) | 1 | 1 | 1 | 0 | 0 |",
                        "| real la | 1 | 1 | 0 | 0 | 1 |"]
    text = page.read_text()
    assert "<!-- rare-report:rare-tally -->" in text and "| oversample | 2 | 2 | 0 | 1 | 1 |" in text


def test_runs_without_declared_contrasts_are_one_line_exit_2(tmp_path, capsys):
    run = fake_run(tmp_path / "bench-e0", [])
    assert rare_tally.main(["--runs", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "rare_tally: none of the runs declared contrasts"


def test_a_missing_run_is_refused_in_the_scripts_own_name(tmp_path):
    script = Path(__file__).parents[2] / "scripts" / "rare_tally.py"
    done = subprocess.run([sys.executable, str(script), "--runs", str(tmp_path / "missing")], capture_output=True,
                          text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("rare_tally: --runs: ") and done.stderr.count("\n") == 1
