"""Stored measurements: the tree an experiment measured comes back as it was (arrays as numpy, images as tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from seedspace.evaluation.measurements import load_measured, save_measured


def test_a_measured_tree_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    measured = {"groups": {"head": [0, 1], "tail": [9]}, "scales": (0.5, 1.0),
                "cells": [{"group": "head", "scale": 0.5, "correct": rng.random(5) > 0.5,
                           "conf": rng.random(5).astype(np.float32), "feats": rng.standard_normal((5, 3)),
                           "index": np.arange(5)}],
                "examples": {"rows": [torch.rand(3, 1, 4, 4)], "row_labels": ["nao"]}, "note": None, "k": np.int64(3)}
    back = load_measured(save_measured(tmp_path / "m.safetensors", measured))
    cell, original = back["cells"][0], measured["cells"][0]
    for key in ("correct", "conf", "feats", "index"):
        assert isinstance(cell[key], np.ndarray) and cell[key].dtype == original[key].dtype
        assert np.array_equal(cell[key], original[key])
    assert torch.equal(back["examples"]["rows"][0], measured["examples"]["rows"][0])
    assert back["groups"] == measured["groups"] and back["scales"] == [0.5, 1.0]
    assert back["note"] is None and back["k"] == 3 and back["examples"]["row_labels"] == ["nao"]
    assert not list(tmp_path.glob("*tmp*"))


def test_a_file_that_is_not_measurements_is_refused_in_one_line(tmp_path):
    other = tmp_path / "seeds.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(ValueError, match="not a seedspace measurements file"):
        load_measured(other)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not readable measurements") as info:
        load_measured(broken)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not readable measurements"):
        load_measured(tmp_path / "missing.safetensors")
