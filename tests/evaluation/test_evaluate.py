"""`seedspace evaluate` and the testbed report, end to end on the tiny testbed (random weights).

These tests check that every experiment and method is reported with finite, in-range numbers and that reruns
are identical; they never assert which method wins (the tiny model's numbers mean nothing).
"""

import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from seedspace.evaluation import (CentroidEvalSettings, EvalConfig, PriorsEvalSettings, SchedulersEvalSettings, evaluate,
                                  parse_experiments)
from seedspace.evaluation import longtail
from seedspace.evaluation.config import CENTROID_METHODS, CLAIM_EXPERIMENTS, INTERPOLATION_METHODS
from seedspace.evaluation.report import RESULTS_BEGIN, RESULTS_END, results_section, update_marked_file
from seedspace.backends.loading import load_model
from seedspace.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
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
    rc = cli_main(["evaluate", "--quick", "--model", str(tiny_testbed_dir), "--out", str(out), "--quiet"])
    return rc, out


def test_quick_end_to_end(quick_run):
    rc, out = quick_run
    assert rc == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["finished"] == record["parameters"]["experiments"]
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert set(results["experiments"]) == set(CLAIM_EXPERIMENTS)
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
    for name, sec in tables.items():  # KID beside every FID-style column, in the tables and the paired tests
        for table in sec:
            for fid in {"fid", "p_fid"} & set(table["metrics"]):
                assert fid.replace("fid", "kid") in table["metrics"], (name, table["name"])
    assert {r["label"]["metric"] for r in paired} >= {"fid", "kid"}
    assert "| KID ↓ |" in report and "re-centred" in report
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


def test_retabulate_makes_the_same_tables_from_the_stored_measurements_without_generating(quick_run, tmp_path,
                                                                                          monkeypatch, capsys):
    rc, run = quick_run
    assert rc == 0 and sorted(p.name for p in (run / "measurements").iterdir()) == [
        "centroid.safetensors", "interpolation.safetensors", "norm.safetensors", "rare.safetensors"]
    import seedspace.evaluation.runner as runner_module

    def no_model(*args, **kwargs):
        raise AssertionError("re-tabulating called the model")

    monkeypatch.setattr(runner_module.Runner, "generate", no_model)
    monkeypatch.setattr(runner_module.Runner, "inversions", no_model)
    again = tmp_path / "again"
    assert cli_main(["evaluate", "--retabulate", str(run), "--out", str(again), "--quiet"]) == 0
    first, second = (json.loads((f / "results.json").read_text()) for f in (run, again))
    assert second["config"] == first["config"] and list(second["experiments"]) == list(first["experiments"])
    for name, sec in first["experiments"].items():
        assert second["experiments"][name]["tables"] == sec["tables"], name
        assert second["experiments"][name]["items"] == sec["items"] and second["experiments"][name]["images"] == 0
    assert json.loads((again / "run.json").read_text())["measured_in"] == str(run)
    assert (again / "norm_bias.png").is_file() and (again / "rare_examples.png").is_file()
    capsys.readouterr()
    # refused in one line before anything is written: other settings, an unfinished run, missing measurements
    (tmp_path / "partial").mkdir()
    shutil.copytree(run, tmp_path / "partial" / "run")
    (tmp_path / "partial" / "run" / "measurements" / "rare.safetensors").unlink()
    cases = [(["--retabulate", str(run), "--seed", "2"], "do not give --seed"),
             (["--retabulate", str(tmp_path / "partial" / "run")], "has no stored measurements of rare")]
    for n, (args, message) in enumerate(cases):
        out = tmp_path / f"refused{n}"
        assert cli_main(["evaluate", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not out.exists()


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
    assert parse_experiments("all") == CLAIM_EXPERIMENTS
    assert parse_experiments("benchmark") == ("longtail", "fewshot")
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


def test_results_section(quick_run, tmp_path):
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Results\n{RESULTS_BEGIN}\nold\n{RESULTS_END}\n\nrest\n")
    assert update_marked_file(readme, results_section(results, link="outputs/x/report.md"))
    text = readme.read_text()
    assert "old" not in text and "rest" in text and "#### Interpolation" in text and "wall time" in text
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not update_marked_file(plain, "body") and plain.read_text() == "no markers\n"


def test_embedded_testbed_scores_against_the_shipped_fashion_mnist_references():
    import seedspace as ss

    from seedspace.scoring.judge import load_references
    from seedspace.testbed.data import shipped_split

    refs = load_references(ss.load_model("testbed"), "auto", per_class=20, seed=0)
    assert "Fashion-MNIST" in refs.source and refs.per_class == 20 and sorted(refs.images) == list(range(10))
    images, labels = shipped_split("test-references")
    for c, got in refs.images.items():  # real test images of the class, back in uint8 after the 2-pixel padding
        rows = {bytes(x) for x in images[labels == c].reshape(-1, 784).numpy()}
        as_uint8 = (got[:, 0, 2:30, 2:30] * 255).round().to(torch.uint8).reshape(-1, 784).numpy()
        assert all(bytes(x) in rows for x in as_uint8)


def test_report_testbed_quick(tiny_testbed_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("report_testbed", ROOT / "scripts" / "report_testbed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = tmp_path / "MODEL_CARD.md"
    readme.write_text(f"card\n<!-- BEGIN {module.MARKER} -->\nold\n<!-- END {module.MARKER} -->\n")
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
    for section in ("## Samples from random seeds", "## Inversion (DDIM inversion)", "## Norm sweep", "## Speed"):
        assert section in md
    assert "old" not in readme.read_text() and "### Testbed acceptance report" in readme.read_text()
    assert (tmp_path / "tb" / "norm_sweep.png").stat().st_size > 1000
    assert "old" not in readme.read_text() and "Norm sweep" in readme.read_text()


def test_longtail_and_fewshot_benchmark_quick(tiny_testbed_dir, tmp_path):
    """The downstream benchmark end to end on the tiny model: per replicate a long-tailed draw with the profile's
    counts, every (data, dose, treatment) cell with one accuracy per replicate, the count-matched control, the
    primary comparison; and the few-shot curve scores each cell."""
    model = load_model(tiny_testbed_dir)
    config = EvalConfig.quick_preset(experiments=("longtail", "fewshot"))
    lt_cfg = config.longtail
    results = evaluate(model, config, out=tmp_path / "ev")
    lt = results["experiments"]["longtail"]
    again = evaluate(model, config, measured_in=tmp_path / "ev")["experiments"]  # from the stored measurements
    for name in ("longtail", "fewshot"):
        assert again[name]["tables"] == results["experiments"][name]["tables"] and again[name]["images"] == 0
    tables = {t["name"]: t for t in lt["tables"]}
    cells = {tuple(r["label"].values()): r for r in tables["longtail"]["rows"]}
    data = {"oversample", "random (class)", "paths:nao (class)", "oracle"}
    expected = {("real", "none", t) for t in lt_cfg.treatments} | {(longtail.CEILING, "none", "ce")}
    expected |= {(d, dose, t) for d in data for dose in lt_cfg.doses for t in lt_cfg.treatments
                 if (dose, t) != ("fill", "cb")}  # the fill dose is balanced: cb = plain resampling
    assert set(cells) == expected
    for r in cells.values():
        assert r["n_items"] == lt_cfg.replicates
        assert all(0.0 <= r["metrics"][m]["mean"] <= 1.0 for m in ("lt_all", "lt_many", "lt_medium", "lt_few"))
    # the post-hoc adjusted cell is the CE model's, so only the prediction rule differs; items are per replicate
    assert len(lt["items"]["real / none / ce"]) == lt_cfg.replicates
    comparisons = {r["label"]["comparison"] for r in tables["longtail-paired"]["rows"]}
    assert "paths:nao (class) fill bs − oversample fill bs" in comparisons and "oracle tail ce − real ce" in comparisons
    # no double correction: la and bs take the prior of the set trained on, uniform on the filled (balanced) set
    for d in data:
        assert lt["items"][f"{d} / fill / la"] == lt["items"][f"{d} / fill / ce"]
    # the declared contrasts (the default rule: each synthetic arm - oversample, few-shot, ce), Holm-adjusted
    contrasts = tables["longtail-contrasts"]["rows"]
    assert [r["declared"] for r in contrasts] == ["random/class - oversample @ few, ce",
                                                  "paths:nao/class - oversample @ few, ce"]
    assert all(float(r["label"]["p (Holm)"]) >= float(r["label"]["p (sign-flip)"]) for r in contrasts)
    assert "Declared contrasts (before any result" in lt["description"]
    # the plateau check covers every data family, filled arms included, and says whether each reached it
    verdicts = {(r["label"]["data"], r["label"]["treatment"]): r["verdict"] for r in tables["longtail-plateau-verdict"]["rows"]}
    assert set(verdicts) == {("real", "ce"), ("real", "cb"), (longtail.CEILING, "ce")} | {(d, "ce") for d in data}
    assert all(v == "reached" or v.startswith("not reached") for v in verdicts.values())
    # each synthetic arm wrote one augment data set per class it fills: head - n_c images of each
    counts = lt_cfg.counts(len(model.class_names))
    pngs = list((tmp_path / "ev" / "datasets" / "longtail" / "r0" / "paths-nao(class)").rglob("*.png"))
    assert len(pngs) == sum(lt_cfg.head - n for n in counts)

    fs = results["experiments"]["fewshot"]
    fs_cfg = config.fewshot
    rows = {(r["label"]["k"], r["label"]["arm"]): r for r in fs["tables"][0]["rows"]}
    arms = ("real",) + fs_cfg.arms
    assert set(rows) == {(k, a) for k in fs_cfg.shots for a in arms} - {(1, "paths:nao")}  # a path needs two ends
    assert "paths:nao at k = 1" in " ".join(fs["notes"])
    for (k, arm), r in rows.items():
        assert r["n_items"] == fs_cfg.replicates
        assert all(0.0 <= r["metrics"][m]["mean"] <= 1.0 for m in ("fs_ce", "fs_la", "fs_all"))
        # image scores for the images an arm adds; random's images are the same at every k: scored once
        scored = arm != "real" and (arm != "random" or k == min(fs_cfg.shots))
        assert ("kid" in r["metrics"]) == scored and ("precision" in r["metrics"]) == scored
    few = len(model.tail_classes)
    root = tmp_path / "ev" / "datasets" / "fewshot"
    assert len(list((root / "k2" / "r0" / "paths-nao(class)").rglob("*.png"))) == few * (lt_cfg.head - 2)
    assert len(list((root / "r0" / "random(class)").rglob("*.png"))) == few * (lt_cfg.head - 1)  # made once
    assert not (root / "k2" / "r0" / "random(class)").exists()
    assert "Long-tail benchmark" in (tmp_path / "ev" / "report.md").read_text()


def test_scheduler_study_quick(tiny_testbed_dir, tmp_path):
    """The sampler study on the tiny model: every sampler has a row per method, Heun runs at equal steps and at equal
    NFE (2 s - 1 <= B), the NFE column is what the sampler really evaluates, paired tables within each run and
    against DDIM, and the README gets its own block (the evaluation's block is left alone)."""
    from seedspace.evaluation import update_results_page
    from seedspace.evaluation.config import SCHEDULER_SAMPLERS
    from seedspace.evaluation.report import OWN_SECTIONS, results_targets
    from seedspace.evaluation.schedulers import sampler_runs
    from seedspace.backends.sampling import SAMPLER_LABELS

    assert parse_experiments("schedulers") == ("schedulers",) and "schedulers" not in parse_experiments("all")
    model = load_model(tiny_testbed_dir)
    config = EvalConfig.quick_preset(experiments=("schedulers",), schedulers=SchedulersEvalSettings.quick(k=2, budgets=(5,)),
                                     n_boot=200, fid_boot=20)
    runs = sampler_runs(model, config.schedulers.samplers, config.schedulers.budgets)
    assert [(r["sampler"], r["steps"], r["nfe"]) for r in runs] == [
        ("ddim", 5, 5), ("dpmpp-2m", 5, 5), ("euler", 5, 5), ("heun", 5, 9), ("heun", 3, 5), ("unipc", 5, 5)]
    assert [(r["steps"], r["nfe"]) for r in sampler_runs(model, ["heun"], [25])] == [(25, 49), (13, 25)]
    assert [(r["steps"], r["nfe"]) for r in sampler_runs(model, ["heun"], [10])] == [(10, 19), (5, 9)]
    with pytest.raises(ValueError, match="does not fit"):
        sampler_runs(model, ["flow-euler"], [5])
    with pytest.raises(ValueError, match="budgets"):
        sampler_runs(model, ["ddim"], [0])

    calls = []
    generate = model.generate
    model.generate = lambda seeds, **kw: calls.append((kw.get("scheduler"), kw["steps"])) or generate(seeds, **kw)
    results = evaluate(model, config, out=tmp_path / "ev")
    sec = results["experiments"]["schedulers"]
    assert set(results["experiments"]) == {"schedulers"}
    assert sorted(set(calls)) == sorted({(r["sampler"], r["steps"]) for r in runs})  # each run generated, once cached
    n_calls = len(calls)
    again = evaluate(model, config, measured_in=tmp_path / "ev")["experiments"]["schedulers"]  # the stored measurements
    assert again["tables"] == sec["tables"] and again["items"] == sec["items"] and len(calls) == n_calls
    tables = {t["name"]: t for t in sec["tables"]}
    differences = ("schedulers_within", "schedulers_vs_ddim")  # a − b: rates may be negative
    assert _check_numbers({"experiments": {"s": [t for t in sec["tables"] if t["name"] not in differences]}}) > 50
    for name in differences:
        assert all(math.isfinite(st["mean"]) and st["lo"] <= st["hi"] for r in tables[name]["rows"]
                   for st in r["metrics"].values())
    interp, centroid = tables["schedulers_interpolation"]["rows"], tables["schedulers_centroid"]["rows"]
    labels = {SAMPLER_LABELS[s] for s in SCHEDULER_SAMPLERS}
    assert {r["label"]["sampler"] for r in interp} == labels == {r["label"]["sampler"] for r in centroid}
    assert {(r["label"]["sampler"], r["label"]["method"]) for r in interp} == {
        (s, m) for s in labels for m in config.schedulers.interp_methods}
    heun = {(r["label"]["steps"], r["label"]["NFE"], r["label"]["equal"]) for r in interp if r["label"]["sampler"] == "Heun"}
    assert heun == {(5, 9, "steps (B = 5)"), (3, 5, "NFE (B = 5)")}
    assert {r["label"]["equal"] for r in interp if r["label"]["sampler"] == "DDIM"} == {"steps, NFE (B = 5)"}
    n_paths = len(model.class_names) * config.schedulers.pairs_per_class
    assert all(r["n_images"] == n_paths * config.schedulers.points and "kid" in r["metrics"] for r in interp)
    assert len(tables["schedulers_reconstruction"]["rows"]) == len(runs)
    within = tables["schedulers_within"]["rows"]
    assert {r["label"]["comparison"] for r in within} == {"nao − slerp", "nao − cog", "nao − normalized"}
    assert all("verdict" in r for r in within)
    versus = tables["schedulers_vs_ddim"]["rows"]
    assert {(r["label"]["sampler"], r["label"]["steps"]) for r in versus} == {
        ("DPM++ 2M", 5), ("Euler", 5), ("Heun", 5), ("Heun", 3), ("UniPC", 5)}
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "## Samplers" in report and "DDIM inversion" in report and "| verdict |" in report
    assert (tmp_path / "ev" / "schedulers_examples.png").stat().st_size > 1000

    begin, end = OWN_SECTIONS["schedulers"]
    assert results_targets(("schedulers",)) == [(begin, end, ("schedulers",))]
    # each opt-in family into its own block, the claims together into the evaluation's
    assert results_targets(("norm", "paired", "priors", "schedulers")) == [
        (RESULTS_BEGIN, RESULTS_END, ("norm", "paired")), (*OWN_SECTIONS["priors"], ("priors",)),
        (begin, end, ("schedulers",))]
    readme = tmp_path / "README.md"
    readme.write_text(f"{RESULTS_BEGIN}\nclaims\n{RESULTS_END}\n\n{begin}\nplaceholder\n{end}\n")
    assert update_results_page(json.loads((tmp_path / "ev" / "results.json").read_text()), readme, "ev/report.md")
    text = readme.read_text()
    assert "claims" in text and "placeholder" not in text and "#### Samplers" in text and "#### Judge" not in text
    readme.write_text("no block\n")
    assert cli_main(["evaluate", "--experiments", "schedulers", "--model", str(tiny_testbed_dir), "--out",
                     str(tmp_path / "x"), "--update-results", str(readme)]) == 2  # refused before any work


def test_report_inversion_quick(tiny_testbed_dir, tmp_path):
    """The round-trip report on any model: the DDPM testbed format with DDIM inversion (from the command line, README
    block updated), and a pixel flow model with reverse Euler and reverse Heun, whose NFE count both directions;
    on the tiny flow model Heun's round trip is closer at fewer network evaluations."""
    from tiny_models import tiny_pixel_flow_model

    spec = importlib.util.spec_from_file_location("report_inversion", ROOT / "scripts" / "report_inversion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{module.BEGIN}\nplaceholder\n{module.END}\n")
    assert module.main(["--quick", "--model", str(tiny_testbed_dir), "--out", str(tmp_path / "inv"),
                        "--update", str(readme)]) == 0
    rep = json.loads((tmp_path / "inv" / "report.json").read_text())
    assert [(r["sampler"], r["steps"], r["nfe"], r["n"]) for r in rep["rows"]] == [("ddim", 5, 10, 6), ("ddim", 10, 20, 6)]
    assert all(math.isfinite(r["psnr"]["mean"]) and r["guidance"] == 1.0 for r in rep["rows"])
    md = (tmp_path / "inv" / "report.md").read_text()
    assert "| tiny-testbed | DDIM inversion → DDIM | 5 | 10 |" in md and "--quick" in md and "wall time" in md
    assert "placeholder" not in readme.read_text() and "Inversion round trips" in readme.read_text()
    assert module.main(["--model", str(tiny_testbed_dir), "--samplers", "flow-euler", "--out", str(tmp_path / "x")]) == 2

    flow = tiny_pixel_flow_model()
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rep = module.report({"flow": flow}, (4, 12), images=images, condition=[0, 1, 2], n_boot=100)
    rows = {(r["sampler"], r["steps"]): r for r in rep["rows"]}
    assert {k: r["nfe"] for k, r in rows.items()} == {("flow-euler", 4): 8, ("flow-euler", 12): 24,
                                                      ("flow-heun", 4): 14, ("flow-heun", 12): 46}
    assert rows[("flow-euler", 4)]["inversion"] == "reverse Euler" and rows[("flow-heun", 4)]["inversion"] == "reverse Heun"
    assert rows[("flow-heun", 4)]["psnr"]["mean"] > rows[("flow-euler", 12)]["psnr"]["mean"] + 10
    assert rows[("flow-euler", 12)]["psnr"]["mean"] > rows[("flow-euler", 4)]["psnr"]["mean"]
def _rescaled_runner(model, config, ratio: float):
    """A Runner whose cached inversions are rescaled so their rms norm is ``ratio`` sqrt(d) (the tiny model's own
    sit at ~0.3 sqrt(d), where no scaled-chi prior is valid); the experiments then use these seeds."""
    from seedspace.evaluation import Runner

    runner = Runner(model, config)
    n = max(config.inversions_per_class, max(config.centroid.ks))
    inv = runner.inversions(runner.classes(), n)
    rms = float(torch.cat([s for s, _ in inv.values()]).flatten(1).norm(dim=1).pow(2).mean().sqrt()) / runner.d ** 0.5
    for c, (seeds, images) in inv.items():
        runner._inversions[c] = (seeds * (ratio / rms), images)
    return runner


def test_priors_experiment(tiny_testbed_dir, tmp_path, capsys):
    """The opt-in priors experiment: its arms in every table, the fitted prior where the inversions are, NAO under it
    pulling centroids and paths less far out than under chi, the README section of its own, bad prior files."""
    from seedspace.evaluation import update_results_page
    from seedspace.evaluation.priors import CENTROID_ARMS, INTERPOLATION_ARMS
    from seedspace.evaluation.report import OWN_SECTIONS

    assert parse_experiments("priors") == ("priors",) and "priors" not in parse_experiments("all")
    model = load_model(tiny_testbed_dir)
    d = math.prod(model.seed_shape)
    prior_file = tmp_path / "prior.json"
    prior_file.write_text(json.dumps({"family": "scaled-chi", "d": d, "scale": 0.95}))
    # the tiny model has 4 few-shot images per class: every k and count within them, so the inversions are cached
    config = EvalConfig.quick_preset(experiments=("priors",), priors=PriorsEvalSettings.quick(file=str(prior_file)),
                                     inversions_per_class=4, centroid=CentroidEvalSettings.quick(ks=(2, 4)))
    results = evaluate(model, config, out=tmp_path / "ev", runner=_rescaled_runner(model, config, 0.9))
    sec = results["experiments"]["priors"]
    assert _check_numbers({"experiments": {"priors": sec}}) > 50
    again = evaluate(model, config, measured_in=tmp_path / "ev")["experiments"]["priors"]  # from the stored measurements
    assert again["tables"] == sec["tables"] and again["priors"] == sec["priors"] and again["images"] == 0
    tables = {t["name"]: t for t in sec["tables"]}
    arms = lambda name: [r["label"]["arm"] for r in tables[name]["rows"]]
    assert arms("priors_interpolation") == list(INTERPOLATION_ARMS)
    assert [a for a in arms("priors_centroid") if a in CENTROID_ARMS] == list(CENTROID_ARMS) * 3  # k = 2, 4, all
    assert arms("priors_centroid_paths") == arms("priors_centroid")
    # the fitted scaled-chi prior: s^2 = mean |x|^2 / d, so s = the inversions' rms norm ratio, below 1
    fit = sec["priors"]["nao-fit"]
    assert fit["family"] == "scaled-chi" and fit["scale"] == pytest.approx(0.9, rel=1e-6)
    assert sec["priors"]["nao-file"]["scale"] == 0.95 and sec["priors"]["nao-chi"] == {"family": "chi", "d": d}
    prior_rows = {r["label"]["prior"]: r["metrics"] for r in tables["priors"]["rows"]}
    assert prior_rows["inversions"]["prior_mean"]["mean"] < 0.95 < prior_rows["nao-chi"]["prior_mode"]["mean"]
    assert prior_rows["nao-fit"]["prior_mode"]["mean"] < prior_rows["nao-file"]["prior_mode"]["mean"] < 1
    # measured on the tiny model: NAO centroids sit at the prior's mode (chi ~0.99, fit ~0.89, file ~0.94 sqrt(d)) and
    # its interpolation paths bend out less under the fitted prior than under chi
    cen = {r["label"]["arm"]: r["metrics"]["norm"]["mean"] for r in tables["priors_centroid"]["rows"]
           if r["label"]["k"] == "all"}
    assert cen["nao-fit"] < cen["nao-file"] < cen["nao-chi"] < 1.0
    assert abs(cen["nao-fit"] - prior_rows["nao-fit"]["prior_mode"]["mean"]) < 0.02
    interp = {r["label"]["arm"]: r["metrics"]["norm_mean"]["mean"] for r in tables["priors_interpolation"]["rows"]}
    assert interp["nao-fit"] < interp["nao-chi"]
    comparisons = {(r["label"]["experiment"], r["label"]["comparison"]) for r in tables["priors_paired"]["rows"]}
    for exp, base in (("interpolation", "slerp"), ("centroid", "normalized")):
        assert {(exp, f"nao-fit − {b}") for b in (base, "cog", "nao-chi")} <= comparisons
        assert (exp, "nao-file − nao-chi") in comparisons
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "## Does a model-aware prior fix NAO?" in report and "| nao-fit |" in report
    assert (tmp_path / "ev" / "priors_examples.png").read_bytes()[:4] == b"\x89PNG"
    # --update-results: the priors report goes between its own markers, the claims section stays as it was
    begin, end = OWN_SECTIONS["priors"]
    readme = tmp_path / "README.md"
    readme.write_text(f"{RESULTS_BEGIN}\nclaims\n{RESULTS_END}\n## Priors\n{begin}\nplaceholder\n{end}\n")
    assert update_results_page(json.loads((tmp_path / "ev" / "results.json").read_text()), readme)
    text = readme.read_text()
    assert "\nclaims\n" in text and "placeholder" not in text and "#### Does a model-aware prior fix NAO?" in text
    assert not update_results_page({"experiments": {"priors": sec}}, tmp_path / "plain.md")

    # the tiny model's own inversions (~0.3 sqrt(d)): no scaled-chi prior is valid there; the arm is left out
    res = evaluate(model, EvalConfig.quick_preset(experiments=("priors",), inversions_per_class=4, centroid=CentroidEvalSettings.quick(ks=(2,))))
    plain = res["experiments"]["priors"]
    assert "nao-fit" not in plain["priors"] and "nao-file" not in plain["priors"]
    assert any(n.startswith("nao-fit not run") and "density >= 1" in n for n in plain["notes"])
    assert any(n.startswith("nao-file not run") for n in plain["notes"])
    assert [r["label"]["arm"] for r in plain["tables"][1]["rows"]] == ["nao-chi", "slerp", "cog"]

    # without --prior-file the model's own prior (prior.json in its folder) is the nao-file arm
    own = tmp_path / "own-prior"
    shutil.copytree(tiny_testbed_dir, own)
    shutil.copy(prior_file, own / "prior.json")
    config = EvalConfig.quick_preset(experiments=("priors",), inversions_per_class=4, centroid=CentroidEvalSettings.quick(ks=(2,)))
    own_model = load_model(own)
    owned = evaluate(own_model, config, runner=_rescaled_runner(own_model, config, 0.9))
    sec = owned["experiments"]["priors"]
    assert sec["priors"]["nao-file"] == {"family": "scaled-chi", "d": d, "scale": 0.95}
    assert any("the model's own" in r["label"]["what"] for r in sec["tables"][0]["rows"])

    # a bad --prior-file: one line, exit 2, before any work
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    wrong_d = tmp_path / "wrong_d.json"
    wrong_d.write_text(json.dumps({"family": "scaled-chi", "d": d + 1, "scale": 0.9}))
    cases = [(["--experiments", "priors", "--prior-file", str(tmp_path / "missing.json")],
              f"--prior-file {tmp_path / 'missing.json'}: no such file"),
             (["--experiments", "priors", "--prior-file", str(bad_json)], "not valid JSON"),
             (["--experiments", "priors", "--prior-file", str(wrong_d)], f"d={d + 1}"),
             (["--experiments", "interpolation", "--prior-file", str(prior_file)],
              "--prior-file is used only by the priors experiment")]
    capsys.readouterr()
    for n, (args, message) in enumerate(cases):
        out = tmp_path / f"cli{n}"
        assert cli_main(["evaluate", "--quick", "--model", str(tiny_testbed_dir), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and err.startswith("seedspace"), err
        assert not out.exists()
    with pytest.raises(ValueError, match="not valid JSON"):
        evaluate(model, EvalConfig.quick_preset(experiments=("priors",), priors=PriorsEvalSettings.quick(file=str(bad_json))))


@pytest.mark.parametrize("field, value, message", [
    ("arms", ("paths:nao@",), "nothing after @"),
    ("arms", ("paths:",), "nothing after :"),
    ("arms", ("random/",), "unknown condition ''"),
    ("arms", ("",), "unknown arm ''"),
    ("arms", ("paths:nao", "paths:nao@model"), "names 'paths:nao@model' twice (the same as 'paths:nao')"),
    ("arms", ("oversample", "oversample"), "names 'oversample' twice"),
    ("arms", (), "none given"),
    ("treatments", ("ce", "ce"), "names 'ce' twice"),
    ("replicates", 10 ** 6, "replicates must be"),
    ("classifier_steps", 10 ** 9, "classifier_steps must be"),
])
def test_benchmark_settings_refuse_empty_duplicate_and_unbounded_values(field, value, message):
    from seedspace.evaluation.longtail_settings import FewshotSettings, LongtailSettings

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LongtailSettings(**{field: value})
    if field == "arms":
        with pytest.raises(ValueError):
            FewshotSettings(arms=value)
    with pytest.raises(ValueError, match="fewshot shots names 1 twice"):
        FewshotSettings(shots=(1, 1))


def test_an_interrupted_evaluation_says_so_and_keeps_what_finished(tiny_testbed_dir, tmp_path, monkeypatch, capsys):
    import seedspace.evaluation as evaluation

    def interrupted(runner):
        raise KeyboardInterrupt

    measure = evaluation.MEASURED["interpolation"]
    monkeypatch.setitem(evaluation.MEASURED, "interpolation", (interrupted, measure[1]))
    out = tmp_path / "cut"
    assert cli_main(["evaluate", "--quick", "--experiments", "norm,interpolation", "--model", str(tiny_testbed_dir),
                     "--out", str(out), "--quiet"]) == 130
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted" and record["finished"] == ["norm"]
    cut = json.loads((out / "results.json").read_text())["experiments"]
    assert list(cut) == ["norm"]
    # resumed: norm is tabulated from its stored measurements (no image generated), interpolation runs
    monkeypatch.setitem(evaluation.MEASURED, "interpolation", measure)
    capsys.readouterr()
    assert cli_main(["evaluate", "--resume", str(out)]) == 0
    assert f"norm: tabulated from {out / 'measurements' / 'norm.safetensors'}" in capsys.readouterr().err
    resumed = json.loads((out / "results.json").read_text())["experiments"]
    assert resumed["norm"]["tables"] == cut["norm"]["tables"] and resumed["norm"]["images"] == 0
    assert resumed["interpolation"]["images"] > 0


# the flat prefixes of the records made before the split of EvalConfig, by experiment
FLAT_PREFIXES = {"norm": "norm_", "interpolation": "interp_", "centroid": "centroid_", "rare": "rare_",
                 "priors": "prior_", "schedulers": "sched_"}


def _flat_record(record: dict) -> dict:
    flat = {k: v for k, v in record.items() if k not in FLAT_PREFIXES}
    for section, prefix in FLAT_PREFIXES.items():
        flat.update({prefix + k: v for k, v in record[section].items()})
    return {**flat, "extra": {}}


def test_a_record_made_before_the_experiments_had_settings_of_their_own_reads_as_the_same_config():
    config = EvalConfig.quick_preset(experiments=("priors", "schedulers"),
                                     priors=PriorsEvalSettings.quick(file="scaled-chi:0.9"))
    flat = _flat_record(json.loads(json.dumps(config.to_record())))
    assert flat["prior_file"] == "scaled-chi:0.9" and flat["interp_points"] == 3 and "priors" not in flat
    assert EvalConfig.from_record(flat) == config
    with pytest.raises(ValueError, match="interpolation no_such is not a setting of InterpolationEvalSettings"):
        EvalConfig.from_record({**flat, "interp_no_such": 1})
    with pytest.raises(ValueError, match="interpolation points must be an integer"):
        EvalConfig.from_record({**flat, "interp_points": "many"})


def test_an_interrupted_benchmark_resumes_with_the_numbers_of_an_uninterrupted_one(tiny_testbed_dir, tmp_path,
                                                                                   monkeypatch, capsys):
    """``evaluate --resume``: the long-tail benchmark's finished replicates are read back, the rest measured; the
    tables equal an uninterrupted run's; other settings are refused with --resume."""
    args = ["evaluate", "--quick", "--experiments", "longtail", "--lt-arms", "oversample,random,paths:nao",
            "--lt-replicates", "3", "--model", str(tiny_testbed_dir), "--quiet"]
    draw, real_add = longtail.draw_replicate, longtail.added_images

    def add(runner, cfg, rep, arm, *rest):  # the paths' first image of each class blank (kept as augment keeps it)
        added = real_add(runner, cfg, rep, arm, *rest)
        if arm == "paths:nao":
            for images in added.values():
                images[0] = 0.0
        return added

    monkeypatch.setattr(longtail, "added_images", add)
    assert cli_main([*args, "--out", str(tmp_path / "whole")]) == 0

    def cut_in_the_third(runner, cfg, rep, arm, *rest):  # after its first synthetic arm wrote its data set
        if rep.index == 2 and arm == "paths:nao":
            raise KeyboardInterrupt
        return add(runner, cfg, rep, arm, *rest)

    monkeypatch.setattr(longtail, "added_images", cut_in_the_third)
    cut = tmp_path / "cut"
    assert cli_main([*args, "--out", str(cut)]) == 130
    monkeypatch.setattr(longtail, "added_images", add)
    stored = sorted(p.name for p in (cut / "datasets" / "longtail" / "replicates").iterdir())
    assert stored == ["replicate-0000.json", "replicate-0001.json"]
    assert any((cut / "datasets" / "longtail" / "r2").iterdir())  # the cut replicate's partial data sets
    record = (cut / "run.json").read_bytes()
    capsys.readouterr()
    assert cli_main(["evaluate", "--resume", str(cut), "--seed", "3"]) == 2  # settings come from run.json
    assert capsys.readouterr().err.strip() == ("seedspace: error: --resume takes every setting from the run's "
                                               "run.json; do not give --seed")
    assert (cut / "run.json").read_bytes() == record  # refused before the folder was touched
    old = json.loads(record)  # as a run made before the experiments had settings of their own recorded it
    old["parameters"]["config"] = _flat_record(old["parameters"]["config"])
    (cut / "run.json").write_text(json.dumps(old))
    measured = []
    monkeypatch.setattr(longtail, "draw_replicate", lambda runner, cfg, index, *rest: measured.append(index) or
                        draw(runner, cfg, index, *rest))
    assert cli_main(["evaluate", "--resume", str(cut), "--quiet"]) == 0
    assert measured == [2]  # the first two were read back
    whole, resumed = (json.loads((f / "results.json").read_text())["experiments"]["longtail"]
                      for f in (tmp_path / "whole", cut))
    assert resumed["tables"] == whole["tables"] and resumed["items"] == whole["items"]
    blank = [n for n in whole["notes"] if n.startswith("Blank images")]  # counted over every replicate, read back too
    assert len(blank) == 1 and blank[0] in resumed["notes"]
    # one blank image per class that gets images (2 in the quick profile) in each of 3 replicates of 15 images
    assert blank[0].endswith(": paths:nao (class) 6 of 45.")
    assert json.loads((cut / "run.json").read_text())["status"] == "completed"
    record = (cut / "run.json").read_bytes()
    capsys.readouterr()
    assert cli_main(["evaluate", "--resume", str(cut)]) == 2  # nothing left to resume
    assert capsys.readouterr().err.strip() == f"seedspace: error: {cut} is a completed evaluation: nothing to resume"
    assert (cut / "run.json").read_bytes() == record
    # re-tabulated from the stored replicates: the same tables, nothing measured; the new run holds the replicates
    again = tmp_path / "again"
    assert cli_main(["evaluate", "--retabulate", str(cut), "--out", str(again), "--quiet"]) == 0
    assert measured == [2]
    retabulated = json.loads((again / "results.json").read_text())["experiments"]["longtail"]
    assert retabulated["tables"] == whole["tables"] and retabulated["items"] == whole["items"]
    assert sorted(p.name for p in (again / "datasets" / "longtail" / "replicates").iterdir()) == [
        "replicate-0000.json", "replicate-0001.json", "replicate-0002.json"]
