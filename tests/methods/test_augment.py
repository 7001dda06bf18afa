"""seedspace augment: the planner, the local and Ray executors, resume and bad input, on the tiny test models."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import seedspace as ss
from seedspace import outputs
from seedspace.methods.augment import AugmentSettings, augment, executors, references, strategies, writing
from seedspace.methods.augment import run as augment_run
from seedspace.methods.augment.planning import make_plan
from seedspace.cli.main import main
from seedspace.hardware import torch_threads

CLASSES = ["class0", "class1", "class2"]  # the tiny testbed's classes


@pytest.fixture(scope="module")
def refs_dir(tmp_path_factory) -> Path:
    """Three reference images (8x8, the tiny testbed's size) per class."""
    root = tmp_path_factory.mktemp("refs")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"ref{i}.png")
    return root


def run(model_dir, refs, out, **options):
    kwargs = dict(per_class=5, steps=2, shard_size=2, batch_size=2)
    kwargs.update(options)
    return augment(str(model_dir), refs, out, **kwargs)


def interrupted_run(monkeypatch, at_shard: int, *args, **kwargs) -> None:
    """``run(*args, **kwargs)``, stopped by Ctrl-C while its ``at_shard``-th shard runs."""
    calls, original = [], executors.ShardRunner.run

    def interrupted(self, work):
        calls.append(work.shard)
        if len(calls) == at_shard:
            raise KeyboardInterrupt
        return original(self, work)

    monkeypatch.setattr(executors.ShardRunner, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(*args, **kwargs)
    monkeypatch.setattr(executors.ShardRunner, "run", original)


def data_files(out: Path) -> dict[str, bytes]:
    """Every file of a data set but run.json (which records the executor), run.log (wall-clock times) and the
    folder's lock."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("run.json", "run.log", ".lock")}


def fake_classes(k: int, n_classes: int = 3):
    return [references.ClassReferences(f"c{i}", f"c{i}", torch.rand(k, 1, 8, 8)) for i in range(n_classes)]


# -- the planner ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["random", "centroid", "paths"])
def test_plan_is_fixed_by_the_seed_and_never_repeats_a_seed(strategy):
    per_class = 20 if strategy == "centroid" else 100  # k = 5 gives 26 distinct centroids
    settings = AugmentSettings(per_class=per_class, strategy=strategy, seed=7, shard_size=16)
    classes = fake_classes(5)
    a, b = make_plan(classes, settings), make_plan(classes, settings)
    other = make_plan(classes, AugmentSettings(per_class=per_class, strategy=strategy, seed=8, shard_size=16))
    alone = make_plan(classes[:1], settings)  # a class's plan does not depend on the other classes
    for ca, cb, co, c1 in zip(a.classes, b.classes, other.classes, alone.classes):
        for key, value in ca.recipe.items():
            assert np.array_equal(value, cb.recipe[key]) and np.array_equal(value, c1.recipe[key])
        assert any(not np.array_equal(v, co.recipe[k]) for k, v in ca.recipe.items() if isinstance(v, np.ndarray))
        rows = np.concatenate([v.reshape(per_class, -1) for v in ca.recipe.values() if isinstance(v, np.ndarray)], 1)
        assert len(np.unique(rows, axis=0)) == per_class
    assert [(s.class_position, s.start, s.stop) for s in a.shards] == [
        (c, start, min(per_class, start + 16)) for c in range(3) for start in range(0, per_class, 16)]
    recipe = a.classes[0].recipe
    if strategy == "centroid":
        assert recipe["subset"][0].all() and (recipe["subset"].sum(1) >= 2).all()
    if strategy == "paths":
        t = recipe["t_num"] / 2 ** recipe["t_bits"]
        assert ((t > 0) & (t < 1)).all()
        assert set(map(tuple, np.stack([recipe["source"], recipe["target"]], 1))) == set(map(tuple, strategies.segments(5)))


def test_path_seeds_are_the_points_the_manifest_names():
    settings = AugmentSettings(per_class=12, strategy="paths", method="slerp", seed=3)
    inversions = torch.randn(3, 1, 8, 8)
    plan = make_plan([references.ClassReferences("c", "c", inversions)], settings)
    recipe = plan.classes[0].recipe
    seeds = strategies.seeds_from_recipe("paths", recipe, inversions, (1, 8, 8), "spherical", "slerp")
    centre = ss.centroid(inversions.double(), method="spherical")
    for i in range(12):
        p = strategies.provenance("paths", recipe, i, "spherical", "slerp", 0)
        start = centre if p["from"] == "centroid" else inversions[p["from"]].double()
        path = ss.interpolate(start, inversions[p["to"]].double(), steps=p["t_grid"][1] + 1, method="slerp")
        assert torch.allclose(seeds[i].double(), path[p["t_grid"][0]], atol=1e-6)
    assert len({tuple(s.flatten().tolist()) for s in seeds}) == 12
    # a shard runner passes the class's centre it keeps across shards: the same seeds, bit for bit
    kept = strategies.paths_centre(inversions, "spherical")
    assert torch.equal(kept, centre)
    assert torch.equal(strategies.seeds_from_recipe("paths", recipe, inversions, (1, 8, 8), "spherical", "slerp",
                                                    centre=kept), seeds)


def test_centroid_strategy_refuses_more_images_than_distinct_subsets():
    with pytest.raises(ValueError, match="at most 4 distinct seeds from 3 references"):
        make_plan(fake_classes(3), AugmentSettings(per_class=5, strategy="centroid"))


def two_groups(d: int = 64, per_group: int = 4, seed: int = 0):
    """Inversions in two well-separated groups (around two orthogonal directions, norms ~ chi(d)), interleaved:
    reference i is in group truth[i]."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=torch.float64))[0].T * d ** 0.5
    truth = np.array([0, 1] * per_group)
    X = centres[truth] + 0.3 * torch.randn(len(truth), d, generator=gen, dtype=torch.float64)
    return X.float().reshape(len(truth), 1, 8, 8), truth


def test_clusters_strategy_finds_planted_groups_and_takes_them_round_robin():
    inversions, truth = two_groups()
    settings = AugmentSettings(per_class=14, strategy="clusters", clusters=2, seed=4, shard_size=5, batch_size=5)
    plan = make_plan([references.ClassReferences("c", "c", inversions)], settings, {"c": inversions})
    recipe = plan.classes[0].recipe
    assert recipe["labels"] == tuple(truth)  # clusters numbered by their smallest member: reference 0's is 0
    assert recipe["cluster"].tolist() == [0, 1] * 7
    seeds = strategies.seeds_from_recipe("clusters", recipe, inversions, (1, 8, 8), "nao", "nao")
    centres = [ss.centroid(inversions[truth == j].double(), method="nao") for j in (0, 1)]
    for i in range(14):
        p = strategies.provenance("clusters", recipe, i, "nao", "nao", 0)
        j = p["cluster"]
        assert p["members"] == np.flatnonzero(truth == j).tolist() and p["clusters"] == 2
        assert set(p["references"]) <= set(p["members"]) and len(p["references"]) >= 2
        expected = ss.centroid(inversions[p["references"]].double(), method="nao")
        assert torch.allclose(seeds[i].double(), expected.float().double(), atol=1e-6)
        near, far = (ss.distance(seeds[i].double(), centres[c]) for c in (j, 1 - j))
        assert near < 0.5 * far  # a seed lies near its own cluster's centroid
    assert all(torch.allclose(seeds[j].double(), centres[j].float().double(), atol=1e-6) for j in (0, 1))
    assert len({tuple(s.flatten().tolist()) for s in seeds}) == 14
    again = make_plan([references.ClassReferences("c", "c", inversions)], settings, {"c": inversions})
    assert all(np.array_equal(v, again.classes[0].recipe[k]) for k, v in recipe.items())


def test_clusters_strategy_capacity_singletons_and_one_cluster():
    inversions, _ = two_groups(per_group=2)  # 4 references
    one = references.ClassReferences("c", "c", inversions)
    # M = 1 is the centroid strategy's recipe (the same stream), without clustering
    single = make_plan([one], AugmentSettings(per_class=6, strategy="clusters", clusters=1, seed=2), {"c": inversions})
    centroid = make_plan([one], AugmentSettings(per_class=6, strategy="centroid", seed=2))
    assert np.array_equal(single.classes[0].recipe["subset"], centroid.classes[0].recipe["subset"])
    # two clusters of 2: one centroid each, so at most 2 images
    with pytest.raises(ValueError, match="class 'c': .*at most 2 distinct seeds from clusters of 2, 2 references"):
        make_plan([one], AugmentSettings(per_class=3, strategy="clusters", clusters=2), {"c": inversions})
    # M = k: every reference a singleton, whose seed is its inversion itself (capacity 1 each)
    plan = make_plan([one], AugmentSettings(per_class=4, strategy="clusters", clusters=4), {"c": inversions})
    recipe = plan.classes[0].recipe
    seeds = strategies.seeds_from_recipe("clusters", recipe, inversions, (1, 8, 8), "nao", "nao")
    assert recipe["labels"] == (0, 1, 2, 3) and torch.equal(seeds, inversions)
    p = strategies.provenance("clusters", recipe, 2, "nao", "nao", 0)
    assert p == {"centroid": None, "references": [2], "cluster": 2, "clusters": 4, "members": [2]}
    with pytest.raises(ValueError, match=r"at most 4 distinct seeds from 4 references in 4 clusters"):
        make_plan([one], AugmentSettings(per_class=5, strategy="clusters", clusters=4), {"c": inversions})
    with pytest.raises(ValueError, match=r"class 'c': .*1 <= clusters <= the number of references \(4\), got 5"):
        make_plan([one], AugmentSettings(per_class=2, strategy="clusters", clusters=5), {"c": inversions})
    with pytest.raises(ValueError, match=r"clusters must be an integer in \[1, inf\]"):
        AugmentSettings(per_class=2, strategy="clusters", clusters=0)
    with pytest.raises(ValueError, match="applies to the clusters strategy only"):
        AugmentSettings(per_class=2, strategy="centroid", clusters=2)
    with pytest.raises(ValueError, match="plans from the references' inversions"):
        make_plan([one], AugmentSettings(per_class=2, strategy="clusters"))
    assert [strategies.default_clusters(k) for k in (2, 3, 4, 6, 10)] == [1, 1, 2, 3, 3]
    assert strategies.max_distinct("clusters", 10, 3) == 2 ** 8 - 8 - 1 + 2


# -- the local executor ---------------------------------------------------------------------------------------
def test_local_run_writes_an_image_folder_with_manifest(tiny_testbed_dir, refs_dir, tmp_path):
    result = run(tiny_testbed_dir, refs_dir, tmp_path / "out")
    out = result.out
    entries = result.entries()
    assert [e["file"] for e in entries] == [f"{c}/{c}_{i:05d}.png" for c in CLASSES for i in range(5)]
    assert {e["strategy"] for e in entries} == {"paths"} and {e["steps"] for e in entries} == {2}
    assert all(e["model_condition"] == e["class"] and e["references"] == 3 for e in entries)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == CLASSES
    # the PNG carries its manifest line; the manifest adds the PNG's own hash
    embedded = outputs.parse_parameters(outputs.read_png_parameters(out / entries[7]["file"]))
    assert {**embedded, "sha256": hashlib.sha256((out / entries[7]["file"]).read_bytes()).hexdigest()} == entries[7]
    pixels = {outputs.read_png_pixels(out / e["file"]).tobytes() for e in entries}
    assert len(pixels) == 15
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["parameters"]["settings"]["per_class"] == 5
    saved_refs, inversions = references.load_references(out / references.REFERENCES_FILE)
    assert sorted(inversions) == CLASSES and inversions["class0"].shape == (3, 1, 8, 8)
    psnr = record["result"]["references_psnr"]  # each reference regenerated from its inversion at the run's steps
    assert sorted(psnr) == CLASSES and all(len(v) == 3 and all(0 < x < 100 for x in v) for v in psnr.values())


def test_images_without_a_picture_are_never_written_as_a_success(tiny_testbed_dir, refs_dir, tmp_path):
    model = ss.load_model(str(tiny_testbed_dir))
    real_generate, calls = model.generate, []

    def black(seeds, *args, **kwargs):
        return torch.zeros(seeds.shape[0], 1, 8, 8)

    model.generate = black  # every reference's round trip comes back black: refused before anything is written
    with pytest.raises(ValueError, match=r"class 'class0': reference 0 inverted \(ddim\) with 2 inversion steps "
                                         r"comes back constant \(all black\) at 2 steps"):
        augment(model, refs_dir, tmp_path / "refused", per_class=5, steps=2, shard_size=2, batch_size=2)
    assert not (tmp_path / "refused").exists()

    def nan_in_the_last_class(seeds, condition, *args, **kwargs):  # the round trips (3 calls) are fine
        calls.append(condition)
        images = real_generate(seeds, condition, *args, **kwargs)
        if len(calls) > 3 and condition == "class2":
            images[-1, 0, 0, 0] = float("nan")
        return images

    model.generate = nan_in_the_last_class
    with pytest.raises(ValueError, match=r"class 'class2': image 1 came out not finite"):
        augment(model, refs_dir, tmp_path / "failed", per_class=2, steps=2, shard_size=2, batch_size=2)
    out = tmp_path / "failed"
    assert json.loads((out / "run.json").read_text())["status"] != "completed"
    assert not list(out.glob("class2/*.png")) and len(list(out.glob("class[01]/*.png"))) == 4
    assert not (out / "manifest.jsonl").exists()



def test_keep_blank_writes_blank_images_marked_and_counted_and_still_refuses_non_finite_ones(tiny_testbed_dir,
                                                                                            refs_dir, tmp_path):
    """An experiment measuring what a strategy makes keeps its blank images (marked in the manifest, counted in
    run.json, one warning); the other images are the bytes of a run that refuses nothing."""
    model = ss.load_model(str(tiny_testbed_dir))
    real_generate = model.generate

    def blank_second_image_of_class1(seeds, condition, *args, **kwargs):  # batches of 2; round trips of 3
        images = real_generate(seeds, condition, *args, **kwargs)
        if condition == "class1" and images.shape[0] == 2:
            images[1] = 0.0
        return images

    model.generate = blank_second_image_of_class1
    options = dict(per_class=4, steps=2, shard_size=2, batch_size=2)
    with pytest.raises(ValueError, match=r"class 'class1': image 1 came out constant \(all black\).*keep_blank"):
        augment(model, refs_dir, tmp_path / "refused", **options)
    with pytest.warns(RuntimeWarning, match="2 of 12 images came out blank and were kept"):
        kept = augment(model, refs_dir, tmp_path / "kept", keep_blank=True, **options)
    entries = kept.entries()
    assert [e["file"] for e in entries if "blank" in e] == ["class1/class1_00001.png", "class1/class1_00003.png"]
    assert {e["blank"] for e in entries if "blank" in e} == {"constant (all black)"}
    assert not outputs.read_png_pixels(kept.out / "class1/class1_00001.png").any()
    record = json.loads((kept.out / "run.json").read_text())
    assert record["result"]["blank"] == 2 and record["parameters"]["settings"]["keep_blank"] is True

    model.generate = real_generate
    plain = augment(model, refs_dir, tmp_path / "plain", **options)
    for a, b in zip(entries, plain.entries()):
        if "blank" not in a:
            assert outputs.read_png_pixels(kept.out / a["file"]).tobytes() == \
                outputs.read_png_pixels(plain.out / b["file"]).tobytes()

    def nan_image(seeds, condition, *args, **kwargs):
        images = real_generate(seeds, condition, *args, **kwargs)
        images[0, 0, 0, 0] = float("nan")
        return images

    model.generate = nan_image
    with pytest.raises(ValueError, match=r"came out not finite"):
        augment(model, refs_dir, tmp_path / "nan", keep_blank=True, strategy="random", **options)

@pytest.mark.parametrize("strategy,per_class", [("centroid", 4), ("seedselect", 3), ("random", 3)])
def test_every_strategy_makes_distinct_images(tiny_testbed_dir, refs_dir, tmp_path, strategy, per_class):
    result = run(tiny_testbed_dir, refs_dir, tmp_path / "out", strategy=strategy, per_class=per_class,
                 seedselect_steps=1, condition="unconditional")
    entries = result.entries()
    assert len(entries) == 3 * per_class and {e["model_condition"] for e in entries} == {"unconditional"}
    assert len({outputs.read_png_pixels(result.out / e["file"]).tobytes() for e in entries}) == 3 * per_class
    if strategy == "seedselect":
        assert entries[0]["seed"]["seedselect_steps"] == 1 and entries[0]["seed"]["init"]["to"] in range(3)


CLUSTERS_RUN = {"strategy": "clusters", "clusters": 2, "per_class": 2, "shard_size": 1, "batch_size": 1}  # k = 3: clusters of 2 and 1


@pytest.mark.parametrize("options", [{}, CLUSTERS_RUN])
def test_bytes_do_not_depend_on_the_shard_order(tiny_testbed_dir, refs_dir, tmp_path, options):
    first = run(tiny_testbed_dir, refs_dir, tmp_path / "a", **options)
    other = tmp_path / "b"
    shutil.copytree(first.out, other)
    for name in CLASSES:
        shutil.rmtree(other / name)
    (other / "manifest.jsonl").unlink()
    settings = first.settings
    model = ss.load_model(str(tiny_testbed_dir), dtype=settings.dtype)
    inversions = references.load_references(first.out / references.REFERENCES_FILE)[1]
    plan = make_plan(references.resolve_classes(model, refs_dir, settings), settings, inversions)
    executors.LocalExecutor(model).run(plan, other, plan.shards[::-1], str(tiny_testbed_dir), lambda n: None)
    writing.assemble_manifest(other, plan)
    assert data_files(other) == data_files(first.out)


def test_resume_redoes_missing_shards_and_keeps_the_bytes(tiny_testbed_dir, refs_dir, tmp_path, monkeypatch):
    full = run(tiny_testbed_dir, refs_dir, tmp_path / "full")
    out = tmp_path / "partial"
    interrupted_run(monkeypatch, 4, tiny_testbed_dir, refs_dir, out)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert len(list(out.rglob("shard-*.jsonl"))) == 3 and not (out / "manifest.jsonl").exists()
    resumed = run(tiny_testbed_dir, refs_dir, out, resume=True)
    assert resumed.shards_run == 9 - 3 and resumed.generated == 15 - 5  # class 0 (5 images) was finished
    assert data_files(out) == data_files(full.out)
    assert (out / "run.json").read_bytes() == (full.out / "run.json").read_bytes()  # times and counts: run.log

    (out / "class1" / "shard-00001.jsonl").unlink()  # a lost shard is redone, the rest kept
    (out / "class1" / "class1_00002.png").unlink()
    # the round trips of a finished run's stored inversions are its record's, not made again
    monkeypatch.setattr(augment_run, "round_trips", lambda *args: pytest.fail("round trips made again"))
    again = run(tiny_testbed_dir, refs_dir, out, resume=True)
    assert again.shards_run == 1 and data_files(out) == data_files(full.out)

    (out / "class2" / "class2_00004.png").write_bytes(b"not a png")  # a damaged image: its shard is made again
    (out / "class0" / "class0_00000.png").write_bytes((out / "class0" / "class0_00001.png").read_bytes())
    again = run(tiny_testbed_dir, refs_dir, out, resume=True)
    assert again.shards_run == 2 and data_files(out) == data_files(full.out)


def test_every_image_is_computed_with_the_recorded_thread_count(tiny_testbed_dir, refs_dir, tmp_path, monkeypatch):
    """CPU kernels split their sums by thread, so the thread count is part of what fixes the bytes: a run computes
    every inversion and image with its ``threads`` whatever the caller's count, records it, and a resumed run
    (started with another count) keeps it; the shard size never changes the bytes."""
    counts = []
    model_class = type(ss.load_model(str(tiny_testbed_dir)))
    for name in ("generate", "invert"):
        def spy(self, *args, _original=getattr(model_class, name), **kwargs):
            counts.append(torch.get_num_threads())
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(model_class, name, spy)
    with torch_threads(1):
        full = run(tiny_testbed_dir, refs_dir, tmp_path / "full", threads=2, shard_size=4)
        assert torch.get_num_threads() == 1 and set(counts) == {2}
    assert json.loads((full.out / "run.json").read_text())["parameters"]["settings"]["threads"] == 2

    out = tmp_path / "partial"
    with torch_threads(2):
        interrupted_run(monkeypatch, 3, tiny_testbed_dir, refs_dir, out, threads=2)
    counts.clear()
    with torch_threads(1):
        resumed = run(tiny_testbed_dir, refs_dir, out, resume=True)  # threads: the recorded 2, not the caller's 1
    assert resumed.shards_run > 0 and set(counts) == {2} and resumed.settings.threads == 2

    def without_parts(files):  # the per-shard manifest parts follow the shard size; the images and manifest do not
        return {name: data for name, data in files.items() if "/shard-" not in name}
    assert without_parts(data_files(out)) == without_parts(data_files(full.out))
    with pytest.raises(ValueError, match="threads was 2, now 1"):
        run(tiny_testbed_dir, refs_dir, out, resume=True, threads=1)
    with pytest.raises(ValueError, match="shard_size must be a multiple of batch_size"):
        AugmentSettings(per_class=4, shard_size=5, batch_size=2)


def test_clusters_run_records_its_clusters_and_resumes_from_the_stored_inversions(tiny_testbed_dir, refs_dir,
                                                                                  tmp_path, monkeypatch):
    """The clusters are found from the inversions before anything is written; the manifest names each image's
    cluster and members (the clustering of the stored inversions); a resumed run plans from the stored inversions
    and gives the same bytes."""
    full = run(tiny_testbed_dir, refs_dir, tmp_path / "full", **CLUSTERS_RUN)
    entries = full.entries()
    _, inversions = references.load_references(full.out / references.REFERENCES_FILE)
    for position, name in enumerate(CLASSES):
        labels = strategies.cluster_labels(inversions[name], 2, None, strategies.cluster_seed(0, position))
        seeds = [e["seed"] for e in entries if e["class"] == name]
        assert [s["cluster"] for s in seeds] == [0, 1] and all(s["clusters"] == 2 for s in seeds)
        for s in seeds:
            assert s["members"] == np.flatnonzero(labels == s["cluster"]).tolist()
            assert s["references"] == s["members"] and s["centroid"] == ("nao" if len(s["members"]) > 1 else None)
    assert json.loads((full.out / "run.json").read_text())["parameters"]["settings"]["clusters"] == 2

    out = tmp_path / "partial"
    interrupted_run(monkeypatch, 3, tiny_testbed_dir, refs_dir, out, **CLUSTERS_RUN)
    monkeypatch.setattr(augment_run, "invert_classes", None)  # resuming must not invert again
    resumed = run(tiny_testbed_dir, refs_dir, out, resume=True, **CLUSTERS_RUN)
    assert resumed.shards_run == 4 and data_files(out) == data_files(full.out)


# -- Ray ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # 4 logical CPUs: two workers of the run's 2 threads each at once (a crashed one restarts on its own CPUs)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("options", [{"per_class": 3}, CLUSTERS_RUN])
def test_ray_output_is_byte_identical_and_a_killed_workers_shard_is_redone(tiny_testbed_dir, refs_dir, tmp_path,
                                                                          ray_cluster, options):
    local = run(tiny_testbed_dir, refs_dir, tmp_path / "local", **options)
    marker = tmp_path / "crashed"  # the first shard's worker exits the process; Ray restarts it and retries
    result = run(tiny_testbed_dir, refs_dir, tmp_path / "ray", executor="ray", workers=2,
                 ray_options={"runtime_env": {"env_vars": {executors.CRASH_MARKER_ENV: str(marker)}}}, **options)
    assert marker.exists() and result.shards_run == 6
    assert data_files(result.out) == data_files(local.out)
    assert json.loads((result.out / "run.json").read_text())["execution"]["workers"] == 2


def test_a_joined_cluster_runs_the_workers_its_cpus_hold_with_one_warning(tiny_testbed_dir, refs_dir, tmp_path,
                                                                          ray_cluster):
    """3 workers of 2 CPUs asked on a cluster of 4: the third could never start, and a crashed worker's restart
    could wait behind it for ever; 2 run, said in one warning line and in run.json."""
    local = run(tiny_testbed_dir, refs_dir, tmp_path / "local", per_class=3, threads=2)
    with pytest.warns(UserWarning, match="has 4 CPUs: running 2 worker"):
        result = run(tiny_testbed_dir, refs_dir, tmp_path / "ray", per_class=3, threads=2, executor="ray", workers=3)
    assert data_files(result.out) == data_files(local.out)
    assert json.loads((result.out / "run.json").read_text())["execution"]["workers"] == 2
    with pytest.raises(executors.AugmentError, match="fewer than the 8 each worker reserves"):
        run(tiny_testbed_dir, refs_dir, tmp_path / "big", per_class=3, threads=8, executor="ray")


def test_changing_only_the_executor_never_changes_the_files(tiny_testbed_dir, refs_dir, tmp_path, ray_cluster):
    """The same command line with no thread options, locally and under Ray, in a process computing with 2 threads
    (Ray's per-worker reservation used to set the thread count: 1 under Ray, 2 here)."""
    args = ["augment", "--model", str(tiny_testbed_dir), "--references", str(refs_dir), "--per-class", "3",
            "--steps", "2", "--shard-size", "2", "--batch-size", "2", "--quiet"]
    with torch_threads(2):
        assert main([*args, "--out", str(tmp_path / "local")]) == 0
        assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert data_files(tmp_path / "ray") == data_files(tmp_path / "local")
    runs = [json.loads((tmp_path / name / "run.json").read_text()) for name in ("local", "ray")]
    assert [r["parameters"] for r in runs] == [runs[0]["parameters"]] * 2
    assert runs[0]["parameters"]["settings"]["threads"] == 2 and runs[1]["execution"]["cpus_per_worker"] == 2


def test_sigterm_on_the_ray_executor_unwinds_like_ctrl_c(tiny_testbed_dir, refs_dir, tmp_path):
    """ray.init installs its own signal handlers, under which SIGTERM aborted the driver (134, run.json "failed");
    the driver keeps its own and unwinds, with run.json "interrupted"."""
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    proc = subprocess.Popen([sys.executable, "-m", "seedspace", "augment", "--model", str(tiny_testbed_dir),
                             "--references", str(refs_dir), "--out", str(out), "--per-class", "2000", "--steps", "2",
                             "--shard-size", "2", "--batch-size", "2", "--executor", "ray", "--workers", "1", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None and not list(out.glob("*/shard-*.jsonl")):
            time.sleep(0.5)  # until the workers have finished a shard
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    err = proc.stderr.read().strip()
    # a clean unwind: 143, or 130 where Ray's handler turned the signal into a KeyboardInterrupt first
    assert code in (130, 143) and err.splitlines()[-1] in ("seedspace: terminated", "seedspace: interrupted"), err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"


def test_without_ray_the_ray_executor_says_how_to_install_it(tiny_testbed_dir, refs_dir, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["augment", "--model", str(tiny_testbed_dir), "--references", str(refs_dir), "--out",
                 str(tmp_path / "out"), "--per-class", "2", "--executor", "ray", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pip install seedspace[ray]" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_workers_with_fewer_cpus_than_the_runs_threads_get_one_warning_line(tiny_testbed_dir, refs_dir, tmp_path,
                                                                          monkeypatch, capsys):
    """Each Ray worker computes with the run's recorded threads; on fewer reserved CPUs that oversubscribes the
    cores (measured 5x slower), so the run says how to avoid it (here before the missing Ray stops it)."""
    monkeypatch.setitem(sys.modules, "ray", None)
    args = ["augment", "--model", str(tiny_testbed_dir), "--references", str(refs_dir), "--per-class", "2",
            "--executor", "ray", "--quiet", "--threads", "2"]
    main([*args, "--out", str(tmp_path / "fewer"), "--cpus-per-worker", "1"])
    warning = [line for line in capsys.readouterr().err.splitlines() if "more threads than cores" in line]
    assert len(warning) == 1 and "set threads to 1" in warning[0]
    main([*args, "--out", str(tmp_path / "equal"), "--cpus-per-worker", "2"])
    assert "more threads than cores" not in capsys.readouterr().err


# -- the command line -----------------------------------------------------------------------------------------
def test_the_library_and_the_command_line_write_the_same_record(tiny_testbed_dir, refs_dir, tmp_path):
    """The same settings through ss.augment and `seedspace augment`: the same run.json parameters and images."""
    library = run(tiny_testbed_dir, refs_dir, tmp_path / "lib", per_class=2, prior="scaled-chi:0.9", dtype="float32",
                  threads=1)
    assert main(["augment", "--model", str(tiny_testbed_dir), "--references", str(refs_dir), "--out",
                 str(tmp_path / "cli"), "--per-class", "2", "--steps", "2", "--shard-size", "2", "--batch-size", "2",
                 "--prior", "scaled-chi:0.9", "--dtype", "float32", "--threads", "1", "--quiet"]) == 0
    records = [json.loads((tmp_path / name / "run.json").read_text())["parameters"] for name in ("lib", "cli")]
    assert records[0] == records[1] and records[0]["settings"]["prior"]["scale"] == 0.9
    assert AugmentSettings.from_record(records[0]["settings"]) == library.settings
    files = [sorted(p.relative_to(tmp_path / name).as_posix() for p in (tmp_path / name).rglob("*.png"))
             for name in ("lib", "cli")]
    assert files[0] == files[1] and all((tmp_path / "lib" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes()
                                        for f in files[0])


def test_cli_testbed_split_unconditional(tmp_path, capsys):
    """References from the embedded testbed's own long-tailed training split (shipped in the package)."""
    out = tmp_path / "out"
    code = main(["augment", "--testbed-split", "2", "--out", str(out), "--per-class", "2", "--steps", "2",
                 "--condition", "unconditional", "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(entries) == 20 and entries[0]["file"] == "T-shirt_top/T-shirt_top_00000.png"
    assert {e["model_condition"] for e in entries} == {"unconditional"} and entries[0]["class"] == "T-shirt/top"
    assert outputs.read_png_pixels(out / entries[-1]["file"]).shape == (32, 32, 1)


def _write_refs(root: Path, counts: dict, bad: str | None = None) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(root / name / f"r{i}.png")
    if bad:
        (root / bad / "broken.png").write_bytes(b"not a png")
    return root


def test_prior_moves_nao_seeds_only_and_is_recorded(tiny_testbed_dir, refs_dir, tmp_path):
    """prior= changes the NAO paths' images (and not lerp's), is recorded in run.json and the manifest, is part of
    what a resume must match, and 'chi' is the default itself."""
    def pixels(result):
        return [outputs.read_png_pixels(result.out / e["file"]).tobytes() for e in result.entries()]

    chi = run(tiny_testbed_dir, refs_dir, tmp_path / "chi", per_class=3)
    scaled = run(tiny_testbed_dir, refs_dir, tmp_path / "scaled", per_class=3, prior="scaled-chi:0.8")
    record = {"family": "scaled-chi", "d": 64, "scale": 0.8}
    assert scaled.settings.prior == record and chi.settings.prior is None
    assert json.loads((scaled.out / "run.json").read_text())["parameters"]["settings"]["prior"] == record
    assert all(e["prior"] == record for e in scaled.entries())
    assert {e["prior"] for e in chi.entries()} == {writing.PRIOR}
    assert all(a != b for a, b in zip(pixels(chi), pixels(scaled)))  # every NAO seed moved
    lerp = [run(tiny_testbed_dir, refs_dir, tmp_path / name, per_class=2, method="lerp", **extra)
            for name, extra in (("lerp", {}), ("lerp-scaled", {"prior": "scaled-chi:0.8"}))]
    assert pixels(lerp[0]) == pixels(lerp[1])  # lerp and the euclidean centroid do not use a norm prior
    explicit = run(tiny_testbed_dir, refs_dir, tmp_path / "explicit", per_class=3, prior="chi")
    assert explicit.settings.prior is None and pixels(explicit) == pixels(chi)
    with pytest.raises(ValueError, match="prior was .*scaled-chi.*, now unset"):
        run(tiny_testbed_dir, refs_dir, scaled.out, per_class=3, resume=True)
    with pytest.raises(ValueError, match="prior must be"):
        AugmentSettings(per_class=2, prior=0.8)


@pytest.mark.parametrize("case,extra,message", [
    ("empty class folder", [], "holds no images"),
    ("one reference for paths", [], "needs at least 2"),
    ("unreadable image", [], "cannot read image"),
    ("per class zero", ["--per-class", "0"], "--per-class must be an integer in [1, 1000000], got 0"),
    ("unknown strategy", ["--strategy", "clusterz"], "invalid choice"),
    ("unknown method", ["--method", "bezier"], "invalid choice"),
    ("normalized paths", ["--method", "normalized"], "centroid only"),
    ("unknown class", [], "not a class of"),
    ("unknown prior", ["--prior", "gaussian"], "unknown prior"),
    ("more clusters than references", ["--strategy", "clusters", "--clusters", "3"],
     "1 <= clusters <= the number of references (2), got 3"),
    ("zero clusters", ["--strategy", "clusters", "--clusters", "0"], "clusters must be an integer in [1, inf]"),
    ("clusters without the strategy", ["--clusters", "2"], "applies to the clusters strategy only"),
    ("a class name too long for file names", ["--condition", "unconditional"], "takes 120 bytes, over 100"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_testbed_dir, tmp_path, capsys, case, extra, message):
    counts = {"class0": 2, "class1": 2}
    if case == "empty class folder":
        counts["class2"] = 0
    if case == "one reference for paths":
        counts["class2"] = 1
    if case == "unknown class":
        counts["sweater"] = 2
    if case == "a class name too long for file names":
        counts["é" * 60] = 2
    refs = _write_refs(tmp_path / "refs", counts, bad="class1" if case == "unreadable image" else None)
    out = tmp_path / "out"
    args = ["augment", "--model", str(tiny_testbed_dir), "--references", str(refs), "--out", str(out),
            "--per-class", "2", "--steps", "2", "--quiet"]
    code = main(args + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_existing_output_and_changed_settings_are_refused(tiny_testbed_dir, refs_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["augment", "--model", str(tiny_testbed_dir), "--references", str(refs_dir), "--out", str(out),
            "--per-class", "2", "--steps", "2", "--shard-size", "2", "--batch-size", "2", "--quiet"]
    assert main(args) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(args + ["--resume", "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot resume" in err and "seed was 0, now 5" in err and len(err.splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert main(args + ["--resume"]) == 0  # same settings: nothing left to do
    assert "0 generated now" in capsys.readouterr().out


def test_tiny_stable_diffusion_prompts_from_folder_names(tiny_sd_dir, tmp_path):
    """A diffusers text-to-image model: each class folder's name is the prompt; paths between the inversions."""
    size = ss.load_model(tiny_sd_dir).image_shape[-1]
    for name in ("a red cube", "a blue ball"):
        (tmp_path / "refs" / name).mkdir(parents=True)
        for i in range(2):
            pixels = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "refs" / name / f"{i}.png")
    result = ss.augment(str(tiny_sd_dir), tmp_path / "refs", tmp_path / "out", per_class=2, strategy="paths",
                        steps=2, device="cpu")
    entries = result.entries()
    assert [e["model_condition"] for e in entries] == ["a blue ball"] * 2 + ["a red cube"] * 2
    assert all((tmp_path / "out" / e["file"]).is_file() for e in entries)


def test_augment_renders_a_pipeline_at_a_chosen_size_and_fits_wide_references(tiny_sd_dir, tmp_path, capsys):
    """--height / --width / --fit: the images come out at the chosen size, wide references are fitted as asked,
    run.json records all three; a fixed-size testbed refuses another size in one line, writing nothing."""
    size = ss.load_model(tiny_sd_dir).image_shape[-1]
    (tmp_path / "refs" / "a red cube").mkdir(parents=True)
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 255, (size, 2 * size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "refs" / "a red cube" / f"{i}.png")
    out = tmp_path / "out"
    assert main(["augment", "--model", str(tiny_sd_dir), "--references", str(tmp_path / "refs"), "--out", str(out),
                 "--per-class", "2", "--steps", "2", "--height", str(size), "--width", str(2 * size), "--fit", "pad",
                 "--device", "cpu", "--quiet"]) == 0
    settings = json.loads((out / "run.json").read_text())["parameters"]["settings"]
    assert (settings["height"], settings["width"], settings["fit"]) == (size, 2 * size, "pad")
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {outputs.read_png_pixels(out / e["file"]).shape[:2] for e in entries} == {(size, 2 * size)}
    capsys.readouterr()
    assert main(["augment", "--testbed-split", "2", "--out", str(tmp_path / "no"), "--per-class", "2",
                 "--height", "64", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "makes 32x32 images only" in err and not (tmp_path / "no").exists()


def test_the_manifest_names_the_sampler_that_ran(refs_dir, tmp_path):
    """A flow-matching model samples with flow Euler: the manifest and each PNG say so (not DDIM)."""
    from tiny_models import tiny_pixel_flow_model

    from seedspace.backends.sampling import scheduler_label

    model = tiny_pixel_flow_model()
    result = augment(model, refs_dir, tmp_path / "flow", per_class=2, steps=2, shard_size=2, batch_size=2,
                     strategy="random", condition="unconditional")
    label = scheduler_label(model.default_scheduler)
    assert label != "DDIM" and {e["sampler"] for e in result.entries()} == {label}
    assert {(e["dtype"], e["threads"]) for e in result.entries()} == {(result.settings.dtype, torch.get_num_threads())}
    first = result.entries()[0]
    assert f"Sampler: {label}" in Image.open(tmp_path / "flow" / first["file"]).text["parameters"]


def test_a_shard_that_cannot_be_written_fails_the_run_and_keeps_the_shards_before(tiny_testbed_dir, refs_dir,
                                                                                  tmp_path, monkeypatch):
    """A write error (a full disk) ends the run with that error, run.json marked failed, and the shards written
    before it kept."""
    from seedspace.methods.augment import shards

    written, original = [], shards.writing.write_shard

    def full_disk(out, work, images, entries):
        if written:
            raise OSError(28, "No space left on device")
        written.append(work.shard)
        return original(out, work, images, entries)

    monkeypatch.setattr(shards.writing, "write_shard", full_disk)
    out = tmp_path / "full-disk"
    with pytest.raises(OSError, match="No space left"):
        run(tiny_testbed_dir, refs_dir, out)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert len(list(out.rglob("shard-*.jsonl"))) == 1
