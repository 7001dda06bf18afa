"""The judge's view of each long-tail arm's added images: scored per replicate by the benchmark, stored with the
replicate and read back on resume; scored again from a finished run's data sets (nothing generated) with the same
numbers; scripts/rare_images.py's table."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from seedspace.cli.main import main
from seedspace.evaluation.image_scores import ARM_IMAGE_SCORES, NEAREST

spec = importlib.util.spec_from_file_location("rare_images", Path(__file__).parents[2] / "scripts" / "rare_images.py")
rare_images = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rare_images)

ARMS = ("oversample", "random", "paths:nao", "oracle")


@pytest.fixture(scope="module")
def benchmark(tiny_testbed_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("images") / "ev"
    assert main(["evaluate", "--quick", "--experiments", "longtail", "--model", str(tiny_testbed_dir), "--out",
                 str(out), "--quiet", "--lt-doses", "fill", "--lt-treatments", "ce", "--lt-arms", ",".join(ARMS)]) == 0
    return out


def section(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())["experiments"]["longtail"]


def test_the_benchmark_scores_each_arms_added_images_per_replicate(benchmark):
    sec = section(benchmark)
    items = sec["image_items"]
    assert list(items) == ["oversample", "random (class)", "paths:nao (class)", "oracle"]
    assert all(len(reps) == 2 and set(ARM_IMAGE_SCORES) <= set(reps[0]) for reps in items.values())
    # the references themselves: 0 up to the judge's batch-dependent float rounding (about 6e-7 on real runs)
    assert all(r[NEAREST] == pytest.approx(0, abs=1e-5) for r in items["oversample"])
    assert all(r[NEAREST] > 0 for arm in ("random (class)", "oracle") for r in items[arm])
    assert all(0 <= r[m] <= 1 for reps in items.values() for r in reps for m in ("acc", "precision", "recall"))
    table = next(t for t in sec["tables"] if t["name"] == "longtail-images")
    assert [r["label"]["arm"] for r in table["rows"]] == list(items)
    stored = json.loads((benchmark / "datasets" / "longtail" / "replicates" / "replicate-0001.json").read_text())
    assert stored["images"] == {arm: reps[1] for arm, reps in items.items()}


def test_a_finished_run_is_scored_again_from_its_data_sets_with_the_same_numbers(benchmark, tmp_path):
    run = tmp_path / "ev"
    shutil.copytree(benchmark, run)
    results = json.loads((run / "results.json").read_text())
    expected = results["experiments"]["longtail"].pop("image_items")  # as a run stored before the scores
    (run / "results.json").write_text(json.dumps(results))
    assert rare_images.scores_of(run, results) == expected
    assert json.loads((run / rare_images.STORED).read_text()) == expected  # kept: a rerun only reads it


def test_a_missing_data_set_is_named_and_nothing_is_generated(benchmark, tmp_path, capsys):
    run = tmp_path / "ev"
    shutil.copytree(benchmark, run)
    results = json.loads((run / "results.json").read_text())
    del results["experiments"]["longtail"]["image_items"]
    (run / "results.json").write_text(json.dumps(results))
    gone = next((run / "datasets" / "longtail" / "r1").glob("paths-nao*"))
    shutil.rmtree(gone)
    assert rare_images.main(["--runs", str(run), "--name", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the replicates scored before it
    assert err.startswith("rare_images: ") and "paths-nao" in err and "not a finished data set" in err
    assert not gone.exists() and not (run / rare_images.STORED).exists()


def test_the_page_gets_one_row_per_run_and_arm(benchmark, tmp_path, capsys):
    page = tmp_path / "results.md"
    page.write_text("before\n<!-- rare-report:imgs -->\nold\n<!-- /rare-report:imgs -->\nafter\n")
    assert rare_images.main(["--runs", str(benchmark), "--name", "imgs", "--page", str(page)]) == 0
    text = page.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and " ± " in line]
    assert len(rows) == len(ARMS) and "old" not in text and text.startswith("before") and text.endswith("after\n")
    assert "| oversample | " in rows[0] and rows[0].endswith("| 0.000 ± 0.000 |")
