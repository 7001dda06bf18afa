"""`seedspace evaluate` and the testbed report, end to end on the tiny testbed (random weights).

These tests check that every experiment and method is reported with finite, in-range numbers and that reruns
are identical; they never assert which method wins (the tiny model's numbers mean nothing).
"""

import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seedspace.apps.evaluate import EvalConfig, evaluate, parse_experiments
from seedspace.apps.evaluation.config import CENTROID_METHODS, EXPERIMENTS, INTERPOLATION_METHODS
from seedspace.apps.evaluation.report import README_BEGIN, README_END, readme_section, update_marked_file
from seedspace.apps.metrics import (GaussianReference, cluster_bootstrap_ci, frechet_distance, mean_pairwise_distance,
                                    paired_bootstrap_ci)
from seedspace.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
RATES = {"acc", "conf", "p_acc", "p_conf"}  # must lie in [0, 1]


def _stats(node, path=""):
    """Yield (path, metric, stat) for every {mean, lo, hi, n} dict in a results tree."""
    if isinstance(node, dict):
        if {"mean", "lo", "hi", "n"} <= set(node):
            yield path, path.rsplit("/", 1)[-1], node
            return
        for k, v in node.items():
            yield from _stats(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _stats(v, f"{path}[{i}]")


def _check_numbers(results: dict) -> int:
    count = 0
    for path, metric, st in _stats(results["experiments"]):
        for key in ("mean", "lo", "hi"):
            assert st[key] is not None and math.isfinite(st[key]), f"{path}.{key} = {st[key]}"
        assert st["lo"] - 1e-9 <= st["hi"] + 1e-9, path
        assert st["n"] >= 1, path
        if metric in RATES:
            assert 0.0 <= st["lo"] and st["hi"] <= 1.0 and 0.0 <= st["mean"] <= 1.0, path
        if metric in ("fid", "p_fid", "fdist", "diversity", "time_ms"):
            assert st["mean"] >= 0, path
        count += 1
    return count


@pytest.fixture(scope="module")
def quick_run(tiny_testbed_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "quick"
    t0 = time.perf_counter()
    rc = cli_main(["evaluate", "--quick", "--model", str(tiny_testbed_dir), "--out", str(out), "--quiet"])
    return rc, out, time.perf_counter() - t0


def test_quick_end_to_end(quick_run):
    rc, out, seconds = quick_run
    assert rc == 0
    assert seconds < 60  # ~5 s on 1 thread; generous for a busy CI machine
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert set(results["experiments"]) == set(EXPERIMENTS)
    assert results["config"]["quick"] is True and results["config"]["seed"] == 0
    assert results["wall_time_s"] > 0 and results["environment"]["machine"]
    assert _check_numbers(results) > 100
    # every method appears in its experiment's first table and in the report
    tables = {name: sec["tables"] for name, sec in results["experiments"].items()}
    interp = [r["label"]["method"] for r in tables["interpolation"][0]["rows"]]
    assert interp == list(INTERPOLATION_METHODS)
    assert any(r["label"]["method"] == "reference" for t in tables["interpolation"] for r in t.get("rows", [])
               if "method" in r["label"])
    centroid_methods = {r["label"]["method"] for r in tables["centroid"][0]["rows"]}
    assert centroid_methods == set(CENTROID_METHODS)
    assert any(r["label"]["method"] == "reference" for r in tables["centroid"][-1]["rows"])
    rare = {r["label"]["method"] for r in tables["rare"][0]["rows"]}
    assert {"random", *CENTROID_METHODS} <= rare
    norm_rows = tables["norm"][0]["rows"]
    assert {r["label"]["group"] for r in norm_rows} == {"head", "tail"}
    assert sorted({r["label"]["scale"] for r in norm_rows}) == [0.5, 1.0, 1.5]
    paired = tables["paired"][0]["rows"]
    comparisons = {r["label"]["comparison"] for r in paired}
    assert {"nao − slerp", "nao − cog"} <= comparisons
    for title in ("## Norm bias", "## Interpolation", "## Centroids", "## Rare concepts", "## Paired tests"):
        assert title in report
    for method in ("lerp", "slerp", "cog", "nao", "reference", "euclidean", "normalized", "spherical", "random"):
        assert f"| {method} |" in report
    assert "nan" not in report.lower().replace("nan-", "")
    for png in ("norm_bias.png", "norm_examples.png", "interpolation_examples.png", "centroid_examples.png",
                "rare_examples.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporaries


def test_rerun_gives_the_same_numbers(tiny_testbed_dir, tmp_path):
    import seedspace as ss

    model = ss.load_model(str(tiny_testbed_dir))
    cfg = EvalConfig.quick_preset(experiments=("norm", "centroid", "paired"), seed=3)

    def numbers(res):
        return [(p, st["mean"], st["lo"], st["hi"], st["n"]) for p, m, st in _stats(res["experiments"])
                if m != "time_ms"]

    a, b = evaluate(model, cfg), evaluate(model, cfg)
    assert numbers(a) == numbers(b)
    c = evaluate(model, EvalConfig.quick_preset(experiments=("norm",), seed=4))
    assert numbers(c) != numbers(a)[: len(numbers(c))]


def test_experiment_selection_and_errors(tiny_testbed_dir, tmp_path):
    assert parse_experiments("all") == EXPERIMENTS
    assert parse_experiments("paired,norm") == ("norm", "paired")
    with pytest.raises(ValueError, match="unknown experiment"):
        parse_experiments("norm,banana")
    assert cli_main(["evaluate", "--experiments", "banana", "--model", str(tiny_testbed_dir),
                     "--out", str(tmp_path / "x")]) == 2
    existing = tmp_path / "exists"
    existing.mkdir()
    assert cli_main(["evaluate", "--quick", "--model", str(tiny_testbed_dir), "--out", str(existing)]) == 2
    # a single experiment runs alone; paired alone brings in what it compares
    import seedspace as ss

    model = ss.load_model(str(tiny_testbed_dir))
    res = evaluate(model, EvalConfig.quick_preset(experiments=("paired",)))
    assert set(res["experiments"]) == {"interpolation", "centroid", "paired"}


def test_readme_section(quick_run, tmp_path):
    _, out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Results\n{README_BEGIN}\nold\n{README_END}\n\nrest\n")
    assert update_marked_file(readme, readme_section(results, link="outputs/x/report.md"))
    text = readme.read_text()
    assert "old" not in text and "rest" in text and "#### Interpolation" in text and "wall time" in text
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not update_marked_file(plain, "body") and plain.read_text() == "no markers\n"


def test_metric_helpers():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) + 0.5
    ref = GaussianReference(b)
    assert ref.distance(a) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    assert ref.distance(a[:5]) == pytest.approx(frechet_distance(a[:5], b), rel=1e-6)  # N < D: the N x N form
    assert math.isfinite(ref.distance(a[:1]))
    mean, lo, hi = paired_bootstrap_ci([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.5], seed=1)
    assert mean == pytest.approx(0.875) and lo <= mean <= hi
    assert paired_bootstrap_ci([1.0, 2.0], [1.0, 2.0]) == (0.0, 0.0, 0.0)
    point, lo, hi = cluster_bootstrap_ci([np.ones(3), np.zeros(2), np.ones(1)], lambda g: float(np.concatenate(g).mean()))
    assert point == pytest.approx(4 / 6) and 0 <= lo <= point <= hi <= 1
    with pytest.raises(ValueError, match="basic"):
        cluster_bootstrap_ci([np.ones(2), np.zeros(2)], lambda g: 0.0, method="bca")
    x = rng.normal(size=(6, 3))
    brute = np.mean([np.linalg.norm(x[i] - x[j]) for i in range(6) for j in range(i + 1, 6)])
    assert mean_pairwise_distance(x) == pytest.approx(brute)


def test_basic_interval_corrects_the_upward_bias_of_resampled_frechet_distances():
    # 40 images in 8 dimensions from the reference distribution: the estimate is biased upwards, and resampling
    # duplicates images, which inflates every replicate further: the percentile interval lies above the estimate
    # and misses the population value; the basic interval reflects the shift and covers it.
    rng = np.random.default_rng(3)
    ref = GaussianReference(rng.normal(size=(2000, 8)))
    population = ref.distance(rng.normal(size=(200_000, 8)))
    groups = list(rng.normal(size=(40, 1, 8)))
    stat = lambda gs: ref.distance(np.concatenate(gs))  # noqa: E731
    point, p_lo, p_hi = cluster_bootstrap_ci(groups, stat, n_boot=300, seed=0)
    same, b_lo, b_hi = cluster_bootstrap_ci(groups, stat, n_boot=300, seed=0, method="basic")
    assert same == point and population < point < p_lo
    assert b_lo == pytest.approx(2 * point - p_hi) and b_hi == pytest.approx(2 * point - p_lo)
    assert b_lo <= population <= b_hi


def test_report_testbed_quick(tiny_testbed_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("report_testbed", ROOT / "scripts" / "report_testbed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = tmp_path / "MODEL_CARD.md"
    readme.write_text(f"card\n{module.BEGIN}\nold\n{module.END}\n")
    threads = torch.get_num_threads()
    assert module.main(["--quick", "--model", str(tiny_testbed_dir), "--out", str(tmp_path / "tb"),
                        "--update", str(readme)]) == 0
    assert torch.get_num_threads() == threads
    rep = json.loads((tmp_path / "tb" / "report.json").read_text())
    md = (tmp_path / "tb" / "report.md").read_text()
    assert {"samples", "inversion", "norm", "speed"} <= set(rep)
    assert len(rep["samples"]["table"]["rows"]) == 3
    assert 0 <= rep["samples"]["head_accuracy"] <= 1
    assert all(math.isfinite(r["psnr"]["mean"]) for r in rep["inversion"]["rows"])
    assert [r["dtype"] for r in rep["inversion"]["rows"]] == ["float32", "bfloat16"]
    assert rep["speed"]["generate_s"] > 0 and rep["speed"]["invert_s"] > 0
    bf16 = rep["speed"]["bf16"]  # bf16 sampling of the same seeds: close to fp32, not bit-identical
    assert bf16["generate_s"] > 0 and 0 < bf16["max_pixel_diff"] < 0.5 and 0 <= bf16["judge_agreement"] <= 1
    assert _check_numbers({"experiments": {"norm": rep["norm"], "samples": rep["samples"]}}) > 10
    for section in ("## Samples from random seeds", "## DDIM inversion", "## Norm sweep", "## Speed"):
        assert section in md
    assert (tmp_path / "tb" / "norm_sweep.png").stat().st_size > 1000
    assert "old" not in readme.read_text() and "Norm sweep" in readme.read_text()
