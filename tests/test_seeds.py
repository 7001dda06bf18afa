"""The library's seed specs: ss.parse_seed_spec / ss.load_seeds do what the command line's --seeds does."""

import numpy as np
import pytest
import torch

import seedspace as ss
from seedspace import outputs
from seedspace.cli.main import main


@pytest.fixture(scope="module")
def tiny(tiny_testbed_dir):
    model = ss.load_model(tiny_testbed_dir)
    model.default_steps = 4
    return model


def test_integers_draw_cpu_noise_and_record_provenance(tiny):
    seeds, provenance = ss.load_seeds("11,42", tiny)
    assert torch.equal(seeds, ss.seeds_from_ints([11, 42], tiny.seed_shape))
    assert provenance == [{"int": 11}, {"int": 42}]
    assert ss.load_seeds([11, 42], tiny).seeds.equal(seeds)  # a list of entries is the same spec


def test_blend_is_the_weighted_nao_blend(tiny):
    seeds, provenance = ss.load_seeds("1:0.25|2:0.75", tiny)
    a, b = ss.seeds_from_ints([1, 2], tiny.seed_shape)
    expected = ss.blend(torch.stack([a, b]).double(), [0.25, 0.75]).float()
    assert torch.allclose(seeds[0], expected, atol=1e-6)
    assert provenance[0]["weights"] == [0.25, 0.75] and ss.describe_seed(provenance[0]) == "1:0.25|2:0.75"


def test_seed_file_batch_and_image_inversion(tiny, tmp_path):
    batch = ss.seeds_from_ints([5, 6, 7], tiny.seed_shape)
    outputs.save_seeds(tmp_path / "s.safetensors", {"seeds": batch})
    seeds, provenance = ss.load_seeds(str(tmp_path / "s.safetensors"), tiny)
    assert torch.equal(seeds, batch) and [p["index"] for p in provenance] == [0, 1, 2]

    image = tiny.generate(batch[:1], condition=1)
    outputs.save_png(tmp_path / "img.png", outputs.to_uint8(image)[0])
    seeds, provenance = ss.load_seeds([str(tmp_path / "img.png")], tiny, condition=1, steps=4)
    expected = tiny.invert(tiny.load_images([tmp_path / "img.png"]), 1, 4)
    assert torch.equal(seeds, expected.float()) and provenance[0]["image"].endswith("img.png")
    assert len(provenance[0]["sha256"]) == 16


@pytest.mark.parametrize("spec, message", [
    ("", "empty"), ("1,,2", "empty entry"), ("-3", "non-negative"), ("1:0.5|x", "SEED:WEIGHT"),
    ("1:-1|2:2", "non-negative"), ("missing.png", "does not exist"), ("banana", "not a seed integer"),
])
def test_bad_specs_raise_one_clear_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        ss.parse_seed_spec(spec)


def test_seed_file_of_another_shape_is_refused(tiny, tmp_path):
    outputs.save_seeds(tmp_path / "wrong.safetensors", {"seeds": torch.zeros(2, 3, 8, 8)})
    with pytest.raises(ValueError, match="shape"):
        ss.load_seeds(str(tmp_path / "wrong.safetensors"), tiny)


def test_library_calls_give_the_frames_of_interpolate_compare(tiny_testbed_dir, tmp_path):
    """The README's claim: `interpolate --compare` with two images is ss.load_seeds + ss.interpolate +
    model.generate, pixel for pixel, in the command's default dtype ('auto')."""
    model = ss.load_model(tiny_testbed_dir, dtype="auto")
    for i, seed in enumerate((3, 4)):
        image = model.generate(ss.seeds_from_ints([seed], model.seed_shape), condition=1, steps=3)
        outputs.save_png(tmp_path / f"ref{i}.png", outputs.to_uint8(image)[0])
    refs = f"{tmp_path / 'ref0.png'},{tmp_path / 'ref1.png'}"
    rc = main(["interpolate", "--compare", "--seeds", refs, "--class", "1", "--frames", "4", "--steps", "3",
               "--model", str(tiny_testbed_dir), "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0

    seeds, _ = ss.load_seeds(refs, model, condition=1, steps=3)
    methods = ["lerp", "slerp", "cog", "nao"]
    paths = torch.cat([ss.interpolate(seeds[0], seeds[1], steps=4, method=m) for m in methods])
    frames = outputs.to_uint8(model.generate(paths, condition=1, steps=3))
    for r, method in enumerate(methods):
        for j in range(4):
            written = outputs.read_png_pixels(tmp_path / "run" / "frames" / method / f"frame{j:06d}.png")
            assert np.array_equal(written, frames[r * 4 + j]), (method, j)


@pytest.mark.parametrize("seed_ints, shape, message", [
    ([], (4,), "seed_ints must be integers in \\[0, 2\\^63\\), got none"),
    ("11", (4,), "seed_ints must be a sequence of integers"),
    ([1.5], (4,), "got 1.5"),
    ([float("inf")], (4,), "got inf"),
    ([True], (4,), "got True"),
    ([2 ** 63], (4,), "got 9223372036854775808"),
    ([1], (4, -1, 8), "shape must be a sequence of positive integers"),
    ([1], (), "shape must be"),
    ([1], (2 ** 20, 2 ** 20), "values per seed"),
])
def test_seeds_from_ints_names_what_is_wrong(seed_ints, shape, message):
    with pytest.raises(ValueError, match=message):
        ss.seeds_from_ints(seed_ints, shape)


def test_seeds_from_ints_takes_numpy_and_tensor_integers():
    expected = ss.seeds_from_ints([3, 4], (2, 2))
    assert torch.equal(ss.seeds_from_ints(np.array([3, 4]), (2, 2)), expected)
    assert torch.equal(ss.seeds_from_ints(torch.tensor([3, 4]), torch.Size([2, 2])), expected)
