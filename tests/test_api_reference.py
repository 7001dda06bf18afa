"""The API reference (docs/api.md) lists every public name: each of ``seedspace.__all__`` has a mkdocstrings
entry (``::: module.name``) or, for the constants, a row; and every entry names something that exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import seedspace as ss

PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_public_name_has_an_entry():
    text = PAGE.read_text(encoding="utf-8")
    entries = re.findall(r"^::: ([\w.]+)", text, re.M)
    documented = {e.rsplit(".", 1)[-1] for e in entries} | set(re.findall(r"`ss\.(\w+)`", text))
    missing = sorted(set(ss.__all__) - documented)
    assert not missing, f"docs/api.md lacks {missing}"
    for entry in entries:  # each entry resolves: a module, or a name (a class's method) inside one
        assert resolve(entry) is not None, entry


def resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name, None)
        return obj
    return None

def test_exported_names_are_the_documented_objects():
    text = PAGE.read_text(encoding="utf-8")
    for entry in re.findall(r"^::: ([\w.]+)", text, re.M):
        module, _, name = entry.rpartition(".")
        if name in ss.__all__ and module:
            assert getattr(importlib.import_module(module), name) is getattr(ss, name), entry
